"""Which weak cipher suites a PostgreSQL endpoint accepts, enumerated the way a scanner does.

A strong client's negotiated cipher never shows that a server also accepts
anonymous or NULL suites (a server with ``ALL:@SECLEVEL=0`` accepts ADH/AECDH at
TLS 1.2). So, per TLS version, we offer ONE weak class at a time; when the server
picks a suite we drop it and offer the rest again, until it refuses with an alert.
That is the full accepted set of the class; a refused class costs one handshake.

Two ways to offer, per class: Python's OpenSSL for the suites it still has
(real handshakes, as before), and a hand-built ClientHello (``tls_hello``) for
the registered suites it has removed (on OpenSSL 3: every EXPORT, RC4, DES and
3DES suite, RC4-MD5, ADH-SEED ...), as scanners do. Keeping the ssl path where
it works means an acceptance there is a completed handshake, and the raw hello
is cross-checked against it in tests. A class is ``not-probed`` only if neither
can offer it. TLS 1.3 defines only AEAD suites with ephemeral key exchange, so
it has no weak class to offer (and Python cannot restrict its suites anyway).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from pgproof.probes import tls_hello
from pgproof.probes.tls_hello import HelloOutcome
from pgproof.probes.tls_suites import BY_ID, SUITES, Suite, class_suites
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
    ACCEPTED = "accepted"  # the server picked a suite of the class (handshake or ServerHello)
    REFUSED = "refused"  # the server sent an alert for every suite of the class we offered
    NOT_PROBED = "not-probed"  # no suite of the class could be offered at this version
    INCONCLUSIVE = "inconclusive"  # our client failed mid-way; says nothing about the server
    ERROR = "error"  # network failure, EOF without alert


@dataclass(frozen=True)
class ClassResult:
    weak_class: str
    version: str
    outcome: CipherOutcome
    accepted: tuple[str, ...] = ()  # OpenSSL names; the first is the server's preferred one
    offered: tuple[str, ...] = ()  # every suite offered for the class at this version
    reason: str = ""
    raw: tuple[str, ...] = ()  # the part of ``offered`` put in a hand-built ClientHello


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

    def raw_summary(self) -> str:
        """What the raw ClientHellos proved, classes with the same answers grouped.

        e.g. 'EXPORT/RC4 offered by raw ClientHello: refused (alert protocol_version)
        at TLSv1/TLSv1.1, refused (alert handshake_failure) at TLSv1.2'.
        """
        per_class: dict[str, dict[str, list[str]]] = {}
        for r in self.results:
            if r.raw:
                answer = r.reason.split("raw ClientHello: ", 1)[-1]
                per_class.setdefault(r.weak_class, {}).setdefault(answer, []).append(r.version)
        grouped: dict[str, list[str]] = {}
        for cls, answers in per_class.items():
            key = ", ".join(f"{a} at {'/'.join(vs)}" for a, vs in answers.items())
            grouped.setdefault(key, []).append(cls)
        return "; ".join(f"{'/'.join(classes)} offered by raw ClientHello: {key}"
                         for key, classes in grouped.items())


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


@cache
def _ssl_ids(weak_class: WeakClass, version: str) -> dict[str, int]:
    """OpenSSL name -> IANA ID of the suites ``offerable_suites`` returns."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.set_ciphers(f"{weak_class.openssl}:@SECLEVEL=0")
    except ssl.SSLError:
        return {}
    names = set(offerable_suites(weak_class, version))
    return {c["name"]: c["id"] & 0xFFFF for c in ctx.get_ciphers() if c["name"] in names}


def raw_suites(weak_class: WeakClass, version: str) -> tuple[Suite, ...]:
    """The registered suites of the class this client's OpenSSL cannot offer: the raw hello's part."""
    have = set(_ssl_ids(weak_class, version).values())
    return tuple(s for s in class_suites(weak_class.name, version) if s.id not in have)


# One offer: the suite the server picked, or None and why it stopped (REFUSED = an alert refusing).
_Offer = Callable[[list[str]], tuple[str | None, tuple[CipherOutcome, str]]]


def _ssl_offer(host: str, port: int, sni: str | None, version: str, timeout: float) -> _Offer:
    def offer(names: list[str]) -> tuple[str | None, tuple[CipherOutcome, str]]:
        try:
            ctx = pinned_context(version, ":".join(names) + ":@SECLEVEL=0")
            return tls_handshake(host, port, ctx, sni, timeout).cipher, (CipherOutcome.ACCEPTED, "")
        except ConnectFailed:
            raise
        except (OSError, NoTls) as exc:
            outcome, reason = classify_failure(exc)
            return None, (_FROM_VERSION[outcome], f"alert {reason}" if outcome is
                          VersionOutcome.REFUSED else reason)
    return offer


