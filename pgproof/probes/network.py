"""Where the endpoint resolves and whether it answers from the runner."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from pgproof.probes import commands
from pgproof.verdict import Unreachable


@dataclass
class ResolveFacts:
    host: str
    addresses: list[str]


def resolve(host: str) -> ResolveFacts:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise Unreachable(f"endpoint {host} does not resolve: {exc.strerror}") from None
    return ResolveFacts(host, sorted({str(i[4][0]) for i in infos}))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def subnet_of(inner: Network, outer: Network) -> bool:
    """``inner`` lies within ``outer``; networks of different IP versions never do."""
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local


def tcp_reachable(host: str, port: int, timeout: float = 2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def reachable_from(url: str, host: str, port: int, timeout: float = 3,
                   limit_s: float = 60.0) -> bool:
    """Can ``url`` (a testinfra host, or ``netns://NAME``) open a TCP connection to host:port?"""
    probe = f"timeout {timeout:g} bash -c '</dev/tcp/{host}/{port}'"
    if url.startswith("netns://"):
        import subprocess

        ns = url.removeprefix("netns://")
        r = subprocess.run(["ip", "netns", "exec", ns, "bash", "-c", probe],
                           capture_output=True, timeout=timeout + 5)
        if r.returncode not in (0, 1, 124):
            raise Unreachable(f"vantage point {url} unusable: {r.stderr.decode().strip()}")
        return r.returncode == 0
    return bool(commands.host(url, limit_s, "the TCP probe").run(probe).succeeded)
