"""What one AWS inventory pass found (``AwsInventory``) and the helpers every describe call uses.

Apart from ``probes/aws.py`` so the calls (``aws_calls``) and the probe that runs them import it
without importing each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure",
          "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
          "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidSignatureException",
          "UnauthorizedException", "Forbidden"}


class SubnetRoute(TypedDict):
    """The route table a DB subnet really uses (NET-2): pgproof's own record, not AWS's."""

    vpc_id: str
    explicit: bool  # associated with the subnet; False: the VPC's main table applies
    route_table_id: str | None  # None: no table at all, not even a main one
    routes: list[dict[str, Any]]  # the table's Routes as EC2 describes them


BucketFact = Literal["encryption", "public_access_block", "versioning", "lifecycle"]


class BucketFacts(TypedDict, total=False):
    """The backup bucket (ENC-3, BAK-4), one key per S3 call; only ``exists`` when it is missing."""

    exists: bool
    encryption: dict[str, Any] | None  # ServerSideEncryptionConfiguration (None: not configured)
    public_access_block: dict[str, Any] | None  # PublicAccessBlockConfiguration
    versioning: str | None  # Status (None: never enabled)
    lifecycle: list[dict[str, Any]] | None  # Rules (None: no lifecycle configuration)


@dataclass
class AwsInventory:
    """Facts about one RDS deployment, as AWS described them (raw response records)."""

    region: str
    endpoint: str
    primary: dict[str, Any] | None = None
    replicas: list[dict[str, Any]] = field(default_factory=list)
    cluster: dict[str, Any] | None = None
    # Instance parameter groups: group -> name -> value, and the Source AWS reports per value.
    parameters: dict[str, dict[str, str | None]] = field(default_factory=dict)
    parameter_sources: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # Group (instance or cluster) -> its DBParameterGroupFamily, to look up engine defaults.
    parameter_families: dict[str, str] = field(default_factory=dict)
    # The cluster's DB cluster parameter group (None: no cluster, or not read).
    cluster_parameters: dict[str, str | None] | None = None
    cluster_parameter_sources: dict[str, str | None] = field(default_factory=dict)
    # Family -> name -> value from DescribeEngineDefaultParameters / ...ClusterParameters.
    engine_defaults: dict[str, dict[str, str | None]] = field(default_factory=dict)
    cluster_engine_defaults: dict[str, dict[str, str | None]] = field(default_factory=dict)
    cluster_snapshots: list[dict[str, Any]] = field(default_factory=list)
    cluster_snapshot_restore: dict[str, list[str]] = field(default_factory=dict)
    global_cluster: dict[str, Any] | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    snapshot_restore: dict[str, list[str]] = field(default_factory=dict)
    automated_backups: list[dict[str, Any]] = field(default_factory=list)
    proxy: dict[str, Any] | None = None
    proxy_configured: bool = False
    subnet_routes: dict[str, SubnetRoute] = field(default_factory=dict)
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_security_group_ids: list[str] = field(default_factory=list)
    kms_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret: dict[str, Any] | None = None
    secret_id: str | None = None
    secret_from_api: bool = False  # the ARN came from MasterUserSecret (RDS manages rotation)
    secret_password_length: int | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    topic_subscriptions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    event_subscriptions: list[dict[str, Any]] | None = None  # None: not read (see missing)
    log_group_prefix: str = ""
    log_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    bucket_name: str | None = None
    bucket: BucketFacts = field(default_factory=BucketFacts)
    backup_plans: list[dict[str, Any]] = field(default_factory=list)
    backup_vault_exists: dict[str, bool] = field(default_factory=dict)
    backup_selections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    instance_memory_bytes: int | None = None
    engine_version_info: dict[str, Any] | None = None
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Reader id -> {"MetricName", "window_s", "Datapoints"}: CloudWatch's lag over the last window.
    replica_lag: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def instances(self) -> list[dict[str, Any]]:
        """The primary and its replicas: the databases a control applies to."""
        return ([self.primary] if self.primary else []) + self.replicas

    @property
    def aurora(self) -> bool:
        """An Aurora cluster (instance groups may override), not a Multi-AZ DB cluster."""
        return self.cluster is not None and str(self.cluster.get("Engine", "")).startswith("aurora")


def _code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def _not_implemented(exc: Exception) -> bool:
    """An API the endpoint does not offer (moto: NotImplementedError in-process, HTTP 500 served)."""
    if isinstance(exc, NotImplementedError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return _code(exc) in {"500", "501", "NotImplemented", "InvalidAction"} or status in (500, 501)
    return "invalid XML received" in str(exc)


def _optional(inv: AwsInventory, fact: str, fn: Callable[[], Any]) -> Any:
    """Run a capability probe; an API the target lacks becomes ``missing[fact]``."""
    try:
        return fn()
    except (ClientError, BotoCoreError, ResponseParserError, NotImplementedError) as exc:
        if _code(exc) in DENIED or not (_not_implemented(exc) or isinstance(exc, ClientError)):
            raise
        m = re.search(r"The (\w+) action has not been implemented", str(exc))
        op = getattr(exc, "operation_name", None) or (m[1] if m else fact)
        why = "not available from this endpoint (not implemented or HTTP 5xx)" \
            if _not_implemented(exc) else _code(exc)
        inv.missing[fact] = f"{op}: {why}"
        return None


def _pages(client: Any, op: str, key: str, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(op).paginate(**kw):
        out.extend(page.get(key, []))
    return out


def password_length(secret_string: str | None) -> int | None:
    """Length of the ``password`` key of an RDS secret (JSON), else of the whole string."""
    if secret_string is None:
        return None
    try:
        doc = json.loads(secret_string)
    except ValueError:
        return len(secret_string)
    if isinstance(doc, dict):
        pw = doc.get("password")
        return len(pw) if isinstance(pw, str) else None
    return None
