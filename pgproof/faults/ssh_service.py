"""How the ssh driver stops, starts and finds a node: its service manager and per-host settings.

Service managers, chosen by ``tags.supervisor``:

- ``systemd`` (default): ``service`` is a unit; ``systemctl start|stop``, and Patroni's pid is
  the unit's MainPID.
- ``supervisord``: ``service`` is a supervisord program; ``supervisorctl -c
  <tags.supervisor_config> start|stop|pid <program>`` (``tags.supervisorctl`` names the binary,
  default ``supervisorctl``), and Patroni's pid is the program's. The equivalent where systemd
  is not PID 1 (containers, the lab). Give the program ``autorestart=false`` and
  ``startsecs=0``: a kill must stay a kill until the game day's undo starts it again.

Without a ``service`` the driver runs pg_ctl itself and no manager is asked.

Per-host settings: the shared ``tags`` may be overridden for one host in its URL's query:
``name`` (the node's name in journals), ``service``, ``pgdata``, ``patroni_config``,
``pg_ctl_log``. So several nodes may share one machine, as the lab's ``lab-ssh`` target does:
``local://?name=node1&service=node1&pgdata=/var/tmp/pgproof/x/node1/data``. testinfra
ignores query keys it does not know, so the same URL still opens the host.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from pgproof.errors import UserError

PER_HOST = ("name", "service", "pgdata", "patroni_config", "pg_ctl_log")
MANAGERS = ("systemd", "supervisord")


@dataclass(frozen=True)
class HostSettings:
    """One host's node: where its data lives and which service runs it."""

    url: str
    name: str
    pgdata: str
    service: str | None
    patroni_config: str
    pg_ctl_log: str


class Systemd:
    """systemd units (the default): what a packaged PostgreSQL or Patroni install ships."""

    kind = "systemd"

    def start(self, service: str) -> str:
        return f"systemctl start {shlex.quote(service)}"

    def stop(self, service: str) -> str:
        return f"systemctl stop {shlex.quote(service)}"

    def pid(self, service: str) -> str:
        """A command printing the service's main pid (``0`` or nothing when it is not running)."""
        return f"systemctl show -p MainPID --value {shlex.quote(service)}"

    def fix(self, service: str) -> str:
        return f"systemctl start {service}"


class Supervisord:
    """supervisord programs, driven through supervisorctl and the daemon's own config file."""

    kind = "supervisord"

    def __init__(self, config: str, ctl: str = "supervisorctl") -> None:
        self.config, self.ctl = config, ctl

    def _ctl(self, verb: str, service: str) -> str:
        return (f"{shlex.quote(self.ctl)} -c {shlex.quote(self.config)} {verb} "
                f"{shlex.quote(service)}")

    def start(self, service: str) -> str:
        return self._ctl("start", service)

    def stop(self, service: str) -> str:
        return self._ctl("stop", service)

    def pid(self, service: str) -> str:
        return self._ctl("pid", service)

    def fix(self, service: str) -> str:
        return f"{self.ctl} -c {self.config} start {service}"


ServiceManager = Systemd | Supervisord


def parse_pid(stdout: str) -> str:
    """The pid a manager printed, or "" when it names none (not running, unknown program)."""
    out = stdout.strip()
    return out if out.isdigit() and out != "0" else ""


def manager(target_name: str, tags: dict[str, str]) -> ServiceManager:
    """The service manager ``tags`` name; a wrong or incomplete choice is one sentence."""
    kind = tags.get("supervisor", "systemd")
    if kind == "systemd":
        return Systemd()
    if kind != "supervisord":
        raise UserError(f"target {target_name!r}: tags.supervisor = {kind!r} is not one of "
                        f"{', '.join(MANAGERS)}")
    config = tags.get("supervisor_config")
    if not config:
        raise UserError(f"target {target_name!r}: tags.supervisor = \"supervisord\" needs "
                        "tags.supervisor_config (the supervisord.conf supervisorctl reads)")
    return Supervisord(config, tags.get("supervisorctl", "supervisorctl"))


def _base_name(url: str) -> str:
    """The URL's host (never its user or options), or its scheme for ``local://``."""
    return urlparse(url).hostname or url.split("://")[0] or url


def host_settings(urls: list[str], tags: dict[str, str]) -> list[HostSettings]:
    """Each host's settings: its URL's query over the shared tags; names made unique."""
    out: list[HostSettings] = []
    names: list[str] = []
    for url in urls:
        query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items() if k in PER_HOST}
        get = {**tags, **query}.get
        base = query.get("name") or _base_name(url)
        name, i = base, 1
        while name in names:
            i += 1
            name = f"{base}#{i}"
        names.append(name)
        out.append(HostSettings(
            url=url, name=name, pgdata=get("pgdata") or "/var/lib/postgresql/15/main",
            service=get("service") or None,
            patroni_config=get("patroni_config") or "/etc/patroni/patroni.yml",
            pg_ctl_log=get("pg_ctl_log") or "/tmp/pgproof-pg_ctl.log"))
    return out
