"""The lab's backups: pgBackRest archiving WAL and taking base backups into the twin's bucket.

Why pgBackRest (not barman-cloud): its repository is client-side encrypted
(``repo1-cipher-type``), retention is a repository setting, and ``info --output=json``
states cipher, backups and archive range itself, so the backup layer reads the
tool's own view. It speaks S3 only over HTTPS, so an HAProxy TLS front (lab CA)
sits before moto. Without the AWS twin the repository is a local directory.

One config file serves both nodes: ``archive_command`` passes the data directory
(``$PWD`` of the archiver) as ``pg1-path``, so whichever node leads archives, and a
backup names the leader's path and port on its command line. A restore drill can use
the same file with ``--pg1-path=<scratch dir>`` and ``restore --type=time --target=...``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgproof import procs
from pgproof.lab import aws_twin, topology
from pgproof.lab.state import LabState

STANZA = "lab"
REPO_PATH = "/pgbackrest"
PLAIN_REPO_PATH = "/pgbackrest-plain"  # the backup-unencrypted mutation's repository
NO_STANZA_REPO_PATH = "/pgbackrest-unconfigured"  # backup-stanza-missing: no stanza-create ran
RETENTION_DAYS = 7
ARCHIVE_TIMEOUT_S = 60  # bounds how long a write can sit in an unarchived segment
SECRET_KEY = "pgbackrest_cipher"


def backup_dir(state: LabState) -> Path:
    return state.run_dir / "pgbackrest"


def config_file(state: LabState) -> Path:
    return backup_dir(state) / "pgbackrest.conf"


def status_file(state: LabState) -> Path:
    return state.state_dir / "backup-status.json"


def tool_argv(state: LabState) -> list[str]:
    """How to run pgbackrest for this lab: as the database user, with the lab's config."""
    return procs.as_service_user(["pgbackrest", f"--config={config_file(state)}"])


def archive_command(state: LabState) -> str:
    # The archiver runs in the data directory: $PWD is this node's pg1-path.
    return (f"pgbackrest --config={config_file(state)} --stanza={STANZA} "
            '--pg1-path="$PWD" archive-push "%p"')


