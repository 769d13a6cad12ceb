"""POOL-1: the pooler's size, idle timeout and health checks."""

from __future__ import annotations

from pgproof.catalogue.build import check, control

CONTROLS = (
    control(
        "POOL-1", "Pooler configured",
        "The pooler's pool size is as specified, an idle timeout is set, and health checks are "
        "on.",
        "Set default_pool_size, server_idle_timeout and server_check_delay in PgBouncer.",
        severity="low", thresholds="pool_size",
        unmapped_reason="pool sizing and idle timeouts are capacity settings; no "
        "Security Rule standard asks for them (availability under failover is HA-1 to HA-6)",
        checks=(check("pooler", "live:judge_pool1_pgbouncer", "pooler_facts", "thresholds",
                      evidence=lambda p, _th: f"default_pool_size={p.config.get('default_pool_size')}"
                      f", server_idle_timeout={p.config.get('server_idle_timeout')}, "
                      f"server_check_delay={p.config.get('server_check_delay')}"),)),
)