def _raw_offer(host: str, port: int, sni: str | None, version: str, timeout: float) -> _Offer:
    ids = {s.name: s.id for s in SUITES}
    def offer(names: list[str]) -> tuple[str | None, tuple[CipherOutcome, str]]:
        try:
            reply = tls_hello.hello(host, port, version, [ids[n] for n in names], sni, timeout)
        except NoTls as exc:
            return None, (CipherOutcome.ERROR, str(exc))
        if reply.outcome is HelloOutcome.ACCEPTED:
            chosen = BY_ID.get(reply.suite or 0)
            return (chosen.name if chosen else f"{reply.suite:#06x}"), (CipherOutcome.ACCEPTED, "")
        if reply.outcome is HelloOutcome.REFUSED:
            return None, (CipherOutcome.REFUSED, f"alert {reply.alert}")
        return None, (_FROM_VERSION[VersionOutcome(reply.outcome.value)], reply.detail)
    return offer


_FROM_VERSION = {VersionOutcome.REFUSED: CipherOutcome.REFUSED,
                 VersionOutcome.INCONCLUSIVE: CipherOutcome.INCONCLUSIVE,
                 VersionOutcome.ERROR: CipherOutcome.ERROR, VersionOutcome.ACCEPTED: CipherOutcome.ACCEPTED}


def _eliminate(offer: _Offer, suites: list[str], limit: int | None = None
               ) -> tuple[list[str], tuple[CipherOutcome, str]]:
    """Offer ``suites``, drop each one the server picks, until it refuses (an alert).

    Returns the suites accepted and how it ended: (REFUSED, the alert) when the
    server refused the rest; otherwise what stopped us (our client failing, the
    network), and the rest is unknown.
    """
    accepted: list[str] = []
    remaining = list(suites)
    while remaining and (limit is None or len(accepted) < limit):
        chosen, end = offer(remaining)
        if chosen is None:
            return accepted, end
        accepted.append(chosen)
        if chosen not in remaining:  # the server picked a suite we did not offer: stop
            return accepted, (CipherOutcome.INCONCLUSIVE, f"server chose {chosen}, not offered")
        remaining.remove(chosen)
    return accepted, (CipherOutcome.ACCEPTED, "")


def _part(offer: _Offer, suites: tuple[str, ...]) -> tuple[CipherOutcome, tuple[str, ...], str]:
    """One handshake offering the whole part; only if the server accepts, enumerate the rest.

    The healthy case costs one refused handshake. After an acceptance the other
    suites are split into ``_FANOUT`` chains run side by side, so a server that
    accepts a dozen suites costs a few handshake round trips, not a dozen.
    """
    first, end = _eliminate(offer, list(suites), limit=1)
    if not first:
        return end[0], (), end[1]
    rest = [s for s in suites if s not in first]
    chains = [rest[i::_FANOUT] for i in range(_FANOUT) if rest[i::_FANOUT]]
    ends = [end]
    accepted = list(first)
    if chains and end[0] is CipherOutcome.ACCEPTED:
        with ThreadPoolExecutor(max_workers=len(chains)) as pool:
            parts = list(pool.map(lambda c: _eliminate(offer, c), chains))
        accepted += [s for got, _ in parts for s in got]
        ends += [e for _, e in parts]
    stops = [r for o, r in ends if o not in (CipherOutcome.ACCEPTED, CipherOutcome.REFUSED)]
    reason = f"stopped early, the rest is unknown: {stops[0]}" if stops else ""
    return CipherOutcome.ACCEPTED, tuple(accepted), reason


_WORST = (CipherOutcome.ACCEPTED, CipherOutcome.ERROR, CipherOutcome.INCONCLUSIVE,
          CipherOutcome.REFUSED, CipherOutcome.NOT_PROBED)


def _enumerate(host: str, port: int, sni: str | None, weak_class: WeakClass, version: str,
               timeout: float, version_refused: str,
               raw_refused: str = "") -> ClassResult:
    """The class at one version: Python's ssl for the suites it has, a raw hello for the rest.

    The ssl path completes real handshakes; the raw ClientHello (``tls_hello``)
    offers the registered suites this OpenSSL lacks. Refused only if every part
    was refused; accepted if any part was. ``version_refused`` (the version
    probe's protocol_version alert) spares the ssl handshakes; ``raw_refused``
    (the same alert to one raw hello offering every class's raw suites) spares
    the per-class raw hellos.
    """
    offered = offerable_suites(weak_class, version)
    raw = tuple(s.name for s in raw_suites(weak_class, version))
    parts: list[tuple[str, tuple[CipherOutcome, tuple[str, ...], str]]] = []
    if offered:
        parts.append(("ssl", (CipherOutcome.REFUSED, (), f"the server refuses {version} "
                              f"altogether ({version_refused})") if version_refused else
                      _part(_ssl_offer(host, port, sni, version, timeout), offered)))
    if raw:
        parts.append(("raw ClientHello", (CipherOutcome.REFUSED, (), raw_refused) if raw_refused
                      else _part(_raw_offer(host, port, sni, version, timeout), raw)))
    if not parts:
        return ClassResult(weak_class.name, version, CipherOutcome.NOT_PROBED,
                           reason=f"no {weak_class.name} suite is registered at {version}")
    outcome = min((o for _, (o, _, _) in parts), key=_WORST.index)
    accepted = tuple(s for _, (_, got, _) in parts for s in got)
    reason = "; ".join(f"{how}: {o.value}" + (f" ({r})" if r else "") for how, (o, _, r) in parts)
    return ClassResult(weak_class.name, version, outcome, accepted, offered + raw, reason, raw)


