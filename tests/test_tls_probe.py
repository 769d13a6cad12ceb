"""TLS probe and TLS-1..TLS-5 judges against real PostgreSQL 15 servers (standalone_postgres)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgproof.checks.tls import (
    judge_min_protocol_setting,
    judge_tls1,
    judge_tls2,
    judge_tls3,
    judge_tls4,
    judge_tls5,
    weak_cipher_parts,
)
from pgproof.lab import pki
from pgproof.lab.standalone import Standalone, standalone_postgres
from pgproof.probes.tls import (
    CertInfo,
    PlaintextOutcome,
    PlaintextResult,
    TlsFacts,
    VersionOutcome,
    VersionResult,
    probe_endpoint,
    verify_full_login,
)
from pgproof.probes.tls_ciphers import (
    NO_FORWARD_SECRECY,
    SCANNED_VERSIONS,
    WEAK_CLASSES,
    CipherOutcome,
    CipherScan,
    ClassResult,
    classes_of,
    offerable_suites,
)
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, Unreachable

A, R, INC = VersionOutcome.ACCEPTED, VersionOutcome.REFUSED, VersionOutcome.INCONCLUSIVE
TH = Thresholds()
WEAK = {"ssl_min_protocol_version": "TLSv1", "ssl_ciphers": "ALL:@SECLEVEL=0"}
NULL_OK = {"ssl_ciphers": "ALL:eNULL:@SECLEVEL=0"}
ANON_12 = {"ADH-AES256-GCM-SHA384", "AECDH-AES256-SHA"}  # measured with sslyze and s_client


@pytest.fixture(scope="module")
def healthy() -> Iterator[Standalone]:
    with standalone_postgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def weak() -> Iterator[Standalone]:
    with standalone_postgres(settings=WEAK) as pg:
        yield pg


def probe(pg: Standalone, ca: Path | None = None) -> TlsFacts:
    return probe_endpoint(pg.host, pg.port, ca or pg.ca)


def outcomes(facts: TlsFacts) -> dict[str, VersionOutcome]:
    return {v: r.outcome for v, r in facts.versions.items()}


def show(pg: Standalone, setting: str) -> str:
    with psycopg.connect(**pg.conninfo(connect_timeout=5)) as conn:
        row = conn.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


# --- against real servers -------------------------------------------------------------


def test_healthy_server_passes_every_tls_judge(healthy: Standalone) -> None:
    t0 = time.monotonic()
    facts = probe(healthy)
    took = time.monotonic() - t0
    assert outcomes(facts) == {"TLSv1": R, "TLSv1.1": R, "TLSv1.2": A, "TLSv1.3": A}
    assert facts.versions["TLSv1"].reason.startswith("TLSV1_ALERT")
    assert facts.ssl_supported is True
    assert facts.protocol == "TLSv1.3"
    assert facts.plaintext.outcome is PlaintextOutcome.REFUSED_NO_ENCRYPTION
    assert facts.plaintext.sqlstate == "28000"
    assert facts.chain_valid is True and facts.hostname_match is True
    assert facts.ca is not None and facts.ca.subject == "CN=pgproof lab CA"
    assert judge_tls1(facts, TH) == []
    assert judge_tls2(facts) == []
    assert judge_tls3(facts, verify_full_login(healthy.conninfo())) == []
    assert judge_tls4(facts, TH) == []
    assert judge_min_protocol_setting(show(healthy, "ssl_min_protocol_version"), TH) == []
    assert took < 1.0, f"probe took {took:.3f} s; it should take tens of ms"


def test_default_server_has_strong_crypto(healthy: Standalone) -> None:
    facts = probe(healthy)
    leaf = facts.leaf
    assert leaf is not None
    assert (leaf.key_type, leaf.key_bits, leaf.key_curve) == ("EC", 256, "secp256r1")
    assert facts.cipher and weak_cipher_parts(facts.cipher) == []
    assert facts.ciphers is not None and facts.ciphers.accepted() == set()
    if all(r.offered for r in facts.ciphers.results if r.version == "TLSv1.2"):
        assert judge_tls5(facts, TH) == []
    else:  # this client cannot offer every class: unknown, never "refused"
        with pytest.raises(CannotVerify, match="not-probed"):
            judge_tls5(facts, TH)


def test_weak_server_accepts_legacy_tls_and_fails_tls1(weak: Standalone) -> None:
    facts = probe(weak)
    assert outcomes(facts) == {"TLSv1": A, "TLSv1.1": A, "TLSv1.2": A, "TLSv1.3": A}
    problems = judge_tls1(facts, TH)
    assert len(problems) == 2
    assert all(p.startswith("TLS-1: ") and facts.where in p for p in problems)
    assert "pinned to TLSv1 " in problems[0] and "pinned to TLSv1.1 " in problems[1]
    setting = show(weak, "ssl_min_protocol_version")
    assert setting == "TLSv1"
    assert judge_min_protocol_setting(setting, TH, where=facts.where) == [
        f"TLS-1: ssl_min_protocol_version on {facts.where} is 'TLSv1'; the spec wants TLSv1.2 or newer."
    ]


@pytest.fixture(scope="module")
def null_ok() -> Iterator[Standalone]:
    with standalone_postgres(settings=NULL_OK) as pg:
        yield pg


@pytest.fixture(scope="module")
def rsa_cert() -> Iterator[Standalone]:
    """Default ssl_ciphers with an RSA key: static-RSA key exchange becomes possible."""
    with standalone_postgres(cert_key="rsa") as pg:
        yield pg


def same_weak_suites(facts: TlsFacts, scanned: dict) -> dict[str, tuple[set[str], set[str]]]:  # type: ignore[type-arg]
    """Per version, the weak suites on which the probe and sslyze disagree (ours, theirs).

    Compared on the suites sslyze tried; a suite sslyze accepted that our client
    cannot offer must be in a class the probe reports as not probed.
    """
    assert facts.ciphers is not None
    diff = {}
    for v in SCANNED_VERSIONS:
        tried = scanned[v].accepted | scanned[v].rejected
        ours = facts.ciphers.accepted(v) & tried
        theirs = {s for s in scanned[v].accepted if classes_of(s)}
        offered = {s for r in facts.ciphers.results if r.version == v for s in r.offered}
        beyond = theirs - offered
        unprobed = {r.weak_class for r in facts.ciphers.results
                    if r.version == v and r.outcome is CipherOutcome.NOT_PROBED}
        if ours != theirs - beyond or any(not classes_of(s) & unprobed for s in beyond):
            diff[v] = (ours, theirs)
    return diff


def _weak_by_version(facts: TlsFacts) -> dict[str, set[str]]:
    assert facts.ciphers is not None
    return {v: facts.ciphers.accepted(v) for v in SCANNED_VERSIONS}


def test_sslyze_agrees_with_probe(healthy: Standalone, weak: Standalone, null_ok: Standalone,
                                  rsa_cert: Standalone) -> None:
    """Same accepted versions, and the same accepted weak suites per version, as sslyze's scan."""
    from pgproof.probes.sslyze_check import accepted_suites_many

    servers = (healthy, weak, null_ok, rsa_cert)
    theirs = accepted_suites_many([(pg.host, pg.port) for pg in servers])
    modern = {"TLSv1.2", "TLSv1.3"}
    for pg, expected in zip(servers, (modern, {"TLSv1", "TLSv1.1", *modern}, modern, modern),
                            strict=True):
        facts = probe(pg)
        scanned = theirs[(pg.host, pg.port)]
        assert facts.accepted_versions() == expected
        assert {v for v, suites in scanned.items() if suites.accepted} == expected, pg.port
        assert same_weak_suites(facts, scanned) == {}, f"sslyze and probe disagree on {pg.port}"
        assert not scanned["SSLv2"].accepted and not scanned["SSLv3"].accepted  # not offered by us
    assert _weak_by_version(probe(weak))["TLSv1.2"] >= ANON_12


