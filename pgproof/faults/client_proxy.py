"""A Toxiproxy on the client path itself: the app-side view of latency, on any target.

A managed database gives no access to its network, but the game day owns the
load generator. So the load (Locust) and the failover clock connect through a
TCP proxy started beside them whose upstream is the target's writer endpoint;
a latency toxic on that proxy is what the application would feel. TLS passes
through a TCP proxy unchanged, so ``sslmode=verify-full`` keeps working:
libpq verifies the certificate against ``host`` (kept as the original name)
while ``hostaddr`` sends the packets to the proxy on 127.0.0.1.

The proxy is the lab's Toxiproxy-API server started as its own process (its
own session, so it outlives a SIGKILLed runner and ``recover`` can undo the
toxic), or the server named by ``TOXIPROXY_URL``. Both the proxy and its toxic
are durable faults: the record holds the proxy's PID *and* start time, so
``pgproof gameday recover`` stops exactly that process and never a recycled PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any, ClassVar

import requests

from pgproof import procs
from pgproof.faults import record, toxiproxy
from pgproof.faults.base import Undo, fault
from pgproof.faults.record import same_process, start_time

START_TIMEOUT_S = 30.0  # a loaded 2-core machine starts a Python process in 1-5 s
LATENCY_TEXT = ("{ms} ms +/- {jitter_ms} ms on the client path: a Toxiproxy started beside the "
                "load generator, upstream = the writer endpoint; Locust and the clock connect "
                "through it (TLS passes through; host name kept for verify-full)")


class ClientProxy:
    """One proxy ``listen 127.0.0.1:<free> -> upstream``; ``conninfo()`` routes a client through it."""

    def __init__(self, upstream_host: str, upstream_port: int, log_dir: Path | None = None) -> None:
        if upstream_host.startswith("/") or "," in upstream_host:
            raise ValueError(f"writer host {upstream_host!r} is a socket directory or a host list; "
                             "a client-path proxy needs one TCP host")
        host = f"[{upstream_host}]" if ":" in upstream_host else upstream_host  # IPv6 literal
        self.upstream = f"{host}:{upstream_port}"
        self.host = upstream_host
        self.log_dir = log_dir
        self.api_url = os.environ.get("TOXIPROXY_URL", "").rstrip("/")
        self.external = bool(self.api_url)
        self.pid: int | None = None
        self.started: int | None = None
        self.name = f"pgproof_client_{uuid.uuid4().hex[:8]}"
        self.port: int | None = None

    @property
    def record(self) -> dict[str, Any]:
        return {"api_url": self.api_url, "proxy": self.name, "external": self.external,
                "pid": self.pid, "start": self.started}

    def start(self, on_spawn: Callable[[], None] = lambda: None) -> None:
        """Start the server (``on_spawn`` right after the process exists), then create the proxy."""
        if not self.external:
            port = procs.free_ports(1)[0]
            self.api_url = f"http://127.0.0.1:{port}"
            log = (self.log_dir / "client-proxy.log") if self.log_dir else Path(os.devnull)
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as fh:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "pgproof.proxy.server", "--host", "127.0.0.1",
                     "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=procs.clean_env(home="/tmp"), start_new_session=True)
            self.pid, self.started = proc.pid, start_time(proc.pid)
            on_spawn()
            self._wait_api(proc)
        body: dict[str, Any] = {"name": self.name, "listen": "127.0.0.1:0", "upstream": self.upstream, "enabled": True}
        r = requests.post(self.api_url + "/proxies", json=body, timeout=toxiproxy.HTTP_TIMEOUT)
        if r.status_code != 201:
            raise toxiproxy.ToxiproxyError(f"POST {self.api_url}/proxies -> {r.status_code}: {r.text}")
        self.port = int(r.json()["listen"].rsplit(":", 1)[1])

    def _wait_api(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"client-path Toxiproxy exited with {proc.returncode} at start")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.api_url + "/version", timeout=1).ok:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"client-path Toxiproxy not answering on {self.api_url} "
                           f"within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        stop_recorded(self.record)

    def conninfo(self, app: dict[str, Any]) -> dict[str, Any]:
        """``app`` through the proxy: ``host`` stays the certificate's name, packets go to the proxy."""
        if self.port is None:
            raise RuntimeError("client-path proxy not started")
        return {**app, "host": app.get("host", self.host), "hostaddr": "127.0.0.1", "port": self.port}


