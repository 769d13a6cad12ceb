"""Where a lab lives: ports, paths and secrets, persisted so any process can find it.

``state_dir`` (default ``.pgproof/lab``) holds the state, the generated target
and component logs. Database files live in ``run_dir`` under /var/tmp, a path
the ``postgres`` user can always traverse, whatever the checkout's location.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path(".pgproof/lab")
NODES = ("node1", "node2")
PORT_NAMES = (
    "etcd_client", "etcd_peer", "toxiproxy",
    "writer", "reader", "haproxy_writer", "haproxy_reader", "pgbouncer", "health", "moto", "s3_tls",
    "azure_arm", "azure_kv", "azurite",
    *(f"{n}_{k}" for n in NODES for k in ("pg", "rest", "pg_proxy", "repl_proxy", "etcd_proxy")),
    "sshd", "ssh_bridge",  # vpc topology: the bastion, and its bridge on the root's loopback
)
USERS = ("postgres", "replicator", "app", "pgproof", "pgbouncer_admin")


def _password(user: str) -> str:
    """A random password that passwordcheck (preloaded in the lab, CIS 5.6) always accepts.

    passwordcheck refuses a plaintext password shorter than 8, without both a letter and a
    non-letter, or containing the user name; ``token_urlsafe(24)`` (32 characters of
    ``A-Za-z0-9_-``) has no non-letter once in ~770 draws, which would fail Patroni's bootstrap.
    """
    while True:
        pw = secrets.token_urlsafe(24)
        if (any(ch.isalpha() for ch in pw) and any(not ch.isalpha() for ch in pw)
                and user not in pw):
            return pw


def default_state_dir() -> Path:
    return Path(os.environ.get("PGPROOF_LAB_DIR", DEFAULT_STATE_DIR)).resolve()


@dataclass
class LabState:
    state_dir: Path
    run_dir: Path
    scope: str
    ports: dict[str, int] = field(default_factory=dict)
    toxiproxy_url: str = ""
    external_toxiproxy: bool = False
    aws: dict[str, object] = field(default_factory=dict)
    aws_aurora: dict[str, object] = field(default_factory=dict)  # lab-aurora's [aws] section
    azure: dict[str, object] = field(default_factory=dict)
    netns: str = ""  # an empty network namespace: the "outside" vantage point for NET-5
    topology: str = "loopback"  # or "vpc": tiers in their own namespaces (lab/topology.py)
    vpc: dict[str, str] = field(default_factory=dict)  # vpc names and addresses
    supervisor: str = ""  # "supervisord": the nodes run as its programs (lab/supervised.py)

    # -- paths -------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids(self) -> Path:
        return self.state_dir / "pids"

    @property
    def tls(self) -> Path:
        return self.run_dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls / "ca.crt"

    @property
    def passfile(self) -> Path:
        return self.state_dir / "pgpass"

    @property
    def target_file(self) -> Path:
        return self.state_dir / "target.toml"

    @property
    def azure_target_file(self) -> Path:
        """The ``lab-azure`` target: the same live cluster, judged with the Azure twin."""
        return self.state_dir / "target-azure.toml"

    def node_dir(self, node: str) -> Path:
        return self.run_dir / node

    @property
    def home(self) -> Path:
        """The database OS account's home for this lab's processes (HOME), so the host
        controls read this lab's profiles and psql history, not the machine's."""
        return self.run_dir / "home"

    def data_dir(self, node: str) -> Path:
        return self.node_dir(node) / "data"

    def pg_log(self, node: str) -> Path:
        """The node's current server log: log_filename is dated (CIS 3.1.5), so the newest
        ``postgresql-*.log`` (today's UTC name when none is written yet)."""
        d = self.node_dir(node) / "pglog"
        files = sorted(d.glob("postgresql-*.log"), key=lambda p: p.stat().st_mtime)
        return files[-1] if files else d / f"postgresql-{dt.datetime.now(dt.UTC):%Y%m%d}.log"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        return self.pids / f"{component}.pid"

    def rest_url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.ports[node + '_rest']}"

    # -- persistence -------------------------------------------------------------------------
    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["state_dir"], data["run_dir"] = str(self.state_dir), str(self.run_dir)
        (self.state_dir / "state.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        try:
            data = json.loads((state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return None
        data["state_dir"], data["run_dir"] = Path(data["state_dir"]), Path(data["run_dir"])
        return cls(**data)

    @classmethod
    def new(cls, state_dir: Path) -> LabState:
        digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:10]
        return cls(state_dir=state_dir, run_dir=Path("/var/tmp/pgproof") / digest,
                   scope=f"pgproof-{digest}")

    # -- secrets: a 0600 file beside the state, never in the target or any report -------------
    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    def make_secrets(self) -> dict[str, str]:
        pw = {u: _password(u) for u in USERS}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(pw, fh)
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"*:*:*:{u}:{p}\n" for u, p in pw.items())
        return pw

    def secrets(self) -> dict[str, str]:
        secrets: dict[str, str] = json.loads(self.secrets_file.read_text())
        return secrets
