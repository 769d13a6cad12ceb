"""Which weak cipher suites a PostgreSQL endpoint accepts, enumerated the way a scanner does.

A strong client's negotiated cipher never shows that a server also accepts
anonymous or NULL suites (FIELD-NOTES: ``ALL:@SECLEVEL=0`` accepts ADH/AECDH at
TLS 1.2). So, per TLS version, we offer ONE weak class at a time; when the server
picks a suite we drop it and offer the rest again, until it refuses with an alert.
That is the full accepted set of the class; a refused class costs one handshake.

This client is Python's OpenSSL: it cannot offer suites its library has removed
(on OpenSSL 3: EXPORT, RC4, DES, 3DES). Those classes are ``not-probed``, never
``refused``. TLS 1.3 defines only AEAD suites with ephemeral key exchange, so it
has no weak class to offer (and Python cannot restrict its suites anyway).
"""

from __future__ import annotations

import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from pgproof.probes.tls_wire import (
    ConnectFailed,
    NoTls,
    VersionOutcome,
    classify_failure,
    pinned_context,
    tls_handshake,
)

SCANNED_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2")
TLS13_NOTE = ("TLS 1.3 suites are all AEAD with ephemeral key exchange: no weak class exists "
              "there, so none is offered")
NO_FORWARD_SECRECY = "static-RSA"
_FANOUT = 3  # parallel elimination chains once a class is accepted


@dataclass(frozen=True)
class WeakClass:
    name: str
    openssl: str  # OpenSSL cipher-string selector for the class
    what: str  # how a finding names it


# MD5 suites besides NULL-MD5 are RC4-MD5 and EXPORT ones: covered (or not) by those classes.
WEAK_CLASSES: tuple[WeakClass, ...] = (
    WeakClass("anonymous", "aNULL", "anonymous key exchange (no server authentication)"),
    WeakClass("NULL", "eNULL", "NULL encryption"),
    WeakClass("EXPORT", "EXP", "EXPORT-grade"),
    WeakClass("RC4", "RC4", "RC4"),
    WeakClass("DES", "DES", "single DES"),
    WeakClass("3DES", "3DES", "3DES"),
    WeakClass("MD5", "MD5", "MD5 MAC"),
    WeakClass(NO_FORWARD_SECRECY, "kRSA", "key exchange without forward secrecy (static RSA)"),
)
# The oldest version a suite can be used at, as get_ciphers() spells it ('protocol'), and ours.
_RANK = {"SSLv3": 0, "TLSv1.0": 1, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3}


class CipherOutcome(StrEnum):
    ACCEPTED = "accepted"  # the server completed a handshake with a suite of the class
    REFUSED = "refused"  # the server sent an alert for every suite of the class we offered
    NOT_PROBED = "not-probed"  # this client cannot offer any suite of the class at this version
    INCONCLUSIVE = "inconclusive"  # our client failed mid-way; says nothing about the server
    ERROR = "error"  # network failure, EOF without alert


@dataclass(frozen=True)
class ClassResult:
    weak_class: str
    version: str
    outcome: CipherOutcome
    accepted: tuple[str, ...] = ()  # OpenSSL names; the first is the server's preferred one
    offered: tuple[str, ...] = ()  # what this client could offer for the class at this version
    reason: str = ""


@dataclass(frozen=True)
class CipherScan:
    results: tuple[ClassResult, ...]
    client: str = ssl.OPENSSL_VERSION
    note: str = TLS13_NOTE
    elapsed_s: float = 0.0

    def get(self, weak_class: str, version: str) -> ClassResult | None:
        return next((r for r in self.results
                     if r.weak_class == weak_class and r.version == version), None)

    def accepted(self, version: str | None = None, classes: set[str] | None = None) -> set[str]:
        """Accepted suites (OpenSSL names), optionally for one version / some classes."""
        return {s for r in self.results for s in r.accepted
                if (version is None or r.version == version)
                and (classes is None or r.weak_class in classes)}

    def offerable(self) -> list[str]:
        """Classes this client could offer at some version."""
        return [c.name for c in WEAK_CLASSES
                if any(r.weak_class == c.name and r.offered for r in self.results)]


