"""MON-1's RDS event subscription: failures, failovers, low storage and backups page someone.

RDS reports a failed automated backup, a failover or storage running out only as
RDS events; CloudWatch metrics say nothing of them. A subscription counts when it
is enabled and active, covers this database (SourceType ``db-instance`` naming
the primary, or ``db-cluster`` naming its cluster; an empty SourceIdsList means
every source of that type; an empty EventCategoriesList means every category),
and its SNS topic has a confirmed subscriber. The categories may be spread over
several subscriptions. Peers: Prowler's ``rds_instance_critical_event_subscription``
and ``rds_cluster_critical_event_subscription`` (which ask for maintenance and
configuration-change events instead of storage and backup).
"""

from __future__ import annotations

from typing import Any

from pgproof.probes.aws_inventory import AwsInventory

CATEGORIES = ("failure", "failover", "low storage", "backup", "recovery")


def _sources(inv: AwsInventory) -> dict[str, str]:
    """SourceType -> the identifier of this deployment for that type."""
    out = {}
    if inv.primary:
        out["db-instance"] = inv.primary["DBInstanceIdentifier"]
    if inv.cluster:
        out["db-cluster"] = inv.cluster["DBClusterIdentifier"]
    return out


def _confirmed(inv: AwsInventory, topic: str | None) -> bool:
    return bool(topic) and any(s.get("SubscriptionArn", "").startswith("arn:")
                               for s in inv.topic_subscriptions.get(topic or "", []))


def _why_not(inv: AwsInventory, sub: dict[str, Any], sources: dict[str, str]) -> str | None:
    """Why this subscription does not page anyone about this database, or None if it does."""
    source = sources.get(sub.get("SourceType") or "")
    if source is None:
        return f"its SourceType is {sub.get('SourceType') or 'all'}"
    ids = sub.get("SourceIdsList") or []
    if ids and source not in ids:
        return f"it names {', '.join(ids)}, not {source}"
    if sub.get("Enabled") is False:
        return "it is disabled"
    if (sub.get("Status") or "active") != "active":
        return f"its status is {sub.get('Status')}"
    if not _confirmed(inv, sub.get("SnsTopicArn")):
        return f"its topic {(sub.get('SnsTopicArn') or '?').split(':')[-1]} has no confirmed subscriber"
    return None


def event_problems(inv: AwsInventory) -> tuple[list[str], list[str]]:
    """(problems, gaps) for the event subscription part of MON-1."""
    if inv.event_subscriptions is None:
        why = inv.missing.get("event_subscriptions", "DescribeEventSubscriptions not read")
        return [], [f"RDS event subscriptions unknown ({why})"]
    sources = _sources(inv)
    if not sources:
        return [], []
    covered: set[str] = set()
    refused = []
    for sub in inv.event_subscriptions:
        refusal = _why_not(inv, sub, sources)
        if refusal is not None:
            refused.append(f"{sub.get('CustSubscriptionId')} ({refusal})")
            continue
        cats = [c.lower() for c in sub.get("EventCategoriesList") or []]
        covered |= set(CATEGORIES) if not cats else set(cats) & set(CATEGORIES)
    missing = [c for c in CATEGORIES if c not in covered]
    if not missing:
        return [], []
    where = " / ".join(f"{t} {i}" for t, i in sources.items())
    seen = f"; subscriptions that do not count: {', '.join(refused)}" if refused else ""
    return [f"{where}: no enabled RDS event subscription with a subscribed SNS topic covers the "
            f"{', '.join(missing)} event categories{seen}; the spec wants RDS events for failure, "
            f"failover, low storage and backup/recovery to page someone"], []
