"""The AWS driver: RDS / Aurora faults through the control plane (boto3).

What it can do is what the RDS API offers: a forced Multi-AZ failover
(``reboot_db_instance(ForceFailover=True)``) for an instance, or
``failover_db_cluster`` for an Aurora cluster. Everything it observes is the
control plane's view (status, members, events); it never logs in to the
database, so ``steady()`` says nothing about whether writes succeed: the
game day's failover clock and write ledger measure that.

Against moto the calls are real but the effects are partial: a forced reboot
changes nothing (FIELD-NOTES "moto") and no failover events are emitted.
Timing can only be measured on real AWS; this module never invents a time.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import time
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from botocore.config import Config

from pgproof.errors import UserError
from pgproof.faults.base import FaultUndoError, Undo, fault
from pgproof.probes.aws import session
from pgproof.target import Target

# Short timeouts and standard retries: a game day must fail fast, not hang on a dead endpoint.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15,
                       retries={"mode": "standard", "max_attempts": 3})
NO_FIS = ("is not available on AWS through pgproof: network faults need AWS Fault Injection "
          "Service (FIS) experiments, which this driver does not drive (out of scope)")


def _is_failover_done(event: dict[str, Any]) -> bool:
    """RDS-EVENT-0049 ('Multi-AZ instance failover completed') / 0071 (cluster failover completed)."""
    msg = event.get("message", "").lower()
    return "failover" in event.get("categories", []) and ("complete" in msg or "completed" in msg)


class AwsDriver:
    """One RDS instance (``aws.db_instance_id``) or Aurora cluster (``aws.db_cluster_id``, preferred)."""

    name = "aws"
    # What a game day must know before it starts anything (the methods raise the same).
    UNSUPPORTED = {
        "crash_postmaster": "there is no access to an RDS host's processes",
        "latency": f"latency {NO_FIS}", "partition_primary": f"partition_primary {NO_FIS}",
        "synchronous": "RDS replication mode is not switchable",
    }

    def __init__(self, target: Target, wait_timeout_s: float = 900, poll_s: float = 5) -> None:
        aws = target.aws
        if aws is None:
            raise UserError(f"target {target.name!r} has no [targets.{target.name}.aws] section; "
                            "chaos.driver = \"aws\" needs its region and db_instance_id")
        if not (aws.db_cluster_id or aws.db_instance_id):
            raise UserError(f"targets.{target.name}.aws needs db_cluster_id or db_instance_id "
                            "for chaos.driver = \"aws\"")
        self.target, self.aws = target, aws
        self.cluster_id, self.instance_id = aws.db_cluster_id, aws.db_instance_id
        self.wait_timeout_s, self.poll_s = wait_timeout_s, poll_s
        kw: dict[str, Any] = {"config": CLIENT_CONFIG}
        if aws.endpoint_url:
            kw["endpoint_url"] = aws.endpoint_url
        self.rds = session(aws.profile, aws.region, aws.credentials_file).client("rds", **kw)
        self.started_at = time.time()  # timeline() counts failovers seen from here on
        self._require_resource()

    def _require_resource(self) -> None:
        """A mistyped id or missing credentials is bad input: say so before the game day starts.

        Any other failure (throttling, an unreachable endpoint) is left to ``steady()``,
        which records it in the journal as the reason the game day could not run.
        """
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        field = "db_cluster_id" if self.cluster_id else "db_instance_id"
        where = f"region {self.aws.region}" + (f" at {self.aws.endpoint_url}"
                                               if self.aws.endpoint_url else "")
        try:
            self._status()
        except NoCredentialsError:
            raise UserError(f"targets.{self.target.name}.aws: no AWS credentials found; set "
                            "aws.profile or aws.credentials_file, or export AWS_PROFILE") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if "NotFound" in code:
                raise UserError(f"targets.{self.target.name}.aws.{field}: {self.resource} does "
                                f"not exist in {where}") from None
        except BotoCoreError:
            pass

    # -- describe -----------------------------------------------------------------------------
    @property
    def resource(self) -> str:
        return f"DB cluster {self.cluster_id}" if self.cluster_id else f"DB instance {self.instance_id}"

    def _cluster(self) -> dict[str, Any]:
        return self.rds.describe_db_clusters(DBClusterIdentifier=self.cluster_id)["DBClusters"][0]

    def _instance(self, ident: str | None = None) -> dict[str, Any]:
        ident = ident or self.instance_id
        return self.rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]

    def _status(self) -> str:
        rec = self._cluster() if self.cluster_id else self._instance()
        return str(rec.get("Status") or rec.get("DBInstanceStatus") or "unknown")

    # -- observe ------------------------------------------------------------------------------
    def steady(self, require_sync: bool = True) -> tuple[bool, str]:
        """Control plane only (status, Multi-AZ / readers); no SQL write is attempted here."""
        note = " (control-plane view only; writes are measured by the failover clock)"
        if self.cluster_id:
            c = self._cluster()
            members = c.get("DBClusterMembers", [])
            writers = [m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")]
            readers = [m["DBInstanceIdentifier"] for m in members if not m.get("IsClusterWriter")]
            states = {m: self._instance(m).get("DBInstanceStatus") for m in writers + readers}
            ok = (c.get("Status") == "available" and len(writers) == 1 and bool(readers)
                  and all(s == "available" for s in states.values()))
            desc = ", ".join(f"{m}={'writer' if m in writers else 'reader'}/{s}" for m, s in states.items())
            # Aurora replicates at the storage layer: there is no sync/async mode to require.
            return ok, f"cluster {self.cluster_id} {c.get('Status')}; {desc or 'no members'}{note}"
        i = self._instance()
        status, multi_az = i.get("DBInstanceStatus"), bool(i.get("MultiAZ"))
        ok = status == "available" and multi_az  # Multi-AZ standby is synchronous by design
        return ok, (f"instance {self.instance_id} {status}, MultiAZ={multi_az}, "
                    f"AZ {i.get('AvailabilityZone')}{note}")

    def leader(self) -> str | None:
        """Cluster: the writer member id. Instance: its AZ, the identity a Multi-AZ failover changes."""
        if self.cluster_id:
            return next((m["DBInstanceIdentifier"] for m in self._cluster().get("DBClusterMembers", [])
                         if m.get("IsClusterWriter")), None)
        return self._instance().get("AvailabilityZone")

    def timeline(self) -> int | None:
        """Failover-completed events RDS reported since this driver was made (a counter, not a TLI)."""
        try:
            return sum(1 for e in self.events(self.started_at - 1) if _is_failover_done(e))
        except Exception:  # noqa: BLE001 - no permission for events: say "unknown", not 0
            return None

    def events(self, since: float) -> list[dict[str, Any]]:
        """RDS events of the resource since ``since`` (epoch), oldest first, for the journal."""
        src_type, src_id = (("db-cluster", self.cluster_id) if self.cluster_id
                            else ("db-instance", self.instance_id))
        out: list[dict[str, Any]] = []
        pages = self.rds.get_paginator("describe_events").paginate(
            SourceType=src_type, SourceIdentifier=src_id, StartTime=since)
        for page in pages:
            for e in page.get("Events", []):
                at = e["Date"].timestamp()
                if at >= since:  # an emulator may ignore StartTime
                    out.append({"at": at, "source": e.get("SourceIdentifier"),
                                "type": e.get("SourceType"), "message": e.get("Message", ""),
                                "categories": list(e.get("EventCategories", []))})
        return sorted(out, key=lambda e: e["at"])

    def promotion_times(self, node: str, since: float) -> dict[str, float | None]:
        """When RDS says the failover completed; None when it said nothing (moto never does)."""
        done = [e["at"] for e in self.events(since) if _is_failover_done(e)]
        return {"rds_event_at": done[0] if done else None}

    def versions(self) -> dict[str, str]:
        rec = self._cluster() if self.cluster_id else self._instance()
        return {"driver": self.name, "boto3": md.version("boto3"),
                "engine": str(rec.get("Engine")), "engine_version": str(rec.get("EngineVersion"))}

    def active_faults(self) -> list[str]:
        """Nothing this driver leaves behind persists; only report a resource that is not available."""
        status = self._status()
        return [] if status == "available" else [f"{self.resource} is {status!r}, not 'available'"]

    def node_conninfo(self, node: str) -> dict[str, Any]:
        raise NotImplementedError("the aws driver cannot reach one RDS node directly (no per-node "
                                  "endpoint for a Multi-AZ standby); no split-brain probe on AWS")

    # -- faults -------------------------------------------------------------------------------
    def _wait_available(self) -> None:
        """Undo of a failover: nothing to revert, but the resource must be available again."""
        deadline = time.monotonic() + self.wait_timeout_s
        status = "unknown"
        while True:
            with contextlib.suppress(Exception):
                status = self._status()
                if status == "available":
                    return
            if time.monotonic() >= deadline:
                break
            time.sleep(self.poll_s)
        raise FaultUndoError(
            f"{self.resource} is {status!r}, not available {self.wait_timeout_s:.0f} s after the failover",
            f"{self.resource} not available", self._manual_fix())

    def _manual_fix(self) -> str:
        kind = (f"--db-cluster-identifier {self.cluster_id}" if self.cluster_id
                else f"--db-instance-identifier {self.instance_id}")
        cmd = "describe-db-clusters" if self.cluster_id else "describe-db-instances"
        return (f"watch `aws rds {cmd} {kind} --region {self.aws.region}` and the RDS events; "
                "if it stays unavailable open an AWS support case")

    def _failover(self) -> None:
        if self.cluster_id:
            readers = [m["DBInstanceIdentifier"] for m in self._cluster().get("DBClusterMembers", [])
                       if not m.get("IsClusterWriter")]
            kw = {"TargetDBInstanceIdentifier": readers[0]} if readers else {}
            self.rds.failover_db_cluster(DBClusterIdentifier=self.cluster_id, **kw)
        else:
            self.rds.reboot_db_instance(DBInstanceIdentifier=self.instance_id, ForceFailover=True)

    def force_failover(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Cluster: failover_db_cluster (to a reader). Instance: reboot with ForceFailover=True."""
        undo = Undo(self._wait_available, f"{self.resource} may still be failing over",
                    self._manual_fix())
        return fault(undo, self._failover, undo_stack)

    def kill_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """AWS offers no way to crash the primary's host; the closest is the same forced failover."""
        return self.force_failover(undo_stack)

    def crash_postmaster(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        raise NotImplementedError("crash_postmaster is not possible on RDS: there is no access to "
                                  "the database host's processes")

    def latency(self, ms: int, jitter_ms: int = 0,
                undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        raise NotImplementedError(f"latency {NO_FIS}")

    def partition_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        raise NotImplementedError(f"partition_primary {NO_FIS}")

    def synchronous(self, on: bool) -> AbstractContextManager[None]:
        """RDS fixes the replication mode (Multi-AZ: synchronous; Aurora: storage quorum)."""
        raise NotImplementedError("RDS replication mode is not switchable: Multi-AZ is synchronous "
                                  "and Aurora replicates at the storage layer")
