"""Live probes through a bastion: ``postgres.via = "ssh://user@host:port"``.

One OpenSSH client process (``ssh -N -L ...``) forwards a free loopback port to
every endpoint the run probes (SQL endpoints, nodes, the health URL). It is
opened once per process, before the pre-flight, and closed at exit. Probes ask
``dial`` where to connect; the name they verify certificates against stays the
endpoint's own (libpq ``hostaddr``, TLS SNI), so TLS checks judge the real
endpoint, as seen from inside. Keys and options come from the user's agent and
``~/.ssh/config``; ``?identity_file=PATH&known_hosts=PATH`` may add a key and a
known-hosts file (the vpc lab does, for its generated key).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from pgproof.errors import UserError
from pgproof.procs import free_ports

LOCAL = "127.0.0.1"
OPTIONS = ("identity_file", "known_hosts")
OPEN_TIMEOUT_S = 30.0  # a loaded 2-core machine: the handshake alone can take seconds


class Routed(Protocol):
    """What a tunnel needs from a target (``pgproof.target.Target`` is one)."""

    @property
    def via(self) -> str | None: ...

    def live_endpoints(self) -> list[tuple[str, int]]: ...


class TunnelError(UserError):
    """The bastion cannot be used; one sentence naming it."""


@dataclass(frozen=True)
class Via:
    user: str | None
    host: str
    port: int
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def parse_via(url: str) -> Via:
    """``ssh://[user@]host[:port][?identity_file=..&known_hosts=..]``, or a ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise ValueError(f"via {url!r} is not an ssh://[user@]host[:port] URL")
    try:
        port = parts.port or 22
    except ValueError:
        raise ValueError(f"via {url!r} has an invalid port") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - set(OPTIONS)
    if unknown:
        raise ValueError(f"via {url!r}: unknown option(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(OPTIONS)})")
    return Via(parts.username, parts.hostname, port, query)


@dataclass
class Tunnel:
    via: Via
    routes: dict[tuple[str, int], int]  # (remote host, remote port) -> local port
    proc: subprocess.Popen[bytes]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


_active: Tunnel | None = None


def dial(host: str, port: int) -> tuple[str, int]:
    """Where to connect to reach ``host:port``: the tunnel's local end, or the endpoint itself."""
    if _active is not None:
        if (host, port) in _active.routes:
            return LOCAL, _active.routes[(host, port)]
        # Already a local end (e.g. a conninfo's port handed back to the TLS probe): keep it.
        if any(h == host and lp == port for (h, _), lp in _active.routes.items()):
            return LOCAL, port
    return host, port


def http_url(url: str) -> str:
    """``url`` with its host:port replaced by the tunnel's local end (unchanged if not routed)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    default = 443 if parts.scheme == "https" else 80
    host, port = dial(parts.hostname, parts.port or default)
    if host == parts.hostname:
        return url
    return parts._replace(netloc=f"{host}:{port}").geturl()


def _die_with_parent() -> None:
    """Runs in the ssh child before exec: a SIGKILLed runner leaves no tunnel behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _argv(via: Via, routes: dict[tuple[str, int], int]) -> list[str]:
    argv = ["ssh", "-N", "-T", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
            "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=10",
            # Our own connection, not a shared master: closing it must close the forwards.
            "-o", "ControlMaster=no", "-o", "ControlPath=none", "-p", str(via.port)]
    if "identity_file" in via.options:
        argv += ["-i", via.options["identity_file"], "-o", "IdentitiesOnly=yes"]
    if "known_hosts" in via.options:
        argv += ["-o", f"UserKnownHostsFile={via.options['known_hosts']}",
                 "-o", "StrictHostKeyChecking=yes"]
    for (host, port), local in routes.items():
        argv += ["-L", f"{LOCAL}:{local}:{host}:{port}"]
    return [*argv, f"{via.user}@{via.host}" if via.user else via.host]


def _listening() -> set[int]:
    """Ports listening on the loopback, via netlink (``ss``): no connection is opened, and
    unlike /proc/net/tcp (0.13 s a read with thousands of TIME_WAIT entries here) it is fast."""
    r = subprocess.run(["ss", "-Hltn", "src", LOCAL], capture_output=True, text=True, timeout=10)
    return {int(cols[3].rsplit(":", 1)[1]) for cols in map(str.split, r.stdout.splitlines())
            if len(cols) > 3 and ":" in cols[3]}


def open_tunnel(via: Via, remotes: list[tuple[str, int]], timeout: float = OPEN_TIMEOUT_S) -> Tunnel:
    """Start ``ssh -N -L`` for every remote; raise ``TunnelError`` naming the bastion if it fails."""
    for attempt in (1, 2):
        routes = dict(zip(remotes, free_ports(len(remotes)), strict=True))
        with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would stall ssh
            proc = subprocess.Popen(_argv(via, routes), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=log,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if set(routes.values()) <= _listening():
                    return Tunnel(via, routes, proc)
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
                raise TunnelError(f"cannot open the SSH tunnel through bastion {via.name}: "
                                  f"no forward listening within {timeout:.0f} s")
            log.seek(0)
            err = log.read().decode(errors="replace").strip()
        if attempt == 1 and "Address already in use" in err:
            continue  # a local port was taken between choosing and binding it
        last = err.splitlines()[-1] if err else f"ssh exited with status {proc.returncode}"
        raise TunnelError(f"cannot open the SSH tunnel through bastion {via.name}: {last}")
    raise AssertionError("unreachable")


def ensure(target: Routed) -> Tunnel | None:
    """Open the target's tunnel once per process (reused while it covers the same endpoints)."""
    global _active
    if not target.via:  # no bastion, or AWS-only: no live probe at all
        return None
    via, remotes = parse_via(target.via), target.live_endpoints()
    if (_active is not None and _active.via == via and _active.proc.poll() is None
            and set(remotes) <= set(_active.routes)):
        return _active
    close()
    _active = open_tunnel(via, remotes)
    return _active


def close() -> None:
    global _active
    if _active is not None:
        _active.close()
        _active = None


atexit.register(close)
