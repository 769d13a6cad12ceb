"""TLS-1..TLS-7: live handshakes at every client endpoint, server settings, cloud parameters,
the pooler and replication; each control with its checks per layer."""

from __future__ import annotations

from typing import Any

from pgproof.catalogue import seen
from pgproof.catalogue.build import TRANSMISSION, aws, azure, check, control, lazy
from pgproof.catalogue.runner import every_endpoint, resolve
from pgproof.verdict import Unreachable


def _versions(facts: dict[str, Any], _th: Any = None) -> str:
    return "; ".join(f"{n}: " + ", ".join(f"{v}={r.outcome}" for v, r in f.versions.items())
                     for n, f in facts.items())


def _weak_suites(facts: dict[str, Any]) -> str:
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


def _strong(facts: dict[str, Any], _th: Any) -> str:
    return ("; ".join(f"{n}: {f.protocol} {f.cipher} {f.leaf.key_type}-{f.leaf.key_bits}"
                      for n, f in facts.items() if f.leaf) + "; " + _weak_suites(facts))


def min_protocol_setting(pg_facts: Any, th: Any) -> list[str]:
    """ssl_min_protocol_version as the server reports it."""
    judge = resolve("pgproof.checks.tls:judge_min_protocol_setting")
    problems: list[str] = judge(pg_facts.setting("ssl_min_protocol_version"), th, pg_facts.endpoint)
    return problems


def certificate_verifies(tls_facts: dict[str, Any], login_error: str | None) -> list[str]:
    """Chain and name at every endpoint, and a verify-full login; a login that failed for a
    reason unrelated to TLS (wrong password, no route) is "could not check"."""
    if login_error and not any(w in login_error.lower() for w in ("certificate", "ssl", "tls")):
        raise Unreachable(f"verify-full login failed for a reason unrelated to TLS: {login_error}")
    return every_endpoint(tls_facts, resolve("pgproof.checks.tls:judge_tls3"), login_error)


def _verified(tls_facts: dict[str, Any], _login: Any, target: Any) -> str:
    return (f"chain verifies to {target.require_postgres('TLS-3').sslrootcert or 'the system trust store'}"
            f" and the host name matches at {', '.join(tls_facts)}; sslmode=verify-full login works")


