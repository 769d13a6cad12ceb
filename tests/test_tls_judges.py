"""TLS-1..TLS-5 judges on synthetic facts: every branch, without a server."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pgproof.checks.tls import judge_min_protocol_setting, judge_tls1, judge_tls2, judge_tls5
from pgproof.probes.tls import (
    CertInfo,
    PlaintextOutcome,
    PlaintextResult,
    TlsFacts,
    VersionOutcome,
    VersionResult,
)
from pgproof.probes.tls_ciphers import (
    NO_FORWARD_SECRECY,
    SCANNED_VERSIONS,
    WEAK_CLASSES,
    CipherOutcome,
    CipherScan,
    ClassResult,
)
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify

A, R, INC = VersionOutcome.ACCEPTED, VersionOutcome.REFUSED, VersionOutcome.INCONCLUSIVE
TH = Thresholds()


def _facts(**kw: object) -> TlsFacts:
    now = dt.datetime.now(dt.UTC)
    leaf = CertInfo("CN=db", "CN=ca", now + dt.timedelta(days=200), 200, "RSA", 2048)
    ca = CertInfo("CN=ca", "CN=ca", now + dt.timedelta(days=2000), 2000, "RSA", 4096)
    rows = {"TLSv1": R, "TLSv1.1": R, "TLSv1.2": A, "TLSv1.3": A}
    base = TlsFacts(
        host="db", port=5432, server_hostname="db", ssl_supported=True,
        versions={v: VersionResult(v, o) for v, o in rows.items()},
        protocol="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", cipher_bits=128, chain=(leaf,),
        ca_file=None, chain_valid=True, chain_error="", hostname_match=True, hostname_error="",
        ca=ca, plaintext=PlaintextResult(PlaintextOutcome.REFUSED_NO_ENCRYPTION, "28000"),
        ciphers=_scan(),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _scan(**rows: ClassResult) -> CipherScan:
    """Every class refused at every version, except ``rows`` (keyed ``<class>_<version>``)."""
    out = []
    for v in SCANNED_VERSIONS:
        for c in WEAK_CLASSES:
            key = f"{c.name}_{v}".replace("-", "_").replace(".", "_")
            out.append(rows.get(key, ClassResult(c.name, v, CipherOutcome.REFUSED, (), ("X",))))
    return CipherScan(tuple(out))


@pytest.mark.parametrize("name, weakness", [
    ("DES-CBC3-SHA", "3DES"), ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES"), ("RC4-MD5", "RC4"),
    ("EXP-RC4-MD5", "EXPORT"), ("NULL-SHA256", "NULL encryption"), ("EDH-RSA-DES-CBC-SHA", "DES"),
    ("ADH-AES128-SHA", "anonymous key exchange"), ("TLS_DH_anon_WITH_AES_128_CBC_SHA", "anonymous key exchange"),
])
def test_judge_tls5_flags_weak_cipher(name: str, weakness: str) -> None:
    (problem,) = judge_tls5(_facts(cipher=name, protocol="TLSv1.2"), TH)
    assert problem.startswith(f"db:5432 negotiated cipher {name}") and weakness in problem


def test_judge_tls5_weak_cipher_on_legacy_version_and_small_keys() -> None:
    rows = {v: VersionResult(v, A, cipher="RC4-SHA" if v == "TLSv1" else None) for v in ("TLSv1",)}
    facts = _facts(versions={**_facts().versions, **rows})
    (problem,) = judge_tls5(facts, TH)
    assert "RC4-SHA (TLSv1)" in problem
    small_rsa = dataclasses.replace(_facts().chain[0], key_bits=1024)
    assert "1024-bit RSA" in judge_tls5(_facts(chain=(small_rsa,)), TH)[0]
    p192 = dataclasses.replace(small_rsa, key_type="EC", key_bits=192, key_curve="secp192r1")
    assert "192-bit EC secp192r1" in judge_tls5(_facts(chain=(p192,)), TH)[0]
    assert judge_tls5(_facts(), TH) == []


def test_judge_tls1_inconclusive_rows() -> None:
    versions = dict(_facts().versions)
    versions["TLSv1"] = VersionResult("TLSv1", INC, "our client failed: NO_CIPHERS_AVAILABLE")
    versions["TLSv1.1"] = VersionResult("TLSv1.1", INC, "our client failed: NO_CIPHERS_AVAILABLE")
    with pytest.raises(CannotVerify, match="TLSv1 inconclusive"):
        judge_tls1(_facts(versions=versions), TH)
    versions["TLSv1"] = VersionResult("TLSv1", A, cipher="AES128-SHA")  # a definite failure wins
    assert len(judge_tls1(_facts(versions=versions), TH)) == 1
    no_tls = {v: VersionResult(v, VersionOutcome.ERROR, "server answered N") for v in versions}
    assert "does not offer TLS" in judge_tls1(_facts(versions=no_tls, ssl_supported=False), TH)[0]


@pytest.mark.parametrize("value, ok", [("TLSv1.2", True), ("TLSv1.3", True), ("tlsv1.2", True),
                                       ("TLSv1.1", False), ("", False)])
def test_judge_min_protocol_setting(value: str, ok: bool) -> None:
    assert (judge_min_protocol_setting(value, TH) == []) is ok


def test_judge_tls2_other_refusal_cannot_verify() -> None:
    other = PlaintextResult(PlaintextOutcome.REFUSED_OTHER, "53300", "too many clients already")
    with pytest.raises(CannotVerify, match="53300"):
        judge_tls2(_facts(plaintext=other))


def test_judge_tls5_enumerated_weak_suites_and_unknown_classes() -> None:
    anon = ClassResult("anonymous", "TLSv1.2", CipherOutcome.ACCEPTED, ("ADH-AES256-GCM-SHA384",),
                       ("ADH-AES256-GCM-SHA384",))
    (problem,) = judge_tls5(_facts(ciphers=_scan(anonymous_TLSv1_2=anon)), TH)
    assert "accepted anonymous key exchange" in problem and "TLSv1.2: ADH-AES256-GCM-SHA384" in problem
    rc4 = ClassResult("RC4", "TLSv1.2", CipherOutcome.NOT_PROBED, reason="no RC4 suite")
    with pytest.raises(CannotVerify, match="RC4 TLSv1.2 not-probed"):
        judge_tls5(_facts(ciphers=_scan(RC4_TLSv1_2=rc4)), TH)
    # a definite problem wins over an unknown class
    both = _scan(RC4_TLSv1_2=rc4, anonymous_TLSv1_2=anon)
    assert len(judge_tls5(_facts(ciphers=both), TH)) == 1
    with pytest.raises(CannotVerify, match="not enumerated"):
        judge_tls5(_facts(ciphers=None), TH)
    no_fs = ClassResult(NO_FORWARD_SECRECY, "TLSv1.2", CipherOutcome.ACCEPTED, ("AES128-SHA",))
    facts = _facts(ciphers=_scan(static_RSA_TLSv1_2=no_fs))
    assert "without forward secrecy" in judge_tls5(facts, TH)[0]
    assert judge_tls5(facts, Thresholds(tls_require_forward_secrecy=False)) == []


def test_tls_endpoints_cover_every_reader_and_node_once() -> None:
    from pgproof.probes.endpoints import tls_endpoints
    from pgproof.target import parse_target

    ep = lambda port: {"host": "db", "port": port}  # noqa: E731
    t = parse_target("t", {"postgres": {"user": "u", "writer": ep(1), "readers": [ep(2), ep(3)],
                                        "pooler": ep(4), "nodes": [ep(1), ep(5), ep(6)]}}, "test")
    eps = tls_endpoints(t)
    assert {n: e.port for n, e in eps.items()} == {
        "writer": 1, "reader1": 2, "reader2": 3, "pooler": 4, "node2": 5, "node3": 6}
