"""Self-managed nodes through pytest-testinfra: file modes, listeners, encrypted block device."""

from __future__ import annotations

from dataclasses import dataclass

from pgproof.probes import commands
from pgproof.probes.hostcis import display


@dataclass
class HostFacts:
    host: str
    data_dir: str
    data_dir_mode: int | None
    key_file: str | None
    key_mode: int | None
    listening: list[str]
    data_device_types: list[str]  # lsblk TYPEs from the data directory's device up to its disk


def gather(url: str, data_dir: str, key_file: str | None, port: int,
           limit_s: float = 60.0) -> HostFacts:
    """Each command on the host is killed at ``limit_s`` (``timeouts.subprocess_s``)."""
    host = commands.host(url, limit_s)
    d = host.file(data_dir)
    k = host.file(key_file) if key_file else None
    listening = [str(s) for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")]
    source = host.run("findmnt -n -o SOURCE --target %s", data_dir).stdout.strip()
    types: list[str] = []
    if source.startswith("/dev/"):
        out = host.run("lsblk -s -n -o TYPE %s", source.split("[")[0])
        types = [t.strip() for t in out.stdout.splitlines() if t.strip()]
    return HostFacts(display(url), data_dir, d.mode if d.exists else None, key_file,
                     k.mode if k is not None and k.exists else None, listening, types)