def scan(host: str, port: int, sni: str | None = None, timeout: float = 3.0,
         refused_versions: Mapping[str, str] | None = None, workers: int = 6) -> CipherScan:
    """Every weak class at every TLS version up to 1.2; raises ``ConnectFailed`` if unreachable.

    ``refused_versions``: version -> the protocol_version alert with which the
    version probe was refused. Its ssl handshakes are not repeated, and one raw
    hello offering every class's raw suites at once stands for the per-class
    ones if it gets protocol_version too: a server decides the version before
    it looks at suites (each handshake is a new backend on the server: 14 fewer
    on a healthy endpoint).
    """
    started = time.monotonic()
    refused = dict(refused_versions or {})
    jobs = [(c, v) for v in SCANNED_VERSIONS for c in WEAK_CLASSES]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        raw_f = {v: pool.submit(_version_refused_raw, host, port, sni, v, timeout)
                 for v in SCANNED_VERSIONS if v in refused}
        raw_refused = {v: f.result() for v, f in raw_f.items()}
        futures = [pool.submit(_enumerate, host, port, sni, c, v, timeout, refused.get(v, ""),
                               raw_refused.get(v, "")) for c, v in jobs]
        results = tuple(f.result() for f in futures)
    return CipherScan(results, elapsed_s=time.monotonic() - started)


def _version_refused_raw(host: str, port: int, sni: str | None, version: str,
                         timeout: float) -> str:
    """'alert protocol_version' if one raw hello with every raw suite at ``version`` gets it."""
    ids = sorted({s.id for c in WEAK_CLASSES for s in raw_suites(c, version)})
    try:
        reply = tls_hello.hello(host, port, version, ids, sni, timeout)
    except NoTls:
        return ""
    ok = reply.outcome is HelloOutcome.REFUSED and reply.alert == "protocol_version"
    return f"alert protocol_version to one hello offering all {len(ids)} raw suites" if ok else ""


_STATIC_RSA_FIRST = {"AES", "AES128", "AES256", "ARIA128", "ARIA256", "CAMELLIA128", "CAMELLIA256",
                     "DES", "IDEA", "NULL", "RC2", "RC4", "SEED"}


def classes_of(openssl_name: str) -> set[str]:
    """The weak classes an OpenSSL suite name belongs to, by name alone.

    For suites this client cannot build (another scanner's RC4-SHA, say), so
    that results from any tool can be compared class by class.
    """
    tokens = openssl_name.upper().split("-")
    found = set()
    if tokens[0].startswith("EXP"):  # EXP-ADH-RC4-MD5: the key exchange follows
        found.add("EXPORT")
        tokens = tokens[1:]
    if tokens[0] in ("ADH", "AECDH"):
        found.add("anonymous")
    if "NULL" in tokens:
        found.add("NULL")
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


def enumerate_class(host: str, port: int, weak_class: WeakClass, version: str, how: str,
                    sni: str | None = None, timeout: float = 3.0
                    ) -> tuple[CipherOutcome, tuple[str, ...], str]:
    """One class at one version by ONE method, over every suite that method can offer.

    ``how``: ``ssl`` (the suites Python's OpenSSL has) or ``raw`` (every registered
    suite of the class, by hand-built ClientHello). For cross-checking the two.
    """
    if how == "ssl":
        suites = offerable_suites(weak_class, version)
        offer = _ssl_offer(host, port, sni, version, timeout)
    elif how == "raw":
        suites = tuple(s.name for s in class_suites(weak_class.name, version))
        offer = _raw_offer(host, port, sni, version, timeout)
    else:
        raise ValueError(f"how must be 'ssl' or 'raw', not {how!r}")
    if not suites:
        return CipherOutcome.NOT_PROBED, (), f"no {weak_class.name} suite at {version}"
    return _part(offer, suites)