def offerable_suites(weak_class: WeakClass, version: str) -> tuple[str, ...]:
    """The suites of ``weak_class`` this client's OpenSSL can offer at ``version``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.set_ciphers(f"{weak_class.openssl}:@SECLEVEL=0")
    except ssl.SSLError:  # "No cipher can be selected": the library does not have the class
        return ()
    top = _RANK[version]
    return tuple(c["name"] for c in ctx.get_ciphers()
                 if c.get("protocol") in _RANK and _RANK[c["protocol"]] <= top)


def _eliminate(host: str, port: int, sni: str | None, version: str, suites: list[str],
               timeout: float, limit: int | None = None
               ) -> tuple[list[str], tuple[VersionOutcome, str] | None]:
    """Offer ``suites``, drop each one the server picks, until it refuses (an alert).

    Returns the suites accepted and what stopped us if it was not the server
    refusing (our client failing, the network): the rest is then unknown.
    """
    accepted: list[str] = []
    remaining = list(suites)
    while remaining and (limit is None or len(accepted) < limit):
        try:
            ctx = pinned_context(version, ":".join(remaining) + ":@SECLEVEL=0")
            hs = tls_handshake(host, port, ctx, sni, timeout)
        except ConnectFailed:
            raise
        except (OSError, NoTls) as exc:
            outcome, reason = classify_failure(exc)
            return accepted, None if outcome is VersionOutcome.REFUSED else (outcome, reason)
        accepted.append(hs.cipher)
        if hs.cipher not in remaining:  # the server picked a suite we did not offer: stop
            return accepted, (VersionOutcome.INCONCLUSIVE, f"server chose {hs.cipher}, not offered")
        remaining.remove(hs.cipher)
    return accepted, None


def _enumerate(host: str, port: int, sni: str | None, weak_class: WeakClass, version: str,
               timeout: float, version_refused: bool) -> ClassResult:
    """One handshake offering the whole class; only if the server accepts, enumerate the rest.

    The healthy case costs one refused handshake. After an acceptance the other
    suites are split into ``_FANOUT`` chains run side by side, so a server that
    accepts a dozen suites costs a few handshake round trips, not a dozen.
    """
    offered = offerable_suites(weak_class, version)
    def result(outcome: CipherOutcome, reason: str = "", accepted: tuple[str, ...] = ()
               ) -> ClassResult:
        return ClassResult(weak_class.name, version, outcome, accepted, offered, reason)
    if version_refused:  # the server refused the version itself with an alert: every suite too
        return result(CipherOutcome.REFUSED, f"the server refuses {version} altogether")
    if not offered:
        return result(CipherOutcome.NOT_PROBED,
                      f"this client ({ssl.OPENSSL_VERSION}) has no {weak_class.name} suite "
                      f"it can offer at {version}")
    first, failure = _eliminate(host, port, sni, version, list(offered), timeout, limit=1)
    if not first:
        if failure is None:
            return result(CipherOutcome.REFUSED, "the server sent an alert for every suite offered")
        state = CipherOutcome.ERROR if failure[0] is VersionOutcome.ERROR else CipherOutcome.INCONCLUSIVE
        return result(state, failure[1])
    rest = [s for s in offered if s not in first]
    chains = [rest[i::_FANOUT] for i in range(_FANOUT) if rest[i::_FANOUT]]
    failures = [failure] if failure else []
    accepted = list(first)
    if chains and not failure:
        with ThreadPoolExecutor(max_workers=len(chains)) as pool:
            parts = list(pool.map(lambda c: _eliminate(host, port, sni, version, c, timeout), chains))
        accepted += [s for got, _ in parts for s in got]
        failures += [f for _, f in parts if f]
    reason = f"stopped early, the rest is unknown: {failures[0][1]}" if failures else ""
    return result(CipherOutcome.ACCEPTED, reason, tuple(accepted))


def scan(host: str, port: int, sni: str | None = None, timeout: float = 3.0,
         refused_versions: set[str] | frozenset[str] = frozenset(), workers: int = 4) -> CipherScan:
    """Every weak class at every TLS version up to 1.2; raises ``ConnectFailed`` if unreachable.

    ``refused_versions``: versions the server already refused with an alert (the
    version probe's result); their classes are refused without another handshake.
    """
    started = time.monotonic()
    jobs = [(c, v) for v in SCANNED_VERSIONS for c in WEAK_CLASSES]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_enumerate, host, port, sni, c, v, timeout, v in refused_versions)
                   for c, v in jobs]
        results = tuple(f.result() for f in futures)
    return CipherScan(results, elapsed_s=time.monotonic() - started)


_STATIC_RSA_FIRST = {"AES", "AES128", "AES256", "ARIA128", "ARIA256", "CAMELLIA128", "CAMELLIA256",
                     "DES", "IDEA", "NULL", "RC2", "RC4", "SEED"}


def classes_of(openssl_name: str) -> set[str]:
    """The weak classes an OpenSSL suite name belongs to, by name alone.

    For suites this client cannot build (another scanner's RC4-SHA, say), so
    that results from any tool can be compared class by class.
    """
    tokens = openssl_name.upper().split("-")
    found = set()
    if tokens[0] in ("ADH", "AECDH"):
        found.add("anonymous")
    if "NULL" in tokens:
        found.add("NULL")
    if tokens[0].startswith("EXP"):
        found.add("EXPORT")
        tokens = tokens[1:]
    if "RC4" in tokens:
        found.add("RC4")
    if "CBC3" in tokens or "3DES" in tokens:
        found.add("3DES")
    elif "DES" in tokens:
        found.add("DES")
    if "MD5" in tokens:
        found.add("MD5")
    if tokens and tokens[0] in _STATIC_RSA_FIRST:
        found.add(NO_FORWARD_SECRECY)
    return found
