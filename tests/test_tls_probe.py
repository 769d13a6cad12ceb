"""TLS probe and TLS-1..TLS-5 judges against real PostgreSQL 15 servers (standalone_postgres)."""

from __future__ import annotations

import socket
import ssl
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
from pgproof.probes.postgres import verify_full_login
from pgproof.probes.tls import (
    PlaintextOutcome,
    TlsFacts,
    VersionOutcome,
    _check_hostname,
    probe_endpoint,
)
from pgproof.probes.tls_ciphers import (
    NO_FORWARD_SECRECY,
    SCANNED_VERSIONS,
    WEAK_CLASSES,
    CipherOutcome,
    classes_of,
    offerable_suites,
)
from pgproof.probes.tls_wire import pinned_context
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


@pytest.mark.slow
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
    assert judge_tls5(facts, TH) == []  # every class offered (ssl or raw hello) and refused


@pytest.mark.slow
def test_weak_server_accepts_legacy_tls_and_fails_tls1(weak: Standalone) -> None:
    facts = probe(weak)
    assert outcomes(facts) == {"TLSv1": A, "TLSv1.1": A, "TLSv1.2": A, "TLSv1.3": A}
    problems = judge_tls1(facts, TH)
    assert len(problems) == 2
    assert all("TLS-1" not in p and facts.where in p for p in problems)
    assert "pinned to TLSv1 " in problems[0] and "pinned to TLSv1.1 " in problems[1]
    setting = show(weak, "ssl_min_protocol_version")
    assert setting == "TLSv1"
    assert judge_min_protocol_setting(setting, TH, where=facts.where) == [
        f"ssl_min_protocol_version on {facts.where} is 'TLSv1'; the spec wants TLSv1.2 or newer."
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


def _weak_by_version(facts: TlsFacts) -> dict[str, set[str]]:
    assert facts.ciphers is not None
    return {v: facts.ciphers.accepted(v) for v in SCANNED_VERSIONS}


@pytest.mark.slow
def test_sslyze_agrees_with_probe(healthy: Standalone, weak: Standalone, null_ok: Standalone,
                                  rsa_cert: Standalone) -> None:
    """Same accepted versions, and the same accepted weak suites per version, as sslyze's scan."""
    from pgproof.probes.sslyze_check import accepted_suites_many, weak_suite_disagreements

    servers = (healthy, weak, null_ok, rsa_cert)
    theirs = accepted_suites_many([(pg.host, pg.port) for pg in servers])
    modern = {"TLSv1.2", "TLSv1.3"}
    for pg, expected in zip(servers, (modern, {"TLSv1", "TLSv1.1", *modern}, modern, modern),
                            strict=True):
        facts = probe(pg)
        scanned = theirs[(pg.host, pg.port)]
        assert facts.accepted_versions() == expected
        assert {v for v, suites in scanned.items() if suites.accepted} == expected, pg.port
        assert facts.ciphers is not None
        assert weak_suite_disagreements(facts.ciphers, scanned) == {}, f"sslyze and probe disagree on {pg.port}"
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
    assert anon_problem.startswith(f"{facts.where} accepted anonymous key exchange")
    assert "TLSv1.2: ADH-AES256-GCM-SHA384" in anon_problem and "TLSv1: " in anon_problem
    assert scan.elapsed_s < 2.0, f"weak-suite scan took {scan.elapsed_s:.3f} s"


def test_null_suites_found_when_server_allows_enull(null_ok: Standalone) -> None:
    facts = probe(null_ok)
    assert facts.ciphers is not None
    null = facts.ciphers.get("NULL", "TLSv1.2")
    assert null is not None and null.outcome is CipherOutcome.ACCEPTED
    assert all("NULL" in classes_of(s) for s in null.accepted)
    assert any("NULL encryption" in p for p in judge_tls5(facts, TH))


@pytest.mark.slow
def test_static_rsa_key_exchange_is_its_own_finding(rsa_cert: Standalone) -> None:
    facts = probe(rsa_cert)
    assert facts.leaf is not None and (facts.leaf.key_type, facts.leaf.key_bits) == ("RSA", 2048)
    assert facts.ciphers is not None
    assert "AES256-GCM-SHA384" in facts.ciphers.accepted("TLSv1.2", {NO_FORWARD_SECRECY})
    (problem,) = judge_tls5(facts, TH)
    assert "without forward secrecy (static RSA)" in problem and "AES256-GCM-SHA384" in problem
    assert "tls_require_forward_secrecy" in problem
    assert judge_tls5(facts, Thresholds(tls_require_forward_secrecy=False)) == []


@pytest.mark.slow
def test_every_class_is_offered_and_refused_by_a_healthy_server(healthy: Standalone) -> None:
    """What Python's ssl cannot offer goes by raw ClientHello: nothing is left not probed."""
    facts = probe(healthy)
    assert facts.ciphers is not None
    for r in facts.ciphers.results:
        assert r.outcome is CipherOutcome.REFUSED and r.offered, r
        if r.version in ("TLSv1", "TLSv1.1"):  # the ssl part is spared after protocol_version
            assert "protocol_version" in r.reason.lower(), r
        else:
            assert "alert" in r.reason and "handshake_failure" in r.reason.lower(), r
        ssl_part = set(r.offered) - set(r.raw)
        assert ssl_part == set(offerable_suites(next(c for c in WEAK_CLASSES
                                                      if c.name == r.weak_class), r.version))
    for c in WEAK_CLASSES:  # our name classifier agrees with OpenSSL's selectors
        for v in SCANNED_VERSIONS:
            assert all(c.name in classes_of(s) for s in offerable_suites(c, v)), (c.name, v)
    assert set(facts.ciphers.offerable()) == {c.name for c in WEAK_CLASSES}


@pytest.mark.slow
def test_plaintext_rule_means_auth_requested_and_tls2_fails() -> None:
    hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    with standalone_postgres(hba=hba) as pg:
        facts = probe(pg)
    assert facts.plaintext.outcome is PlaintextOutcome.AUTH_REQUESTED
    assert facts.plaintext.message == "authentication request code 10"  # SASL
    (problem,) = judge_tls2(facts)
    assert problem.startswith(f"{facts.where} accepted a plaintext connection")
    assert "refused" in problem


@pytest.mark.slow
def test_server_without_tls_fails_tls1_and_is_not_a_client_problem() -> None:
    hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    with standalone_postgres(settings={"ssl": "off"}, hba=hba) as pg:
        facts = probe(pg)
    assert facts.ssl_supported is False
    assert set(outcomes(facts).values()) == {VersionOutcome.ERROR}
    assert "does not offer TLS at all" in judge_tls1(facts, TH)[0]
    with pytest.raises(CannotVerify, match="no TLS handshake"):
        judge_tls3(facts)


@pytest.mark.slow
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


@pytest.mark.slow
def test_cert_expiring_in_10_days_fails_tls4() -> None:
    with standalone_postgres(cert_days=10) as pg:
        facts = probe(pg)
    assert facts.leaf is not None and facts.leaf.days_left in (9, 10)
    (problem,) = judge_tls4(facts, TH)
    assert problem.startswith("the leaf certificate CN=127.0.0.1 presented by")
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


def test_certificate_reload_between_handshakes_is_not_a_name_mismatch(
        healthy: Standalone, tmp_path: Path) -> None:
    """ci10: a reload between the probe's handshakes showed its hostname check another leaf.

    That fails as an unknown issuer; the probe takes the new leaf and checks the name
    again, and without a second look it says unproven, never "does not match".
    """
    other_ca = pki.make_ca(tmp_path / "other")
    stale = pki.issue_server_cert(other_ca, tmp_path / "other", hosts=("127.0.0.1",))
    stale_der = ssl.PEM_cert_to_DER_cert(stale.cert.read_text())
    fresh = pinned_context("TLSv1.3")
    assert _check_hostname(healthy.host, healthy.port, stale_der, "127.0.0.1", 3, fresh) == (True, "")
    ok, why = _check_hostname(healthy.host, healthy.port, stale_der, "127.0.0.1", 3, None)
    assert ok is None and "different certificate on successive handshakes" in why
    ok, why = _check_hostname(healthy.host, healthy.port, stale_der, "db.example.com", 3, fresh)
    assert ok is False and "mismatch" in why