CONTROLS = (
    control(
        "TLS-1", "Server accepts TLS 1.2+ only",
        "Handshakes pinned to TLS 1.0 or 1.1 are refused by the server at every client endpoint, "
        "1.2 or 1.3 are accepted, ssl_min_protocol_version is at least TLSv1.2, and the RDS "
        "parameter group says so. The minimum is tls_min_version: under --profile cis-level1 "
        "(or cis-level2) TLSv1.3, CIS PostgreSQL 17 v1.0.0's 6.9; CIS 15/16's 6.9 (TLS 1.0 "
        "and 1.1 disabled) is the default.",
        "Set ssl_min_protocol_version = 'TLSv1.2' (RDS: in the DB parameter group) and reload.",
        severity="high", thresholds="tls_min_version", hipaa=TRANSMISSION, cis=("6.8", "6.9"),
        checks=(
            check("tls", "tls:judge_tls1", "tls_facts", "thresholds", per_endpoint=True,
                  evidence=_versions),
            check("sql", min_protocol_setting, "pg_facts", "thresholds",
                  settings="ssl_min_protocol_version",
                  evidence=lambda pg, _th: f"ssl_min_protocol_version="
                                           f"{pg.setting('ssl_min_protocol_version')}"),
            aws("aws:judge_tls1", lazy("aws_util:settings", "ssl_min_protocol_version")),
            azure("azure:judge_tls1", params=("ssl_min_protocol_version",)),
        )),
    control(
        "TLS-2", "Plaintext refused",
        "A plaintext startup is refused, no host/hostnossl pg_hba rule accepts connections, and "
        "rds.force_ssl = 1.",
        "Use only hostssl rules in pg_hba.conf; on RDS set rds.force_ssl = 1.",
        severity="high", hipaa=TRANSMISSION, cis=("5.4", "6.8"),
        checks=(
            check("tls", "tls:judge_tls2", "tls_facts", per_endpoint=True,
                  evidence=lambda facts: "; ".join(f"{n}: {f.plaintext.outcome}"
                                                   for n, f in facts.items())),
            check("sql", "postgres:judge_tls2_hba", "pg_facts",
                  evidence=lambda pg: "hba rule types: " + ", ".join(
                      sorted({r.type for r in pg.hba_rules or []}))),
            aws("aws:judge_tls2", lazy("aws_util:settings", "rds.force_ssl")),
            azure("azure:judge_tls2", params=("require_secure_transport",)),
        )),
    control(
        "TLS-3", "Certificate verifies",
        "The server certificate chains to the configured CA bundle, its name matches the endpoint, "
        "and an sslmode=verify-full login works.",
        "Issue the server certificate from the CA clients trust, with the endpoint's DNS name "
        "or address in its subjectAltName.",
        severity="medium", hipaa=("164.312(e)(1)", "164.312(d)"), cis=("6.8",),
        checks=(check("tls", certificate_verifies, "tls_facts", "verify_full_login", shows="target",
                      evidence=_verified),)),
    control(
        "TLS-4", "Certificate not near expiry",
        "Leaf and CA certificates stay valid for at least the threshold; the RDS CA identifier "
        "is not deprecated.",
        "Renew the certificate before the threshold; on RDS move the instance to a current CA "
        "(e.g. rds-ca-rsa2048-g1).",
        severity="medium", thresholds="cert_min_days deprecated_ca_ids", hipaa=("164.312(e)(1)",),
        checks=(
            check("tls", "tls:judge_tls4", "tls_facts", "thresholds", per_endpoint=True,
                  evidence=lambda facts, _th: "; ".join(
                      f"{n}: leaf {f.chain[0].days_left} days" for n, f in facts.items() if f.chain)),
            aws("aws:judge_tls4", lambda i: seen.each(i, "CACertificateIdentifier")),
            azure("azure:judge_tls4", seen=lambda inv: "no certificate facts on the server resource"),
        )),
    control(
        "TLS-5", "Strong crypto",
        "The server accepts no anonymous, NULL, EXPORT, RC4, DES, 3DES or MD5 suite at any TLS "
        "version (enumerated one class at a time, as a scanner does), key exchange is forward "
        "secret, and the leaf key is at least 2048-bit RSA or 256-bit EC.",
        "Restrict ssl_ciphers to forward-secret AEAD suites (e.g. 'HIGH:!aNULL:!MD5:!3DES') and "
        "use a 2048-bit RSA or P-256 key.",
        severity="medium", thresholds="tls_require_forward_secrecy",
        hipaa=(*TRANSMISSION, "164.312(e)(2)(i)"), cis=("6.10",),
        checks=(check("tls", "tls:judge_tls5", "tls_facts", "thresholds", per_endpoint=True,
                      settings="ssl_ciphers",
                      evidence=_strong),)),
    control(
        "TLS-6", "Pooler keeps TLS",
        "PgBouncer requires TLS from clients and to the server; an RDS Proxy has RequireTLS on.",
        "Set client_tls_sslmode and server_tls_sslmode to require (or verify-full) in PgBouncer; "
        "enable RequireTLS on the RDS Proxy.",
        severity="high", hipaa=TRANSMISSION,
        checks=(
            check("pooler", "live:judge_tls6_pgbouncer", "pooler_facts",
                  evidence=lambda p: f"client_tls_sslmode={p.config.get('client_tls_sslmode')}, "
                                     f"server_tls_sslmode={p.config.get('server_tls_sslmode')}"),
            aws("aws:judge_tls6", lambda i: f"proxy {(i.proxy or {}).get('DBProxyName')}: "
                                            f"RequireTLS={(i.proxy or {}).get('RequireTLS')}"),
        )),
    control(
        "TLS-7", "Replication encrypted",
        "Every replication connection on the primary uses TLS at the minimum version or higher, "
        "and every standby's primary_conninfo requires TLS; on RDS and Aurora replication is "
        "managed by the provider, which is stated.",
        "Use hostssl rules for replication, and sslmode=verify-full (or verify-ca/require) in the "
        "replication connection settings (Patroni: authentication.replication.sslmode).",
        severity="high", thresholds="tls_min_version", hipaa=TRANSMISSION, cis=("7.5",),
        checks=(check("sql", "replication:judge_tls7", "replication_facts", "thresholds",
                      evidence=lambda f, _th: f"{f.primary}: " + ", ".join(
                          f"walsender {s.application_name} ssl={s.ssl} {s.version}"
                          for s in f.senders) + "; " + ", ".join(
                          f"standby {s.endpoint} sslmode={s.sslmode}" for s in f.standbys)),),
    ),
)
