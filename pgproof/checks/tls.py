"""Judges for TLS-1..TLS-5: pure functions from ``TlsFacts`` to problem sentences.

Each returns the problems found (empty = compliant). A fact the probe could not
establish (a version our client could not offer, a verifying handshake that did
not complete) raises ``CannotVerify`` - but only when it prevents a verdict: a
definite problem found elsewhere is still reported as a failure.
"""

from __future__ import annotations

import re

from pgproof.probes.tls import CertInfo, PlaintextOutcome, TlsFacts
from pgproof.probes.tls_ciphers import NO_FORWARD_SECRECY, WEAK_CLASSES, CipherOutcome, CipherScan
from pgproof.probes.tls_wire import TLS_VERSIONS, VersionOutcome
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify

_ACCEPTED, _REFUSED = VersionOutcome.ACCEPTED, VersionOutcome.REFUSED
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def _row(facts: TlsFacts, version: str) -> str:
    r = facts.versions[version]
    return f"{version} {r.outcome.value}" + (f" ({r.reason})" if r.reason else "")


def judge_tls1(facts: TlsFacts, th: Thresholds) -> list[str]:
    """Versions below the minimum refused by the server (an alert), one at or above accepted."""
    where, minimum = facts.where, th.tls_min_version
    if facts.ssl_supported is False:
        return [f"{where} does not offer TLS at all (it answered N to SSLRequest); "
                f"the spec wants {minimum} or newer accepted and older versions refused."]
    cut = TLS_VERSIONS.index(minimum)
    legacy, modern = TLS_VERSIONS[:cut], TLS_VERSIONS[cut:]
    problems: list[str] = []
    unproven: list[str] = []
    for v in legacy:
        r = facts.versions[v]
        if r.outcome is _ACCEPTED:
            problems.append(f"{where} accepted a handshake pinned to {v} (cipher {r.cipher}); "
                            f"the spec wants every version older than {minimum} refused.")
        elif r.outcome is not _REFUSED:
            unproven.append(_row(facts, v))
    if not any(facts.versions[v].outcome is _ACCEPTED for v in modern):
        if all(facts.versions[v].outcome is _REFUSED for v in modern):
            problems.append(f"{where} refused every handshake at {', '.join(modern)}; "
                            f"the spec wants {minimum} or newer accepted.")
        else:
            unproven.extend(_row(facts, v) for v in modern if facts.versions[v].outcome is not _REFUSED)
    if problems:
        return problems
    if unproven:
        raise CannotVerify(f"{where}: could not prove the server's answer for "
                           + "; ".join(unproven))
    return []


def judge_min_protocol_setting(value: str, th: Thresholds, where: str = "") -> list[str]:
    """``ssl_min_protocol_version`` as the server reports it (``SHOW``); empty means any version."""
    at = f" on {where}" if where else ""
    known = {v.lower(): v for v in TLS_VERSIONS}
    setting = value.strip()
    if setting and setting.lower() not in known:
        raise CannotVerify(f"ssl_min_protocol_version{at} is {value!r}, not a TLS version pgproof knows")
    if setting and TLS_VERSIONS.index(known[setting.lower()]) >= TLS_VERSIONS.index(th.tls_min_version):
        return []
    shown = repr(setting) if setting else "empty (any version allowed)"
    return [f"ssl_min_protocol_version{at} is {shown}; the spec wants {th.tls_min_version} or newer."]


def judge_tls2(facts: TlsFacts) -> list[str]:
    """The plaintext StartupMessage must be refused for lack of encryption, before any password."""
    p, where = facts.plaintext, facts.where
    who = f"user {p.user!r}, database {p.database!r}"
    if p.outcome is PlaintextOutcome.REFUSED_NO_ENCRYPTION:
        return []
    if p.outcome is PlaintextOutcome.AUTH_REQUESTED:
        return [f"{where} accepted a plaintext connection ({who}) and {p.message} instead of "
                "refusing it; the spec wants plaintext refused (hostssl-only pg_hba rules, "
                "rds.force_ssl=1)."]
    if p.outcome is PlaintextOutcome.REFUSED_OTHER:
        raise CannotVerify(f"{where} refused the plaintext probe ({who}) for another reason "
                           f"(SQLSTATE {p.sqlstate}: {p.message}), which does not show that plaintext "
                           "is refused for lack of encryption")
    raise CannotVerify(f"the plaintext probe of {where} failed: {p.message}")