def cipher_pass(state: LabState) -> str:
    """The repository passphrase, kept in the lab's 0600 secrets file (made on first use)."""
    import secrets as _secrets

    doc = state.secrets()
    if SECRET_KEY not in doc:
        doc[SECRET_KEY] = _secrets.token_urlsafe(32)
        fd = os.open(state.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
    return doc[SECRET_KEY]


def config_text(state: LabState, *, retention_days: int = RETENTION_DAYS,
                cipher: bool = True, repo_path: str = REPO_PATH) -> str:
    d, lines = backup_dir(state), ["[global]"]
    bucket = state.aws.get("backup_bucket") if state.aws else None
    if bucket:
        key_id, key_secret = aws_twin.lab_credentials(aws_twin.lab_files(state.state_dir)[0],
                                                      aws_twin.BACKUP_PROFILE)
        lines += ["repo1-type=s3", f"repo1-s3-bucket={bucket}", # pgBackRest matches DNS names in the certificate, not IP SANs: "localhost".
                  "repo1-s3-endpoint=localhost",
                  f"repo1-storage-port={state.ports['s3_tls']}",
                  f"repo1-s3-region={state.aws.get('region', 'us-east-1')}",
                  # The twin's S3-only key (the twin serves signed requests only; this file
                  # is 0600 for the postgres user, who runs archive_command).
                  f"repo1-s3-key={key_id}", f"repo1-s3-key-secret={key_secret}",
                  "repo1-s3-uri-style=path", f"repo1-storage-ca-file={state.ca_file}",
                  f"repo1-path={repo_path}"]
    else:
        lines += ["repo1-type=posix", f"repo1-path={d / 'repo'}{repo_path}"]
    if cipher:
        lines += ["repo1-cipher-type=aes-256-cbc", f"repo1-cipher-pass={cipher_pass(state)}"]
    lines += [
        "repo1-retention-full-type=time", f"repo1-retention-full={retention_days}",
        "start-fast=y", "repo1-bundle=y", "compress-type=lz4", "process-max=1", "archive-timeout=120",
        f"log-path={d / 'log'}", f"lock-path={d / 'lock'}", f"spool-path={d / 'spool'}",
        "log-level-console=warn", "log-level-file=info",
        f"[{STANZA}]", f"pg1-path={state.data_dir('node1')}",
    ]
    return "\n".join(lines) + "\n"


def write_config(state: LabState, **kw: Any) -> Path:
    d = backup_dir(state)
    for sub in ("", "log", "lock", "spool", "repo"):
        (d / sub).mkdir(parents=True, exist_ok=True)
        procs.chown_service(d / sub)
    f = config_file(state)
    tmp = f.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(config_text(state, **kw))
    procs.chown_service(tmp)
    tmp.replace(f)  # archive-push reads it any moment: never half-written
    return f


# -- the S3 TLS front (HAProxy with the lab's certificate, before moto) -------------------

def s3_socket(state: LabState) -> Path:
    return backup_dir(state) / "s3-front.sock"


def s3_front_config(state: LabState) -> str:
    pem = state.tls / "s3-front.pem"
    # vpc: the DB namespace's S3 endpoint reaches the front over this unix socket.
    unix = f"  bind unix@{s3_socket(state)} ssl crt {pem}\n" if topology.is_vpc(state) else ""
    return f"""global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 5m
  timeout server 5m
listen s3
  bind 127.0.0.1:{state.ports['s3_tls']} ssl crt {pem}
{unix}  server moto 127.0.0.1:{state.ports['moto']}
"""


def start_s3_endpoint(state: LabState) -> int:
    """vpc: the DB subnet's way to S3 (what a VPC gateway endpoint is on AWS).

    ``archive_command`` runs in the DB namespace, whose 127.0.0.1 is its own: a socat
    there listens on the same ``localhost:s3_tls`` the config names and joins the
    front's unix socket (the namespaces share the filesystem). TLS passes through it.
    """
    sock = s3_socket(state)
    argv = ["socat", f"TCP-LISTEN:{state.ports['s3_tls']},bind=127.0.0.1,fork,reuseaddr",
            f"UNIX-CONNECT:{sock}"]
    pid = procs.spawn(topology.wrap(state, "s3_endpoint", argv), state.log("s3_endpoint"),
                      state.pidfile("s3_endpoint"), procs.clean_env())
    with topology.db(state):
        procs.wait_until(lambda: procs.port_open("127.0.0.1", state.ports["s3_tls"]), 10,
                         "s3_endpoint", "listening in the DB namespace", state.log("s3_endpoint"), pid)
    return pid


def start_s3_front(state: LabState) -> int:
    pem = state.tls / "s3-front.pem"
    pem.write_text((state.tls / "server.crt").read_text() + (state.tls / "server.key").read_text())
    pem.chmod(0o600)
    cfg = backup_dir(state) / "s3-front.cfg"
    cfg.write_text(s3_front_config(state))
    pid = procs.spawn(["haproxy", "-db", "-f", str(cfg)], state.log("s3front"),
                      state.pidfile("s3front"), procs.clean_env())
    procs.wait_until(lambda: procs.port_open("127.0.0.1", state.ports["s3_tls"]), 10,
                     "s3front", "listening", state.log("s3front"), pid)
    if topology.is_vpc(state):
        procs.wait_until(s3_socket(state).exists, 10, "s3front", "unix socket created",
                         state.log("s3front"), pid)
        start_s3_endpoint(state)
    return pid


def start(state: LabState) -> None:
    """Config, S3 front, then the first full backup in the background (``lab up`` stays fast)."""
    write_config(state)
    if state.aws:
        start_s3_front(state)
    write_status(state, "starting", "first full backup not started yet")
    argv = [sys.executable, "-m", "pgproof.lab.backup_runner", "--state-dir", str(state.state_dir)]
    # vpc: pgBackRest runs where the database runs (it asks Patroni for the leader there).
    procs.spawn(topology.wrap(state, "backup", argv), state.log("backup"), state.pidfile("backup"), procs.clean_env(home="/tmp"))


# -- running the tool, status ------------------------------------------------------------

def run_tool(state: LabState, *args: str, node: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run pgbackrest as the database user; ``node`` supplies pg1-path/port/socket."""
    argv = [*tool_argv(state), f"--stanza={STANZA}"]
    if node:
        argv += [f"--pg1-path={state.data_dir(node)}", f"--pg1-port={state.ports[node + '_pg']}",
                 f"--pg1-socket-path={state.node_dir(node)}"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                          env=procs.clean_env(), cwd="/tmp")


def full_backup(state: LabState, node: str) -> str:
    """stanza-create (idempotent) and a full backup from ``node``; returns the backup label."""
    for args in (("stanza-create",), ("backup", "--type=full")):
        r = run_tool(state, *args, node=node)
        if r.returncode != 0:
            raise procs.ComponentError("backup", f"pgbackrest {' '.join(args)} on {node} exited "
                                       f"{r.returncode}: {(r.stderr or r.stdout).strip()[-800:]}")
    r = run_tool(state, "--output=json", "info")
    stanzas = json.loads(r.stdout or "[]")
    backups = stanzas[0].get("backup", []) if stanzas else []
    return backups[-1]["label"] if backups else "?"


def snapshot_backup(state: LabState, node: str) -> str:
    """``chaos.snapshot_before`` on the lab: an incremental backup (pgBackRest makes it full if none)."""
    r = run_tool(state, "backup", "--type=incr", node=node)
    if r.returncode != 0:
        raise procs.ComponentError("backup", f"pgbackrest backup on {node} exited {r.returncode}: "
                                   f"{(r.stderr or r.stdout).strip()[-300:]}")
    r = run_tool(state, "--output=json", "info")
    stanzas = json.loads(r.stdout or "[]")
    backups = stanzas[0].get("backup", []) if stanzas else []
    if not backups:
        raise procs.ComponentError("backup", "pgbackrest info lists no backup after the backup")
    return str(backups[-1]["label"])


@dataclass
class BackupStatus:
    state: str  # starting | running | ready | failed
    detail: str
    at: float

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def write_status(state: LabState, what: str, detail: str) -> None:
    f = status_file(state)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps({"state": what, "detail": detail, "at": time.time()}))
    tmp.replace(f)


def read_status(state: LabState) -> BackupStatus | None:
    try:
        doc = json.loads(status_file(state).read_text())
    except (OSError, ValueError):
        return None
    return BackupStatus(doc["state"], doc["detail"], doc["at"])


def wait_ready(state: LabState, timeout: float = 180) -> BackupStatus:
    """Block until the first full backup is in the repository (tests, mutations, drills)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = read_status(state)
        if st and st.ready:
            return st
        if st and st.state == "failed":
            raise procs.ComponentError("backup", f"first full backup failed: {st.detail}",
                                       state.log("backup"))
        time.sleep(0.5)
    raise procs.ComponentError("backup", f"first full backup not ready within {timeout:.0f} s",
                               state.log("backup"))


def target_section(state: LabState) -> list[str]:
    """The generated target's [backup] section: tool, stanza, how to run the info command."""
    return ["", "[backup]", 'tool = "pgbackrest"', f'stanza = "{STANZA}"',
            f"command = {json.dumps(shlex.join(tool_argv(state)))}", 'host = "local://"']


# -- restoring (the layout a restore drill uses) ------------------------------------------

def restore_argv(state: LabState, pg_path: Path, target_time: datetime | None = None) -> list[str]:
    """pgbackrest restore into a scratch data directory (owned by the database user, 0700).

    ``archive-mode=off``: the scratch instance must never push WAL into the lab's repository.
    With ``target_time`` it recovers to that instant and promotes (point-in-time restore).
    """
    argv = [*tool_argv(state), f"--stanza={STANZA}", f"--pg1-path={pg_path}", "--archive-mode=off"]
    if target_time:
        # pgbackrest wants "YYYY-MM-DD HH:MM:SS.mmm+00", not ISO 8601's "T".
        when = target_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"
        argv += ["--type=time", f"--target={when}", "--target-action=promote"]
    return [*argv, "restore"]


def scratch_postgres_argv(pg_path: Path, port: int) -> list[str]:
    """Start a restored data directory on its own port and socket, away from the nodes' paths."""
    settings = {"port": port, "listen_addresses": "127.0.0.1", "unix_socket_directories": pg_path,
                "logging_collector": "off", "archive_mode": "off", "cluster_name": "restore",
                "hot_standby": "on", "synchronous_standby_names": ""}
    args = [f"{procs.PG_BIN / 'postgres'}", "-D", str(pg_path)]
    for k, v in settings.items():
        args += ["-c", f"{k}={v}"]
    return procs.as_service_user(args)
