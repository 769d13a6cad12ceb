"""What speaks on a port: PostgreSQL's SSLRequest answer, or another protocol's first bytes.

A wrong port (an HTTP service, SSH, a raw TLS listener) otherwise shows up as
libpq's "connection timeout expired" many seconds later, with no hint. This
probe sends PostgreSQL's SSLRequest and reads the first bytes back; a server
that says nothing gets a blank line (``\\r\\n\\r\\n``), which makes line-based
protocols such as HTTP answer. Observes only: silence or a refused connection
is reported as such and never called "not PostgreSQL".
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from pgproof.tunnel import dial

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
NUDGE = b"\r\n\r\n"
NUDGE_AFTER_S = 0.5
# First bytes -> protocol, for the sentence a user reads.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"HTTP/", "HTTP"), (b"SSH-", "SSH"), (b"\x15\x03", "TLS directly (no SSLRequest)"),
    (b"-ERR", "Redis"), (b"+OK", "a POP3/Redis-like protocol"), (b"220", "SMTP or FTP"),
    (b"* OK", "IMAP"), (b"<", "HTTP"),  # an HTTP/0.9-style error page has no status line
)


@dataclass(frozen=True)
class WireAnswer:
    host: str
    port: int
    postgres: bool | None  # True: answered like PostgreSQL; False: another protocol; None: unknown
    protocol: str  # "PostgreSQL", "HTTP", ... or "" when nothing was learnt
    first_bytes: bytes = b""
    detail: str = ""  # connect error or "no answer"
    elapsed_s: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def classify(data: bytes) -> tuple[bool | None, str]:
    """PostgreSQL answers an SSLRequest with one byte: S, N (or E, an early error)."""
    if not data:
        return None, ""
    if data[:1] in (b"S", b"N", b"E") and not data.startswith(b"SSH-"):
        return True, "PostgreSQL"
    for prefix, name in SIGNATURES:
        if data.startswith(prefix):
            return False, name
    return False, f"an unknown protocol (first bytes {data[:16]!r})"


def greet(host: str, port: int, budget_s: float = 1.5) -> WireAnswer:
    """SSLRequest, then at most ``budget_s`` of reading; closes before any TLS or login."""
    started = time.monotonic()
    deadline = started + budget_s

    def answer(pg: bool | None, proto: str, data: bytes = b"", detail: str = "") -> WireAnswer:
        return WireAnswer(host, port, pg, proto, data, detail, time.monotonic() - started)

    try:
        sock = socket.create_connection(dial(host, port), timeout=budget_s)
    except OSError as exc:
        return answer(None, "", detail=f"cannot connect: {exc.strerror or exc}")
    data, nudged = b"", False
    try:
        sock.sendall(SSL_REQUEST)
        while len(data) < 16:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # PostgreSQL answers in milliseconds; after NUDGE_AFTER_S, nudge line-based protocols
            # (harmless to a slow PostgreSQL: its answer still arrives and is read the same way).
            wait = left if nudged else max(0.05, min(left, NUDGE_AFTER_S))
            sock.settimeout(wait)
            try:
                chunk = sock.recv(64)
            except TimeoutError:
                if data or nudged:
                    break
                sock.sendall(NUDGE)
                nudged = True
                continue
            if not chunk:
                break
            data += chunk
            if data[:1] in (b"S", b"N"):
                break  # PostgreSQL: one byte, then it waits for us
    except OSError as exc:
        if not data:
            return answer(None, "", detail=f"{type(exc).__name__}: {exc}")
    finally:
        sock.close()
    pg, proto = classify(data)
    return answer(pg, proto, data, "" if data else "no answer")
