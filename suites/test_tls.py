"""TLS-1..TLS-7: live handshakes at every client endpoint, server settings, RDS parameters, replication."""

from __future__ import annotations

import pytest

from pgproof.checks import aws as aws_checks
from pgproof.checks import live
from pgproof.checks import tls as judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target
from pgproof.verdict import CannotVerify, Unreachable

control = pytest.mark.control


def _all(facts: dict, fn, *args) -> list[str]:  # type: ignore[no-untyped-def]
    """Judge every endpoint; a definite problem anywhere wins over "cannot verify" elsewhere."""
    problems: list[str] = []
    unknown: list[str] = []
    for f in facts.values():
        try:
            problems += fn(f, *args)
        except CannotVerify as exc:
            unknown.append(str(exc))
    if unknown and not problems:
        raise CannotVerify("\n".join(unknown))
    return problems


def _weak_suites(facts: dict) -> str:  # type: ignore[type-arg]
    """Per endpoint: accepted weak suites per version, and the classes this client cannot offer."""
    out = []
    for n, f in facts.items():
        scan = f.ciphers
        if scan is None:
            out.append(f"{n}: not enumerated")
            continue
        acc = {v: sorted(scan.accepted(v)) for v in ("TLSv1", "TLSv1.1", "TLSv1.2")}
        shown = ", ".join(f"{v}={'+'.join(s) or 'none'}" for v, s in acc.items())
        out.append(f"{n}: weak suites accepted {shown} ({scan.elapsed_s * 1000:.0f} ms)")
    raw = {n: f.ciphers.raw_summary() for n, f in facts.items() if f.ciphers is not None}
    if len(set(raw.values())) == 1:  # the usual case: say it once
        raw = {"every endpoint": next(iter(raw.values()))}
    out += [f"{n}: {summary}" for n, summary in raw.items()]
    scan = next((f.ciphers for f in facts.values() if f.ciphers is not None), None)
    if scan is not None:
        out.append(f"(raw ClientHello for the suites {scan.client} lacks); {scan.note}")
    return "; ".join(out)


def _versions(facts: dict) -> str:  # type: ignore[type-arg]
    return "; ".join(f"{n}: " + ", ".join(f"{v}={r.outcome}" for v, r in f.versions.items())
                     for n, f in facts.items())


@control("TLS-1")
def test_handshakes_below_tls12_refused(tls_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(_all(tls_facts, judge.judge_tls1, target.thresholds), evidence, _versions(tls_facts))


@control("TLS-1")
def test_min_protocol_setting(pg_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    value = pg_facts.setting("ssl_min_protocol_version")
    expect(judge.judge_min_protocol_setting(value, target.thresholds, pg_facts.endpoint),
           evidence, f"ssl_min_protocol_version={value}")


@control("TLS-1")
def test_rds_parameter_group_min_protocol(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_tls1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "TLS-1"))


@control("TLS-2")
def test_plaintext_startup_refused(tls_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(_all(tls_facts, judge.judge_tls2), evidence,
           "; ".join(f"{n}: {f.plaintext.outcome}" for n, f in tls_facts.items()))


@control("TLS-2")
def test_no_plaintext_hba_rule(pg_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    from pgproof.checks.postgres import judge_tls2_hba

    expect(judge_tls2_hba(pg_facts), evidence,
           "hba rule types: " + ", ".join(sorted({r.type for r in pg_facts.hba_rules or []})))


@control("TLS-2")
def test_rds_force_ssl(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_tls2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "TLS-2"))


@control("TLS-3")
def test_certificate_verifies(tls_facts, verify_full_login, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    login_error = verify_full_login
    if login_error and not any(w in login_error.lower() for w in ("certificate", "ssl", "tls")):
        # Wrong password or no route: that is "could not check", not a certificate finding.
        raise Unreachable(f"verify-full login failed for a reason unrelated to TLS: {login_error}")
    expect(_all(tls_facts, judge.judge_tls3, login_error), evidence,
           f"chain verifies to {target.require_postgres('TLS-3').sslrootcert or 'the system trust store'} and the host name matches at "
           f"{', '.join(tls_facts)}; sslmode=verify-full login works")


@control("TLS-4")
def test_certificates_not_near_expiry(tls_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(_all(tls_facts, judge.judge_tls4, target.thresholds), evidence,
           "; ".join(f"{n}: leaf {f.chain[0].days_left} days" for n, f in tls_facts.items() if f.chain))


@control("TLS-4")
def test_rds_ca_not_deprecated(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_tls4(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "TLS-4"))


@control("TLS-5")
def test_strong_ciphers_and_keys(tls_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(_all(tls_facts, judge.judge_tls5, target.thresholds), evidence,
           "; ".join(f"{n}: {f.protocol} {f.cipher} {f.leaf.key_type}-{f.leaf.key_bits}"
                     for n, f in tls_facts.items() if f.leaf) + "; " + _weak_suites(tls_facts))


@control("TLS-6")
def test_pgbouncer_requires_tls_both_sides(pooler_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    c = pooler_facts.config
    expect(live.judge_tls6_pgbouncer(pooler_facts), evidence,
           f"client_tls_sslmode={c.get('client_tls_sslmode')}, "
           f"server_tls_sslmode={c.get('server_tls_sslmode')}")


@control("TLS-6")
def test_rds_proxy_requires_tls(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_tls6(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "TLS-6"))


@control("TLS-7")
def test_replication_encrypted(replication_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    from pgproof.checks.replication import judge_tls7

    f = replication_facts
    expect(judge_tls7(f, target.thresholds), evidence,
           f"{f.primary}: " + ", ".join(f"walsender {s.application_name} ssl={s.ssl} {s.version}"
                                        for s in f.senders)
           + "; " + ", ".join(f"standby {s.endpoint} sslmode={s.sslmode}" for s in f.standbys))