def test_weak_server_accepts_anonymous_suites_and_fails_tls5(weak: Standalone) -> None:
    facts = probe(weak)
    scan = facts.ciphers
    assert scan is not None
    anon = scan.get("anonymous", "TLSv1.2")
    assert anon is not None and anon.outcome is CipherOutcome.ACCEPTED
    assert set(anon.accepted) >= ANON_12 and set(anon.accepted) <= set(anon.offered)
    assert scan.get("anonymous", "TLSv1") is not None
    assert "AECDH-AES256-SHA" in scan.accepted("TLSv1")
    assert scan.accepted(classes={"NULL"}) == set()  # 'ALL' leaves out eNULL
    assert facts.cipher and weak_cipher_parts(facts.cipher) == []  # a strong client sees nothing
    problems = judge_tls5(facts, TH)
    (anon_problem,) = [p for p in problems if "anonymous" in p]
    assert anon_problem.startswith(f"TLS-5: {facts.where} accepted anonymous key exchange")
    assert "TLSv1.2: ADH-AES256-GCM-SHA384" in anon_problem and "TLSv1: " in anon_problem
    assert scan.elapsed_s < 2.0, f"weak-suite scan took {scan.elapsed_s:.3f} s"


def test_null_suites_found_when_server_allows_enull(null_ok: Standalone) -> None:
    facts = probe(null_ok)
    assert facts.ciphers is not None
    null = facts.ciphers.get("NULL", "TLSv1.2")
    assert null is not None and null.outcome is CipherOutcome.ACCEPTED
    assert all("NULL" in classes_of(s) for s in null.accepted)
    assert any("NULL encryption" in p for p in judge_tls5(facts, TH))


