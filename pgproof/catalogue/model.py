"""The shape of a catalogue entry and the vocabularies it uses (layers, frameworks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["compliance", "gameday"]
# How bad a failure of the control is, whatever this run's verdict: OCSF severity_id 1-5 and
# the ASFF label of a failed finding read it (the names are OCSF's and Security Hub's).
Severity = Literal["informational", "low", "medium", "high", "critical"]
SEVERITY_IDS: dict[str, int] = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}

# What each layer is: the vocabulary of ``Control.layers``.
LAYERS: dict[str, str] = {
    "tls": "live TLS handshakes and a plaintext startup at every client endpoint",
    "sql": "a live SQL session: server settings, pg_hba rules, roles, replicas, a verify-full login",
    "aws": "the AWS API (RDS, EC2, KMS, Secrets Manager, CloudWatch, S3, Backup describe calls)",
    "azure": "the Azure APIs (flexible server, network, Key Vault, Storage and Blob, Monitor, locks)",
    "pooler": "the PgBouncer admin console (SHOW CONFIG)",
    "health": "the application's HTTP health endpoint",
    "dns": "name resolution of the writer endpoint",
    "vantage": "TCP reachability from app hosts and outside vantage points (testinfra)",
    "host": "the database hosts over testinfra (data directory device, file modes, processes, "
            "profiles, FIPS mode)",
    "backup": "the backup tool's own JSON info (pgbackrest info, retention) and pg_stat_archiver",
    "source": "a scan of the configured application source tree",
    "clock": "the failover clock: a write every 50 ms through the writer endpoint",
    "ledger": "the write ledger: every acknowledged load write looked up on the new primary",
    "load": "Locust throughput, latency and error counts per second",
    "cluster": "the cluster's own view (Patroni leader, timeline, sync standby; RDS events)",
    "split-brain": "a direct write to the old primary after the new one is promoted",
    "restore": "a point-in-time restore into a scratch instance, probed and deleted (markers, login, TLS)",
    "sns-delivery": "a temporary SQS subscriber on each alarm's SNS topic, receiving what "
                    "set_alarm_state(ALARM) makes CloudWatch send",
}

FRAMEWORKS = ("hipaa", "cis", "fsbp")

# Where a database runs. A control applies on each as ``checked`` (by the layers that see the
# fact there), ``inherited`` (the provider manages it and its documentation says the customer
# cannot change it: verdict ``inherited``, never pass) or ``n/a`` (does not exist there).
Platform = Literal["rds", "aurora", "azure", "self-managed"]
PLATFORMS: tuple[Platform, ...] = ("rds", "aurora", "azure", "self-managed")
Status = Literal["checked", "inherited", "n/a"]


@dataclass(frozen=True)
class Applies:
    """How a control applies on one platform, where that is not simply "checked by its layers".

    ``why`` is said, never guessed: for ``inherited`` the provider's words and where they are
    (a documentation URL); for ``n/a`` the reason the recommendation does not exist there."""

    status: Status
    why: str

# The inputs a judge may ask for: the probes' pytest fixtures (each one layer's facts, gated on
# the target configuring that layer), plus ``target`` and ``thresholds`` (no layer).
FIXTURES: dict[str, str] = {
    "tls_facts": "tls", "pg_facts": "sql", "verify_full_login": "sql", "aws_inventory": "aws",
    "azure_inventory": "azure",
    "pooler_facts": "pooler", "health_facts": "health", "dns_facts": "dns",
    "vantage_reach": "vantage", "host_facts": "host", "host_cis_facts": "host", "source_findings": "source",
    "backup_facts": "backup", "replication_facts": "sql", "priv_facts": "sql",
}
assert set(FIXTURES.values()) <= set(LAYERS), "a fixture names a layer the catalogue lacks"
PLAIN_INPUTS = ("target", "thresholds")

# A judge or evidence function: a callable, or "module:function" imported when first run (so
# the catalogue, which target.py's waivers read, never imports the probes or cloud SDKs).
Ref = str | Callable[..., Any]


@dataclass(frozen=True)
class ApiFields:
    """What a cloud judge reads, declared beside it with ``@reads`` (``catalogue/build.py``):
    the API calls, the fields (in backticks: tests/test_api_fields.py holds them to the judge's
    code), and what it concludes when one is absent. docs/controls.md renders them."""

    calls: str
    fields: str
    absent: str


@dataclass(frozen=True)
class Check:
    """One judge of a control at one layer: the facts it reads (``inputs``, in call order),
    the function that turns them into problem sentences, and a one-line evidence function
    for a pass. Sentences never name the control: the runner adds ``(ID)`` to each."""

    layer: str
    judge: Ref
    inputs: tuple[str, ...]
    evidence: Ref | None = None
    settings: tuple[str, ...] = ()  # server settings (pg_settings) it reads: doctor names the control
    per_endpoint: bool = False  # the first input maps endpoint -> facts: judge each one
    shows: tuple[str, ...] = ()  # inputs only the evidence reads (after the judge's)

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer whose facts it reads (TLS-3's tls check also reads a verify-full login)."""
        seen = dict.fromkeys([self.layer, *(FIXTURES[i] for i in self.inputs if i in FIXTURES)])
        return tuple(seen)


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    requirement: str
    kind: Kind
    layers: tuple[str, ...]
    remediation: str
    thresholds: tuple[str, ...] = ()
    # Framework references, e.g. {"fsbp": ("RDS.3",)}; IDs are in catalogue/frameworks.py.
    frameworks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Why a control has no HIPAA citation (an auditor must not guess whether it was forgotten).
    unmapped_reason: str = ""
    severity: Severity = "medium"
    # The judges that prove it, per layer (compliance controls); game days are in scenarios/.
    checks: tuple[Check, ...] = ()
    # Platforms where it is not simply checked by its layers (inherited or not applicable).
    platforms: dict[Platform, Applies] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "requirement": self.requirement,
                "kind": self.kind, "severity": self.severity, "layers": list(self.layers),
                "thresholds": list(self.thresholds), "remediation": self.remediation,
                "frameworks": {k: list(self.frameworks.get(k, ())) for k in FRAMEWORKS},
                "unmapped_reason": self.unmapped_reason}
