"""Observe how a PostgreSQL endpoint does TLS: versions, cipher, certificates, plaintext.

Observes, never asserts: the judges in ``pgproof.checks.tls`` decide. PostgreSQL
negotiates TLS in-band (SSLRequest, then ``S``/``N``), so generic TLS scanners
need a STARTTLS mode; this probe speaks it directly and runs every handshake in
its own thread, so one endpoint takes tens of milliseconds.

Traps handled here (see FIELD-NOTES.md): OpenSSL 3 only offers TLS 1.0/1.1 with
``ALL:@SECLEVEL=0``; only a server alert (``TLSV1_ALERT_*``/``SSLV3_ALERT_*``)
proves a refusal, any other client-side failure is "inconclusive".
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import struct
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from pgproof.tunnel import dial
from pgproof.verdict import Unreachable

# Spelled as PostgreSQL's ssl_min_protocol_version spells them, oldest first.
TLS_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_SSL_VERSION = {
    "TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_HAS_VERSION = {"TLSv1": ssl.HAS_TLSv1, "TLSv1.1": ssl.HAS_TLSv1_1,
                "TLSv1.2": ssl.HAS_TLSv1_2, "TLSv1.3": ssl.HAS_TLSv1_3}
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_PROTOCOL_3_0 = 196608
_SERVER_ALERT_PREFIXES = ("TLSV1_ALERT", "SSLV3_ALERT")


class VersionOutcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"  # the server sent an alert: proof it will not speak this version
    INCONCLUSIVE = "inconclusive"  # our client could not offer it; says nothing about the server
    ERROR = "error"  # network failure, EOF without alert, TLS not enabled


class PlaintextOutcome(StrEnum):
    REFUSED_NO_ENCRYPTION = "refused-no-encryption"
    REFUSED_OTHER = "refused-other"
    AUTH_REQUESTED = "auth-requested"  # the server would log in a plaintext client
    ERROR = "error"


@dataclass(frozen=True)
class VersionResult:
    version: str
    outcome: VersionOutcome
    reason: str = ""  # OpenSSL reason or error text; empty when accepted
    cipher: str | None = None


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_after: dt.datetime
    days_left: int
    key_type: str  # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int  # RSA/DSA modulus bits, EC curve bits
    key_curve: str | None = None
    sans: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaintextResult:
    outcome: PlaintextOutcome
    sqlstate: str | None = None
    message: str = ""
    user: str = ""  # the pg_hba rule exercised is the one for this user/database
    database: str = ""


@dataclass(frozen=True)
class TlsFacts:
    host: str
    port: int
    server_hostname: str
    ssl_supported: bool | None  # SSLRequest answered S (True) / N (False); None if unknown
    versions: dict[str, VersionResult]
    protocol: str | None  # of the best accepted handshake
    cipher: str | None
    cipher_bits: int | None
    chain: tuple[CertInfo, ...]  # as presented: leaf first, then intermediates
    ca_file: Path | None  # None: the system trust store was used
    chain_valid: bool | None  # None: could not be checked (reason in chain_error)
    chain_error: str
    hostname_match: bool | None  # checked with the leaf as its own anchor: independent of chain
    hostname_error: str
    ca: CertInfo | None  # the trusted CA certificate that anchors the presented chain
    plaintext: PlaintextResult
    elapsed_s: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def leaf(self) -> CertInfo | None:
        return self.chain[0] if self.chain else None

    @property
    def ca_days_left(self) -> int | None:
        return self.ca.days_left if self.ca else None

    def accepted_versions(self) -> set[str]:
        return {v for v, r in self.versions.items() if r.outcome is VersionOutcome.ACCEPTED}


class _ConnectFailed(Exception):
    """TCP connect failed: the endpoint is unreachable, not non-compliant."""


class _NoTls(Exception):
    """The server answered N to SSLRequest."""


@dataclass
class _Handshake:
    version: str
    cipher: str
    cipher_bits: int
    chain_der: list[bytes]
    verified_der: list[bytes]


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection(dial(host, port), timeout=timeout)
    except OSError as exc:
        raise _ConnectFailed(f"{host}:{port}: {exc.strerror or exc}") from exc


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def _tls_handshake(host: str, port: int, ctx: ssl.SSLContext, sni: str | None,
                   timeout: float) -> _Handshake:
    """SSLRequest, then a TLS handshake with ``ctx``; raises on failure."""
    sock = _connect(host, port, timeout)
    try:
        sock.sendall(_SSL_REQUEST)
        answer = _recv_exact(sock, 1)
        if answer == b"N":
            raise _NoTls("server answered N to SSLRequest: TLS is not enabled")
        if answer != b"S":
            raise ConnectionError(f"answered {answer!r} to SSLRequest: not a PostgreSQL server?")
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            name, _proto, bits = tls.cipher() or ("", "", 0)
            obj: Any = tls._sslobj  # private until 3.13's public get_*_chain
            leaf = tls.getpeercert(binary_form=True)
            chain = _der_list(getattr(obj, "get_unverified_chain", lambda: None)()) or (
                [leaf] if leaf else [])
            verified = _der_list(getattr(obj, "get_verified_chain", lambda: None)())
            return _Handshake(tls.version() or "", name, bits, chain, verified)
    finally:
        sock.close()


def _der_list(certs: Any) -> list[bytes]:
    return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs or ()]  # type: ignore[attr-defined]


def _version_context(version: str) -> ssl.SSLContext:
    """Unverified, pinned to one version; legacy versions need SECLEVEL=0 to be offered at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSVersion.TLSv1/1_1 are deprecated: we probe them on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _SSL_VERSION[version]
        ctx.maximum_version = _SSL_VERSION[version]
    if version != "TLSv1.3":  # TLS 1.3 suites are configured separately and all are strong
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def _probe_version(host: str, port: int, version: str, sni: str | None, timeout: float,
                   ctx: ssl.SSLContext | None) -> tuple[VersionResult, _Handshake | None, bool | None]:
    """One pinned handshake: (result, handshake if accepted, whether the server answered S)."""
    if ctx is None:
        why = f"this Python/OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer {version}"
        return VersionResult(version, VersionOutcome.INCONCLUSIVE, why), None, None
    def row(outcome: VersionOutcome, reason: str) -> VersionResult:
        return VersionResult(version, outcome, reason)
    try:
        hs = _tls_handshake(host, port, ctx, sni, timeout)
    except _NoTls as exc:
        return row(VersionOutcome.ERROR, str(exc)), None, False
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
        return row(VersionOutcome.ERROR, f"connection closed without an alert: {exc}"), None, True
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if reason.startswith(_SERVER_ALERT_PREFIXES):
            return row(VersionOutcome.REFUSED, reason), None, True
        return row(VersionOutcome.INCONCLUSIVE, f"our client failed: {exc}"), None, True
    except OSError as exc:  # timeout, reset, closed before answering SSLRequest
        return row(VersionOutcome.ERROR, f"{type(exc).__name__}: {exc}"), None, None
    return VersionResult(version, VersionOutcome.ACCEPTED, "", hs.cipher), hs, True


