"""replication traffic is encrypted at the spec's minimum TLS version, at both ends."""

from __future__ import annotations

from pgproof.probes.replication import ReplicationFacts
from pgproof.target import Thresholds
from pgproof.verdict import NotApplicable, Unreachable

TLS_ORDER = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
REQUIRING = ("require", "verify-ca", "verify-full")


def _below(version: str | None, minimum: str) -> bool:
    if version not in TLS_ORDER:
        return True
    return TLS_ORDER.index(version) < TLS_ORDER.index(minimum)


def judge_tls7(f: ReplicationFacts, th: Thresholds) -> list[str]:
    if f.managed:
        raise NotApplicable(f"{f.primary} is {f.managed}: replication between its instances is "
                            f"managed by the provider (encrypted in transit by AWS) and not "
                            f"visible in pg_stat_replication")
    if not f.senders and not f.standbys:
        raise NotApplicable(f"{f.primary} has no replication connection and no standby is "
                            f"configured")
    hidden = [s for s in f.senders if s.ssl is None]
    if hidden:
        raise Unreachable(f"{f.primary}: pg_stat_ssl shows no row for walsender pid "
                          f"{hidden[0].pid}; grant pg_monitor to the auditor role")
    minimum, problems = th.tls_min_version, []
    for s in f.senders:
        who = f"{f.primary}: replication connection pid {s.pid} ({s.application_name} from " \
              f"{s.client_addr or 'local socket'})"
        if not s.ssl:
            problems.append(f"{who} is not encrypted; the spec wants TLS {minimum}+ on every "
                            f"replication connection")
        elif _below(s.version, minimum):
            problems.append(f"{who} uses {s.version}; the spec wants {minimum}+")
    for st in f.standbys:
        if st.sslmode is None:
            raise Unreachable(f"{st.endpoint}: primary_conninfo not readable ({st.error}); grant "
                              f"pg_read_all_settings (pg_monitor) to the auditor role")
        if st.sslmode not in REQUIRING:
            problems.append(f"standby {st.endpoint}: primary_conninfo to {st.upstream} has "
                            f"sslmode={st.sslmode}, which allows plaintext; the spec wants "
                            f"require, verify-ca or verify-full")
    return problems
