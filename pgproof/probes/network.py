"""Where the endpoint resolves and whether it answers from the runner."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

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
    return ResolveFacts(host, sorted({i[4][0] for i in infos}))


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local


def tcp_reachable(host: str, port: int, timeout: float = 2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
