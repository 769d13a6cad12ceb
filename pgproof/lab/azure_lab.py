"""Start the Azure twin (ARM server + Azurite over HTTPS with the lab CA) and provision it.

Both run as their own processes with pid files under the lab's state, so
``pgproof lab down`` stops them like every other component. The ARM store is a
JSON file the server rewrites after each request: mutations change it through
the SDKs while the lab runs, and nothing has to restart between matrix rows.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from pgproof import procs
from pgproof.lab import azure_spec as spec
from pgproof.lab import pki
from pgproof.target import Azure

AZURITE_DIR = Path(os.environ.get("PGPROOF_AZURITE_DIR", "/opt/pgproof/azurite-3.37.0"))
COMPONENTS = ("azure-arm", "azurite")


def azurite_bin() -> Path:
    exe = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not exe.exists():
        raise procs.ComponentError("azurite", f"{exe} not found; run `make setup` (npm azurite@3.37.0)")
    return exe


def start(state_dir: Path, tls_dir: Path, ports: tuple[int, int, int], timeout: float = 60,
          log_dir: Path | None = None) -> dict[str, Any]:
    """Start both processes, provision the healthy deployment, return the ``[azure]`` section."""
    log_dir = log_dir or state_dir / "logs"
    pid_dir = state_dir / "pids"
    for d in (log_dir, pid_dir, state_dir / "azure"):
        d.mkdir(parents=True, exist_ok=True)
    (state_dir / "azure").chmod(0o700)  # the store holds the vault's secrets; the token
    token = write_token(state_dir / "azure" / "token")
    ca = pki.CertFiles(tls_dir / "ca.crt", tls_dir / "ca.key")
    cert = pki.issue_server_cert(ca, state_dir / "azure", stem="azure")
    arm_port, kv_port, blob_port = ports
    store = state_dir / "azure" / "arm.json"
    store.unlink(missing_ok=True)
    for name in ("azure-arm.log", "azure-arm.out", "azurite.log"):
        (log_dir / name).unlink(missing_ok=True)
    env = procs.clean_env(home="/tmp")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    arm = procs.spawn([sys.executable, "-m", "pgproof.lab.azure_arm", str(arm_port), str(kv_port),
                       str(cert.cert), str(cert.key), str(store), spec.SUBSCRIPTION, spec.VAULT,
                       str(log_dir / "azure-arm.log"),
                       str(state_dir / "azure" / "deny.json"), str(state_dir), str(token)],
                      log_dir / "azure-arm.out", pid_dir / "azure-arm.pid", env)
    blob = procs.spawn([str(azurite_bin()), "--blobHost", "127.0.0.1", "--blobPort", str(blob_port),
                        "--cert", str(cert.cert), "--key", str(cert.key), "--location",
                        str(state_dir / "azure" / "azurite"), "--skipApiVersionCheck", "--loose",
                        "--silent"], log_dir / "azurite.log", pid_dir / "azurite.pid", env)
    procs.wait_until(lambda: procs.port_open("127.0.0.1", arm_port), timeout, "azure-arm",
                     "listening", log_dir / "azure-arm.out", arm)
    procs.wait_until(lambda: procs.port_open("127.0.0.1", blob_port), timeout, "azurite",
                     "listening", log_dir / "azurite.log", blob)
    section = section_for(ports, tls_dir / "ca.crt", token)
    from pgproof.probes.azure_sdk import Clients
    c = Clients(Azure.model_validate(section))
    spec.provision(c, f"{section['key_vault_url']}/")
    return section


def write_token(path: Path) -> Path:
    """A fresh random bearer token in an owner-only file: the twin accepts no other."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    tmp.replace(path)
    return path


def section_for(ports: tuple[int, int, int], ca_file: Path, token_file: Path) -> dict[str, Any]:
    arm_port, kv_port, blob_port = ports
    arm = f"https://127.0.0.1:{arm_port}"
    ids = spec.Ids()
    return {"subscription_id": spec.SUBSCRIPTION, "resource_group": spec.GROUP,
            "server_name": spec.SERVER, "key_vault": spec.VAULT,
            "admin_secret_name": spec.ADMIN_SECRET, "backup_storage_account": spec.ACCOUNT,
            "backup_container": spec.CONTAINER, "app_subnet_id": ids.app_subnet,
            "nsg_ids": [ids.nsg], "endpoint": arm, "authority": arm,
            "key_vault_url": f"https://127.0.0.1:{kv_port}",
            "blob_endpoint": f"https://127.0.0.1:{blob_port}/devstoreaccount1",
            "ca_file": str(ca_file), "credential": "lab-static", "token_file": str(token_file)}


def stop(state_dir: Path) -> list[str]:
    stopped = []
    for name in COMPONENTS:
        pidfile = state_dir / "pids" / f"{name}.pid"
        pid = procs.read_pid(pidfile)
        if pid and procs.pid_alive(pid):
            procs.stop_pid(pid, timeout=3)
            stopped.append(name)
        pidfile.unlink(missing_ok=True)
    return stopped