def judge_tls3(facts: TlsFacts, verify_full_error: str | None = None) -> list[str]:
    """Chain to the CA bundle and hostname, judged separately; optionally a verify-full login."""
    where = facts.where
    if facts.leaf is None:
        raise CannotVerify(f"no TLS handshake with {where} succeeded, so there is no certificate to verify")
    bundle = str(facts.ca_file) if facts.ca_file else "the system trust store"
    problems: list[str] = []
    unproven: list[str] = []
    if facts.chain_valid is False:
        problems.append(f"the certificate chain presented by {where} ({facts.leaf.subject}, "
                        f"issued by {facts.leaf.issuer}) does not verify against {bundle}: "
                        f"{facts.chain_error}; the spec wants a chain to the configured CA bundle.")
    elif facts.chain_valid is None:
        unproven.append(f"chain: {facts.chain_error}")
    if facts.hostname_match is False:
        names = ", ".join(facts.leaf.sans) or facts.leaf.subject
        problems.append(f"the certificate of {where} does not match the endpoint name "
                        f"{facts.server_hostname!r} (it names {names}): {facts.hostname_error}; "
                        "the spec wants the hostname to match.")
    elif facts.hostname_match is None:
        unproven.append(f"hostname: {facts.hostname_error}")
    if verify_full_error:
        problems.append(f"a login to {where} with sslmode=verify-full failed: "
                        f"{verify_full_error}; the spec wants verify-full to work.")
    if problems:
        return problems
    if unproven:
        raise CannotVerify(f"{where}: " + "; ".join(unproven))
    return []


def _expiry(what: str, cert: CertInfo, where: str, min_days: int) -> str | None:
    if cert.days_left >= min_days:
        return None
    when = cert.not_after.strftime("%Y-%m-%d")
    state = f"expired on {when}" if cert.days_left < 0 else f"expires on {when} ({cert.days_left} days left)"
    return (f"the {what} certificate {cert.subject} {where} {state}; "
            f"the spec wants at least {min_days} days of validity left.")


def judge_tls4(facts: TlsFacts, th: Thresholds) -> list[str]:
    """Leaf, presented intermediates and the trusted CA each valid for >= ``cert_min_days``."""
    where, n = facts.where, th.cert_min_days
    if facts.leaf is None:
        raise CannotVerify(f"no TLS handshake with {where} succeeded, so there is no certificate to date")
    found = [_expiry("leaf", facts.chain[0], f"presented by {where}", n)]
    found += [_expiry("intermediate", c, f"presented by {where}", n) for c in facts.chain[1:]]
    if facts.ca is not None:
        found.append(_expiry("CA", facts.ca, f"(the anchor of {where}'s chain)", n))
    problems = [p for p in found if p]
    if problems or facts.ca is not None:
        return problems
    source = str(facts.ca_file) if facts.ca_file else "the system trust store (no CA file configured)"
    raise CannotVerify(f"no certificate in {source} signs the chain presented by {where}, "
                       "so the CA's expiry is unknown")


_WEAK_TOKENS = {"NULL": "NULL encryption", "RC4": "RC4", "3DES": "3DES", "MD5": "MD5",
                "ADH": "anonymous key exchange", "AECDH": "anonymous key exchange",
                "ANON": "anonymous key exchange"}


def weak_cipher_parts(name: str) -> list[str]:
    """What makes a cipher suite weak, for OpenSSL (``DES-CBC3-SHA``) and IANA names alike."""
    tokens = [t for t in re.split(r"[-_]", name.upper()) if t]
    found = [_WEAK_TOKENS[t] for t in tokens if t in _WEAK_TOKENS]
    if any(t.startswith("EXP") for t in tokens):
        found.append("EXPORT")
    if "DES" in tokens or "DES40" in tokens:
        found.append("3DES" if "CBC3" in tokens or "EDE" in tokens else "DES")
    return list(dict.fromkeys(found))


