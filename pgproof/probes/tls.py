"""Observe how a PostgreSQL endpoint does TLS: versions, cipher, certificates, plaintext.

Observes, never asserts: the judges in ``pgproof.checks.tls`` decide. PostgreSQL
negotiates TLS in-band (SSLRequest, then ``S``/``N``), so generic TLS scanners
need a STARTTLS mode; this probe speaks it directly and runs every handshake in
its own thread, so one endpoint takes tens of milliseconds. The wire helpers live
in ``tls_wire``; the weak-suite enumeration (TLS-5 as a scanner sees it) in
``tls_ciphers``, run once the accepted versions are known.

Traps handled here: OpenSSL 3 only offers TLS 1.0/1.1 with
``ALL:@SECLEVEL=0``; only a server alert (``TLSV1_ALERT_*``/``SSLV3_ALERT_*``)
proves a refusal, any other client-side failure is "inconclusive".
"""

from __future__ import annotations

import datetime as dt
import ssl
import struct
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from pgproof import pools
from pgproof.probes import tls_ciphers
from pgproof.probes.tls_ciphers import CipherScan
from pgproof.probes.tls_wire import (
    HAS_VERSION,
    TLS_VERSIONS,
    ConnectFailed,
    Handshake,
    NoTls,
    VersionOutcome,
    classify_failure,
    connect,
    pinned_context,
    recv_exact,
    tls_handshake,
)
from pgproof.verdict import Unreachable

_PROTOCOL_3_0 = 196608


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
    ciphers: CipherScan | None = None  # weak suites offered one class at a time (TLS-5)

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


def _probe_version(host: str, port: int, version: str, sni: str | None, timeout: float,
                   ctx: ssl.SSLContext | None) -> tuple[VersionResult, Handshake | None, bool | None]:
    """One pinned handshake: (result, handshake if accepted, whether the server answered S)."""
    if ctx is None:
        why = f"this Python/OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer {version}"
        return VersionResult(version, VersionOutcome.INCONCLUSIVE, why), None, None
    try:
        hs = tls_handshake(host, port, ctx, sni, timeout)
    except ConnectFailed:
        raise
    except (OSError, NoTls) as exc:
        outcome, reason = classify_failure(exc)
        answered = False if isinstance(exc, NoTls) else (
            True if isinstance(exc, ssl.SSLError) else None)
        return VersionResult(version, outcome, reason), None, answered
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
    sock = connect(host, port, timeout)
    try:
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        kind = recv_exact(sock, 1)
        if kind not in (b"E", b"R"):
            return result(PlaintextOutcome.ERROR, None,
                          f"answered {kind!r} to a StartupMessage: not a PostgreSQL server?")
        (length,) = struct.unpack("!i", recv_exact(sock, 4))
        payload = recv_exact(sock, min(max(length - 4, 0), 65536))
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
            timeout: float) -> tuple[bool | None, str, Handshake | None]:
    try:
        return True, "", tls_handshake(host, port, ctx, sni, timeout)
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc), None
    except (OSError, NoTls) as exc:
        return None, f"could not complete a verifying handshake: {exc}", None


_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def _check_hostname(host: str, port: int, leaf: bytes, sni: str, timeout: float,
                    fresh: ssl.SSLContext | None, tries: int = 3) -> tuple[bool | None, str]:
    """Verify-full's name check with the leaf as its own anchor, so only the name is judged.

    A certificate reload between two handshakes presents another leaf, which fails
    as an unknown issuer, not as a name mismatch: take the new leaf and try again,
    and if the certificate keeps changing say so (unproven), never "does not match".
    """
    changed = ""
    for _ in range(tries):
        ctx = _verify_context(cadata=ssl.DER_cert_to_PEM_cert(leaf), check_hostname=True)
        try:
            tls_handshake(host, port, ctx, sni, timeout)
            return True, ""
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code in _NAME_MISMATCH:
                return False, exc.verify_message or str(exc)
            changed = exc.verify_message or str(exc)
        except (OSError, NoTls) as exc:
            return None, f"could not complete a verifying handshake: {exc}"
        if fresh is None:
            break
        try:
            again = tls_handshake(host, port, fresh, sni, timeout)
        except (OSError, NoTls) as exc:
            return None, f"could not complete a second handshake: {exc}"
        if not again.chain_der:
            break
        leaf = again.chain_der[0]
    return None, (f"the endpoint presented a different certificate on successive handshakes "
                  f"({changed}): a certificate reload in progress?")


def probe_endpoint(host: str, port: int, ca_file: Path | None,
                   server_hostname: str | None = None, timeout: float = 3.0,
                   probe_user: str = "pgproof_probe", probe_database: str = "postgres",
                   scan_ciphers: bool = True) -> TlsFacts:
    """Collect every TLS fact of ``host:port``; raise ``Unreachable`` if it cannot be reached.

    ``scan_ciphers`` adds the weak-suite enumeration (``tls_ciphers``) once the
    versions are known: a refused version needs no further handshake.
    ``server_hostname`` is the name clients use (SNI and hostname check), default ``host``.
    ``probe_user``/``probe_database`` pick the pg_hba rule the plaintext probe exercises.
    """
    sni = server_hostname or host
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    contexts = {v: pinned_context(v) if HAS_VERSION[v] else None for v in TLS_VERSIONS}
    chain_ctx = _verify_context(ca_file)
    try:
        with pools.threads(len(TLS_VERSIONS) + 2) as pool:
            futures = {v: pool.submit(_probe_version, host, port, v, sni, timeout, contexts[v])
                       for v in TLS_VERSIONS}
            plain_f = pool.submit(_probe_plaintext, host, port, probe_user, probe_database, timeout)
            chain_f = pool.submit(_verify, host, port, chain_ctx, sni, timeout)
            results = {v: f.result() for v, f in futures.items()}
            plaintext = plain_f.result()
            chain_valid, chain_error, verified = chain_f.result()
            best = next((results[v][1] for v in reversed(TLS_VERSIONS) if results[v][1]), None)
            refused = {v: r.reason for v, (r, _, _) in results.items()  # the version itself
                       if r.outcome is VersionOutcome.REFUSED and "PROTOCOL_VERSION" in r.reason}
            cipher_f = pool.submit(tls_ciphers.scan, host, port, sni, timeout, refused) if (
                scan_ciphers and any(s for _, _, s in results.values())) else None
            hostname_match, hostname_error = None, "no TLS handshake succeeded"
            if best is not None and best.chain_der:
                hostname_match, hostname_error = _check_hostname(
                    host, port, best.chain_der[0], sni, timeout, contexts.get(best.version))
            ciphers = cipher_f.result() if cipher_f else None
    except ConnectFailed as exc:
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
        elapsed_s=time.monotonic() - started, ciphers=ciphers,
    )


def _find_ca(ca_file: Path | None, best: Handshake | None, verified: Handshake | None,
             now: dt.datetime) -> CertInfo | None:
    """The anchor: from the verified chain if verification succeeded, else searched in ca_file."""
    if verified is not None and len(verified.verified_der) > 1:
        return _cert_info(verified.verified_der[-1], now)
    if ca_file is not None and best is not None and best.chain_der:
        anchor = _anchor_in(ca_file, best.chain_der[-1])
        return _describe(anchor, now) if anchor is not None else None
    return None

