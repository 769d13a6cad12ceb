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
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, Unreachable

A, R, INC = VersionOutcome.ACCEPTED, VersionOutcome.REFUSED, VersionOutcome.INCONCLUSIVE
TH = Thresholds()
WEAK = {"ssl_min_protocol_version": "TLSv1", "ssl_ciphers": "ALL:@SECLEVEL=0"}


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
    assert judge_tls5(facts) == []


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


def test_sslyze_agrees_with_probe(healthy: Standalone, weak: Standalone) -> None:
    from pgproof.probes.sslyze_check import accepted_versions_many

    theirs = accepted_versions_many([(healthy.host, healthy.port), (weak.host, weak.port)])
    for pg, expected in ((healthy, {"TLSv1.2", "TLSv1.3"}),
                         (weak, {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})):
        ours = probe(pg).accepted_versions()
        assert ours == expected
        assert theirs[(pg.host, pg.port)] == ours, f"sslyze and probe disagree on {pg.port}"


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
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name, weakness", [
    ("DES-CBC3-SHA", "3DES"), ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES"), ("RC4-MD5", "RC4"),
    ("EXP-RC4-MD5", "EXPORT"), ("NULL-SHA256", "NULL encryption"), ("EDH-RSA-DES-CBC-SHA", "DES"),
    ("ADH-AES128-SHA", "anonymous key exchange"), ("TLS_DH_anon_WITH_AES_128_CBC_SHA", "anonymous key exchange"),
])
def test_judge_tls5_flags_weak_cipher(name: str, weakness: str) -> None:
    (problem,) = judge_tls5(_facts(cipher=name, protocol="TLSv1.2"))
    assert problem.startswith(f"TLS-5: db:5432 negotiated cipher {name}") and weakness in problem


def test_judge_tls5_weak_cipher_on_legacy_version_and_small_keys() -> None:
    rows = {v: VersionResult(v, A, cipher="RC4-SHA" if v == "TLSv1" else None) for v in ("TLSv1",)}
    facts = _facts(versions={**_facts().versions, **rows})
    (problem,) = judge_tls5(facts)
    assert "RC4-SHA (TLSv1)" in problem
    small_rsa = dataclasses.replace(_facts().chain[0], key_bits=1024)
    assert "1024-bit RSA" in judge_tls5(_facts(chain=(small_rsa,)))[0]
    p192 = dataclasses.replace(small_rsa, key_type="EC", key_bits=192, key_curve="secp192r1")
    assert "192-bit EC secp192r1" in judge_tls5(_facts(chain=(p192,)))[0]
    assert judge_tls5(_facts()) == []


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