def stop_recorded(data: dict[str, Any]) -> str:
    """Undo of the proxy itself: delete it (external server) or stop our process; idempotent."""
    pid, started = data.get("pid"), data.get("start")
    if data.get("external"):  # someone else's Toxiproxy: remove only our proxy
        toxiproxy._request(data["api_url"], "DELETE", f"/proxies/{data['proxy']}", ok=(204, 404))
        return f"client-path proxy {data['proxy']} deleted from {data['api_url']}"
    if pid is None:
        return "client-path proxy: no process was started"
    if not same_process(int(pid), started):
        return f"client-path proxy pid {pid} already gone"
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and same_process(int(pid), started):
        time.sleep(0.05)
    if same_process(int(pid), started):
        os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(int(pid), os.WNOHANG)
    return f"client-path proxy pid {pid} stopped"


def _update(rec: Any, fid: str | None, data: dict[str, Any]) -> None:
    """Put the spawned proxy's PID and start time into its (already written) record entry."""
    if rec is None or fid is None:
        return
    for f in rec.data["faults"]:
        if f["id"] == fid:
            f["data"] = dict(data)
    rec.save()


def remove_toxic_recorded(data: dict[str, Any]) -> str:
    """Undo of a toxic on the client-path proxy: if that proxy process is gone, so is its toxic."""
    pid = data.get("pid")
    if pid is not None and not same_process(int(pid), data.get("start")):
        return f"toxic {data['name']}: its client-path proxy (pid {pid}) is gone, and the toxic with it"
    toxiproxy.remove_toxic(data["api_url"], data["proxy"], data["name"])
    return f"toxic {data['name']} removed from client-path proxy {data['proxy']}"


def _discard(_: object) -> None:
    pass


def undo_recorded(kind: str, data: dict[str, Any]) -> str | None:
    """The recorded undos of this module (None: not one of ours)."""
    if kind == "client_proxy":
        return stop_recorded(data)
    if kind == "client_toxic":
        return remove_toxic_recorded(data)
    return None


class ClientPathLatency:
    """Mixin for drivers without network access to the database: latency on the client path."""

    _client_proxy: ClientProxy | None = None
    FAULT_TEXT: ClassVar[Mapping[str, str]] = {"latency": LATENCY_TEXT}

    @contextlib.contextmanager
    def _start_proxy(self, app: dict[str, Any], log_dir: Path | None) -> Iterator[dict[str, Any]]:
        proxy = ClientProxy(str(app["host"]), int(app["port"]), log_dir)
        undo = Undo(proxy.stop, "a client-path Toxiproxy may still be running",
                    "kill the `pgproof.proxy.server` process started by the game day")
        rec = record.active()
        fid = rec.add_fault("client_proxy", proxy.record, undo.broken, undo.fix) if rec else None
        if rec is not None and fid is not None:
            undo.after.append(lambda: rec.remove_fault(fid))

        def act() -> None:
            proxy.start(on_spawn=lambda: _update(rec, fid, proxy.record))

        with fault(undo, act):
            self._client_proxy = proxy
            try:
                yield proxy.conninfo(app)
            finally:
                self._client_proxy = None

    def app_path(self, fault_name: str, app: dict[str, Any],
                 log_dir: Path | None = None) -> AbstractContextManager[dict[str, Any]]:
        """The conninfo Locust and the clock use: through a client-path proxy when the fault needs one."""
        if fault_name != "latency":
            return contextlib.nullcontext(app)
        return self._start_proxy(app, log_dir)

    def latency(self, ms: int, jitter_ms: int = 0,
                undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """``ms`` +/- ``jitter_ms`` on the client path (downstream), on the proxy from ``app_path``."""
        proxy = self._client_proxy
        if proxy is None or proxy.port is None:
            raise RuntimeError("latency on this driver acts on the client-path proxy; the game day "
                               "must route the load through app_path('latency', ...) first")
        name = f"pgproof_latency_downstream_{uuid.uuid4().hex[:8]}"
        body = {"name": name, "type": "latency", "stream": "downstream", "toxicity": 1.0,
                "attributes": {"latency": ms, "jitter": jitter_ms}}
        data = {**proxy.record, "name": name}
        undo = Undo(lambda: _discard(remove_toxic_recorded(data)),
                    f"client-path proxy {proxy.name} still adds {ms} ms latency",
                    f"curl -X DELETE {proxy.api_url}/proxies/{proxy.name}/toxics/{name}")
        return fault(undo, lambda: toxiproxy._request(proxy.api_url, "POST",
                                                      f"/proxies/{proxy.name}/toxics", body),
                     undo_stack, durable=("client_toxic", data))