def test_static_rsa_key_exchange_is_its_own_finding(rsa_cert: Standalone) -> None:
    facts = probe(rsa_cert)
    assert facts.leaf is not None and (facts.leaf.key_type, facts.leaf.key_bits) == ("RSA", 2048)
    assert facts.ciphers is not None
    assert "AES256-GCM-SHA384" in facts.ciphers.accepted("TLSv1.2", {NO_FORWARD_SECRECY})
    (problem,) = judge_tls5(facts, TH)
    assert "without forward secrecy (static RSA)" in problem and "AES256-GCM-SHA384" in problem
    assert "tls_require_forward_secrecy" in problem
    relaxed = Thresholds(tls_require_forward_secrecy=False)
    offers_all = all(r.offered for r in facts.ciphers.results if r.version == "TLSv1.2")
    if offers_all:
        assert judge_tls5(facts, relaxed) == []
    else:
        with pytest.raises(CannotVerify, match="not-probed"):
            judge_tls5(facts, relaxed)


def test_not_offerable_classes_are_not_probed_never_refused(healthy: Standalone) -> None:
    facts = probe(healthy)
    assert facts.ciphers is not None
    for r in facts.ciphers.results:
        if r.version in ("TLSv1", "TLSv1.1"):  # the server refuses the version itself
            assert r.outcome is CipherOutcome.REFUSED, r
        elif r.offered:
            assert r.outcome is CipherOutcome.REFUSED and r.reason.startswith("the server sent"), r
        else:
            assert r.outcome is CipherOutcome.NOT_PROBED, r
    for c in WEAK_CLASSES:  # our name classifier agrees with OpenSSL's selectors
        for v in SCANNED_VERSIONS:
            assert all(c.name in classes_of(s) for s in offerable_suites(c, v)), (c.name, v)
    assert "anonymous" in facts.ciphers.offerable()


def test_plaintext_rule_means_auth_requested_and_tls2_fails() -> None:
    hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    with standalone_postgres(hba=hba) as pg:
        facts = probe(pg)
    assert facts.plaintext.outcome is PlaintextOutcome.AUTH_REQUESTED
    assert facts.plaintext.message == "authentication request code 10"  # SASL
    (problem,) = judge_tls2(facts)
    assert problem.startswith(f"TLS-2: {facts.where} accepted a plaintext connection")
    assert "refused" in problem


def test_server_without_tls_fails_tls1_and_is_not_a_client_problem() -> None:
    hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    with standalone_postgres(settings={"ssl": "off"}, hba=hba) as pg:
        facts = probe(pg)
    assert facts.ssl_supported is False
    assert set(outcomes(facts).values()) == {VersionOutcome.ERROR}
    assert "does not offer TLS at all" in judge_tls1(facts, TH)[0]
    with pytest.raises(CannotVerify, match="no TLS handshake"):
        judge_tls3(facts)


def test_wrong_host_cert_fails_hostname_but_chain_valid() -> None:
    with standalone_postgres(cert_hosts=("db.example.com",)) as pg:
        facts = probe(pg)
        login_error = verify_full_login(pg.conninfo())
    assert facts.chain_valid is True
    assert facts.hostname_match is False
    assert "mismatch" in facts.hostname_error
    assert login_error and "does not match" in login_error
    problems = judge_tls3(facts)
    assert len(problems) == 1
    assert "does not match the endpoint name '127.0.0.1'" in problems[0]
    assert "db.example.com" in problems[0]
    assert len(judge_tls3(facts, login_error)) == 2


def test_cert_expiring_in_10_days_fails_tls4() -> None:
    with standalone_postgres(cert_days=10) as pg:
        facts = probe(pg)
    assert facts.leaf is not None and facts.leaf.days_left in (9, 10)
    (problem,) = judge_tls4(facts, TH)
    assert problem.startswith("TLS-4: the leaf certificate CN=127.0.0.1 presented by")
    assert "days left" in problem and "at least 30 days" in problem
    assert judge_tls4(facts, Thresholds(cert_min_days=5)) == []


def test_other_ca_file_fails_chain(healthy: Standalone, tmp_path: Path) -> None:
    other = pki.make_ca(tmp_path / "other")
    facts = probe(healthy, ca=other.cert)
    assert facts.chain_valid is False
    assert facts.hostname_match is True  # judged independently of the chain
    assert facts.ca is None
    (problem,) = judge_tls3(facts)
    assert "does not verify against" in problem and str(other.cert) in problem
    with pytest.raises(CannotVerify, match="CA's expiry is unknown"):
        judge_tls4(facts, TH)


def test_unreachable_port_raises_with_host_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(Unreachable, match=rf"127\.0\.0\.1:{port}: Connection refused"):
            probe_endpoint("127.0.0.1", port, None, timeout=1)


def test_stricter_threshold_fails_tls12(healthy: Standalone) -> None:
    th = Thresholds(tls_min_version="TLSv1.3")
    (problem,) = judge_tls1(probe(healthy), th)
    assert "pinned to TLSv1.2" in problem and "older than TLSv1.3" in problem


# --- judges on synthetic facts ----------------------------------------------------------


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
    assert problem.startswith(f"TLS-5: db:5432 negotiated cipher {name}") and weakness in problem


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
