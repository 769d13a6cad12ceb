"""The vpc lab's bastion: a real OpenSSH server in the app namespace, for forwarding only.

It has its own host key and accepts one key the lab generates; it may only
forward to the DB subnet and to the app's health port. Its port reaches the
root namespace through two socat halves joined by a unix socket.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pgproof import procs
from pgproof.lab import netns
from pgproof.lab.state import LabState

SSHD = Path("/usr/sbin/sshd")
USER = "root"  # the lab runs as root; the key is only accepted for forwarding (ForceCommand)


def ssh_dir(state: LabState) -> Path:
    return state.run_dir / "ssh"


def identity_file(state: LabState) -> Path:
    return ssh_dir(state) / "id_ed25519"


def known_hosts(state: LabState) -> Path:
    return ssh_dir(state) / "known_hosts"


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


def sshd_config(state: LabState) -> str:
    d, v, p = ssh_dir(state), state.vpc, state.ports
    return f"""Port {p['sshd']}
ListenAddress {v['app_ip']}
HostKey {d / 'host_ed25519'}
PidFile none
AuthorizedKeysFile {d / 'authorized_keys'}
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers {USER}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding local
PermitOpen {v['db_ip']}:* {v['app_ip']}:{p['health']}
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
ForceCommand /bin/false
LogLevel VERBOSE
"""


def start(state: LabState) -> int:
    """Keys, sshd in the app namespace, the bridge to the root's loopback; returns sshd's PID."""
    if not SSHD.exists():
        raise procs.ComponentError("bastion", f"{SSHD} not found: install Debian package "
                                   "openssh-server (run `make setup`)")
    d = ssh_dir(state)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    host_pub = _keygen(d / "host_ed25519", f"{state.scope}-bastion")
    (d / "authorized_keys").write_text(_keygen(identity_file(state), f"{state.scope}-runner") + "\n")
    bridge = state.ports["ssh_bridge"]
    known_hosts(state).write_text(f"[127.0.0.1]:{bridge} {' '.join(host_pub.split()[:2])}\n")
    cfg = d / "sshd_config"
    cfg.write_text(sshd_config(state))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    env = procs.clean_env(home="/tmp")
    ns = state.vpc["app_ns"]
    pid = procs.spawn(netns.exec_argv(ns, [str(SSHD), "-D", "-e", "-f", str(cfg)]),
                      state.log("sshd"), state.pidfile("sshd"), env)
    sock = d / "bridge.sock"
    sock.unlink(missing_ok=True)
    procs.spawn(netns.exec_argv(ns, ["socat", f"UNIX-LISTEN:{sock},fork,mode=600",
                                     f"TCP:{state.vpc['app_ip']}:{state.ports['sshd']}"]),
                state.log("bastion"), state.pidfile("bastion_ns"), env)
    procs.wait_until(sock.exists, 10, "bastion", "bridge socket created", state.log("bastion"))
    procs.spawn(["socat", f"TCP-LISTEN:{bridge},bind=127.0.0.1,fork,reuseaddr",
                 f"UNIX-CONNECT:{sock}"], state.log("bastion"), state.pidfile("bastion_root"), env)
    return pid


def via(state: LabState) -> str:
    """The ``postgres.via`` URL for the lab's target: the bridge, the lab's key and host key."""
    return (f"ssh://{USER}@127.0.0.1:{state.ports['ssh_bridge']}"
            f"?identity_file={identity_file(state)}&known_hosts={known_hosts(state)}")


def answers(state: LabState) -> bool:
    """The bastion's SSH banner comes back through the bridge."""
    import socket

    with socket.create_connection(("127.0.0.1", state.ports["ssh_bridge"]), timeout=2) as s:
        s.settimeout(3)
        return s.recv(64).startswith(b"SSH-2.0-")