def _probe_plaintext(host: str, port: int, user: str, database: str,
                     timeout: float) -> PlaintextResult:
    """Send a plain StartupMessage: a compliant server refuses it before any password."""
    def result(outcome: PlaintextOutcome, code: str | None, msg: str) -> PlaintextResult:
        return PlaintextResult(outcome, code, msg, user, database)
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                      for k, v in (("user", user), ("database", database),
                                   ("application_name", "pgproof")))
    body = struct.pack("!i", _PROTOCOL_3_0) + params + b"\0"
    sock = _connect(host, port, timeout)
    try:
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        kind = _recv_exact(sock, 1)
        if kind not in (b"E", b"R"):
            return result(PlaintextOutcome.ERROR, None,
                          f"answered {kind!r} to a StartupMessage: not a PostgreSQL server?")
        (length,) = struct.unpack("!i", _recv_exact(sock, 4))
        payload = _recv_exact(sock, min(max(length - 4, 0), 65536))
    except OSError as exc:
        return result(PlaintextOutcome.ERROR, None, f"{type(exc).__name__}: {exc}")
    finally:
        sock.close()
    if kind == b"R":
        code = struct.unpack("!i", payload[:4])[0] if len(payload) >= 4 else -1
        what = "logged in without a password (trust)" if code == 0 else f"authentication request code {code}"
        return result(PlaintextOutcome.AUTH_REQUESTED, None, what)
    fields = {p[:1].decode(errors="replace"): p[1:].decode(errors="replace")
              for p in payload.split(b"\0") if p}
    code, msg = fields.get("C"), fields.get("M", "")
    # PostgreSQL: 28000 "... no encryption"; PgBouncer: 08P01 "SSL required".
    if (code == "28000" and "no encryption" in msg.lower()) or "ssl required" in msg.lower():
        return result(PlaintextOutcome.REFUSED_NO_ENCRYPTION, code, msg)
    return result(PlaintextOutcome.REFUSED_OTHER, code, msg)


def _cert_info(der: bytes, now: dt.datetime) -> CertInfo:
    return _describe(x509.load_der_x509_certificate(der), now)


def _describe(cert: x509.Certificate, now: dt.datetime) -> CertInfo:
    key = cert.public_key()
    curve = None
    if isinstance(key, rsa.RSAPublicKey):
        kind, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, bits, curve = "EC", key.curve.key_size, key.curve.name
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        kind, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        kind, bits = "DSA", key.key_size
    else:
        kind, bits = type(key).__name__, 0
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(n.value) for n in san)
    except x509.ExtensionNotFound:
        sans = ()
    not_after = cert.not_valid_after_utc
    return CertInfo(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), not_after,
                    (not_after - now).days, kind, bits, curve, sans)


