"""What the AWS twin provisioned: the ids a target file and later ``lab break``/``heal`` need.

Its own module so the provisioning specs (``aws_spec``) and the provisioner (``aws_twin``)
both read it without importing each other.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class AwsTwin:
    """Ids of everything provisioned; ``aws_section()`` is what a target file needs."""

    region: str
    copy_region: str
    vpc_id: str
    private_subnet_ids: list[str]
    public_subnet_id: str
    private_route_table_id: str
    public_route_table_id: str
    igw_id: str
    app_security_group_ids: list[str]
    db_security_group_id: str
    kms_key_id: str
    kms_key_arn: str
    db_subnet_group: str
    parameter_group: str
    db_instance_id: str
    replica_ids: list[str]
    snapshot_id: str
    log_group_prefix: str
    secret_id: str
    master_username: str
    sns_topic_arn: str
    alarm_email: str
    alarm_names: list[str]
    backup_bucket: str
    backup_vault: str
    backup_copy_vault: str
    backup_copy_vault_arn: str
    backup_plan_id: str
    monitoring_role_arn: str
    proxy_role_arn: str
    db_proxy_name: str | None = None
    # The Aurora shape (lab-aurora): the cluster, its DB cluster parameter group, and its
    # manual cluster snapshot (``snapshot_id``); ``db_instance_id`` is then the first writer.
    db_cluster_id: str | None = None
    cluster_parameter_group: str = ""
    secret_arn: str = ""
    password: str = field(default="", repr=False)

    def aws_section(self, endpoint_url: str | None = None) -> dict[str, Any]:
        """The ``[aws]`` table of a target (``pgproof.target.Aws`` fields only)."""
        out: dict[str, Any] = {
            "region": self.region,
            **({"db_cluster_id": self.db_cluster_id} if self.db_cluster_id
               else {"db_instance_id": self.db_instance_id}),
            "backup_bucket": self.backup_bucket,
            "secret_id": self.secret_id,
            "backup_plan_id": self.backup_plan_id,
            "app_security_group_ids": list(self.app_security_group_ids),
            "log_group_prefix": self.log_group_prefix,
        }
        if self.db_proxy_name:
            out["db_proxy_name"] = self.db_proxy_name
        if endpoint_url:
            out["endpoint_url"] = endpoint_url
        return out

    def save(self, path: Path) -> None:
        """State for later ``lab break``/``heal`` runs; holds the lab password, so mode 0600."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=2)

    @classmethod
    def load(cls, path: Path) -> AwsTwin:
        return cls(**json.loads(path.read_text()))