def _weak_suites(scan: CipherScan, where: str, th: Thresholds) -> tuple[list[str], list[str]]:
    """(problems, unproven) from the weak-suite enumeration."""
    problems: list[str] = []
    unproven: list[str] = []
    for wc in WEAK_CLASSES:
        rows = [r for r in scan.results if r.weak_class == wc.name]
        no_fs = wc.name == NO_FORWARD_SECRECY
        if no_fs and not th.tls_require_forward_secrecy:
            continue
        hits = [r for r in rows if r.outcome is CipherOutcome.ACCEPTED]
        if hits:
            seen = "; ".join(f"{r.version}: {', '.join(r.accepted)}" for r in hits)
            wants = ("forward-secret key exchange only (ECDHE/DHE; "
                     "thresholds.tls_require_forward_secrecy)" if no_fs else
                     "no anonymous/NULL/EXPORT/RC4/DES/3DES/MD5 suite accepted at any version")
            problems.append(f"{where} accepted {wc.what} suites when offered only those "
                            f"({seen}); the spec wants {wants}.")
            continue
        open_rows = [r for r in rows if r.outcome is not CipherOutcome.REFUSED]
        if open_rows:
            unproven.append(f"{wc.name} " + ", ".join(f"{r.version} {r.outcome.value}"
                                                      for r in open_rows))
    return problems, unproven


def judge_tls5(facts: TlsFacts, th: Thresholds) -> list[str]:
    """No weak suite accepted at any version (enumerated), none negotiated; strong leaf key.

    Suites Python's OpenSSL lacks (EXPORT, RC4, DES, 3DES ...) were offered by a
    raw ClientHello. A class neither way could prove refused (not probed,
    inconclusive, error) is unknown, not refused: with no definite problem
    elsewhere it makes the verdict "cannot verify", naming the classes.
    """
    where = facts.where
    if facts.cipher is None or facts.leaf is None:
        raise CannotVerify(f"no TLS handshake with {where} succeeded, so no cipher was negotiated")
    problems: list[str] = []
    negotiated = {facts.cipher: facts.protocol or "best"}
    for v, r in facts.versions.items():
        if r.outcome is _ACCEPTED and r.cipher:
            negotiated.setdefault(r.cipher, v)
    for cipher, version in negotiated.items():
        weak = weak_cipher_parts(cipher)
        if weak:
            problems.append(f"{where} negotiated cipher {cipher} ({version}) which uses "
                            f"{', '.join(weak)}; the spec wants no NULL/EXPORT/RC4/3DES/DES/MD5/"
                            "anonymous cipher suites.")
    unproven: list[str] = []
    if facts.ciphers is None:
        unproven.append("the weak cipher suites were not enumerated")
    else:
        found, unproven = _weak_suites(facts.ciphers, where, th)
        problems += found
    leaf = facts.leaf
    if leaf.key_type in ("RSA", "DSA"):
        minimum = MIN_RSA_BITS
    elif leaf.key_type in ("EC", "Ed25519", "Ed448"):
        minimum = MIN_EC_BITS
    else:
        raise CannotVerify(f"the leaf certificate of {where} has a {leaf.key_type} key, "
                           "whose strength pgproof does not know")
    if leaf.key_bits < minimum:
        curve = f" {leaf.key_curve}" if leaf.key_curve else ""
        problems.append(f"the leaf certificate of {where} has a {leaf.key_bits}-bit "
                        f"{leaf.key_type}{curve} key; the spec wants >= {MIN_RSA_BITS}-bit RSA "
                        f"or >= {MIN_EC_BITS}-bit EC.")
    if problems or not unproven:
        return problems
    client = facts.ciphers.client if facts.ciphers else "this client"
    raise CannotVerify(f"{where}: no weak suite was accepted, but these classes were not "
                       f"proven refused: {'; '.join(unproven)} (client {client}; only a server "
                       "alert counts as refused)")