def _anchor_in(ca_file: Path, top_der: bytes) -> x509.Certificate | None:
    """The ca_file certificate that signed the top of the presented chain (walked to the root)."""
    pool = x509.load_pem_x509_certificates(ca_file.read_bytes())
    cert, found = x509.load_der_x509_certificate(top_der), None
    for _ in range(8):
        issuer = next((c for c in pool if c != cert and _signed_by(cert, c)), None)
        if issuer is None:
            break
        found = cert = issuer
        if issuer.subject == issuer.issuer:
            break
    return found


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (InvalidSignature, ValueError, TypeError):  # bad signature, name mismatch, key type
        return False


def _verify_context(ca_file: Path | None = None, cadata: str | None = None,
                    check_hostname: bool = False) -> ssl.SSLContext:
    """Default-security verifying context, as a modern client (libpq verify-full) would use."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cadata is not None:
        ctx.load_verify_locations(cadata=cadata)
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # trust the leaf itself: only names matter
    elif ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    else:
        ctx.load_default_certs()
    return ctx


def _verify(host: str, port: int, ctx: ssl.SSLContext, sni: str | None,
            timeout: float) -> tuple[bool | None, str, _Handshake | None]:
    try:
        return True, "", _tls_handshake(host, port, ctx, sni, timeout)
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc), None
    except (OSError, _NoTls) as exc:
        return None, f"could not complete a verifying handshake: {exc}", None


def probe_endpoint(host: str, port: int, ca_file: Path | None,
                   server_hostname: str | None = None, timeout: float = 3.0,
                   probe_user: str = "pgproof_probe", probe_database: str = "postgres") -> TlsFacts:
    """Collect every TLS fact of ``host:port``; raise ``Unreachable`` if it cannot be reached.

    ``server_hostname`` is the name clients use (SNI and hostname check), default ``host``.
    ``probe_user``/``probe_database`` pick the pg_hba rule the plaintext probe exercises.
    """
    sni = server_hostname or host
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    contexts = {v: _version_context(v) if _HAS_VERSION[v] else None for v in TLS_VERSIONS}
    chain_ctx = _verify_context(ca_file)
    try:
        with ThreadPoolExecutor(max_workers=len(TLS_VERSIONS) + 2) as pool:
            futures = {v: pool.submit(_probe_version, host, port, v, sni, timeout, contexts[v])
                       for v in TLS_VERSIONS}
            plain_f = pool.submit(_probe_plaintext, host, port, probe_user, probe_database, timeout)
            chain_f = pool.submit(_verify, host, port, chain_ctx, sni, timeout)
            results = {v: f.result() for v, f in futures.items()}
            plaintext = plain_f.result()
            chain_valid, chain_error, verified = chain_f.result()
            best = next((results[v][1] for v in reversed(TLS_VERSIONS) if results[v][1]), None)
            hostname_match, hostname_error = None, "no TLS handshake succeeded"
            if best is not None and best.chain_der:
                pem = ssl.DER_cert_to_PEM_cert(best.chain_der[0])
                ok, err, _ = _verify(host, port, _verify_context(cadata=pem, check_hostname=True),
                                     sni, timeout)
                hostname_match, hostname_error = ok, err
    except _ConnectFailed as exc:
        raise Unreachable(f"cannot connect to PostgreSQL at {exc}") from None
    versions = {v: r for v, (r, _, _) in results.items()}
    answers = {s for _, _, s in results.values() if s is not None}
    ssl_supported = True if True in answers else (False if answers else None)
    chain = tuple(_cert_info(d, now) for d in best.chain_der) if best else ()
    ca = _find_ca(ca_file, best, verified, now)
    return TlsFacts(
        host=host, port=port, server_hostname=sni, ssl_supported=ssl_supported, versions=versions,
        protocol=best.version if best else None, cipher=best.cipher if best else None,
        cipher_bits=best.cipher_bits if best else None, chain=chain, ca_file=ca_file,
        chain_valid=chain_valid, chain_error=chain_error, hostname_match=hostname_match,
        hostname_error=hostname_error, ca=ca, plaintext=plaintext,
        elapsed_s=time.monotonic() - started,
    )


def _find_ca(ca_file: Path | None, best: _Handshake | None, verified: _Handshake | None,
             now: dt.datetime) -> CertInfo | None:
    """The anchor: from the verified chain if verification succeeded, else searched in ca_file."""
    if verified is not None and len(verified.verified_der) > 1:
        return _cert_info(verified.verified_der[-1], now)
    if ca_file is not None and best is not None and best.chain_der:
        anchor = _anchor_in(ca_file, best.chain_der[-1])
        return _describe(anchor, now) if anchor is not None else None
    return None


def verify_full_login(conninfo: dict[str, Any], timeout: int = 5) -> str | None:
    """Log in with ``sslmode=verify-full`` (TLS-3 as a client sees it): None on success, else the error."""
    import psycopg  # local: the probe itself must not need a database driver

    kw = {"connect_timeout": timeout, **conninfo, "sslmode": "verify-full"}
    try:
        with psycopg.connect(**kw) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None

