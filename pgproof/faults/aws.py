"""The AWS driver: RDS / Aurora faults through the control plane (boto3).

What it can do is what AWS offers: a forced Multi-AZ failover
(``reboot_db_instance(ForceFailover=True)``) for an instance, or
``failover_db_cluster`` for an Aurora cluster; a partition as a security-group
blackhole (``faults.aws_sg``); latency on the client path through a Toxiproxy
beside the load generator (``faults.client_proxy``). Everything it observes is
the control plane's view (status, members, events); it never logs in to the
database, so ``steady()`` says nothing about whether writes succeed: the
game day's failover clock and write ledger measure that.

Against plain moto a forced reboot answers and changes nothing; the
lab's twin (``lab.aws_bridge``) turns it into a real Patroni failover with RDS
events. This module never invents a time: it reads the events it is given.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import threading
import time
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from botocore.config import Config

from pgproof.errors import UserError
from pgproof.faults import aws_sg, client_proxy
from pgproof.faults.base import FaultUndoError, Undo, fault
from pgproof.faults.protocol import FaultDriver, Snapshot
from pgproof.probes.aws import session
from pgproof.target import Target

# Short timeouts and standard retries: a game day must fail fast, not hang on a dead endpoint.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15,
                       retries={"mode": "standard", "max_attempts": 3})
REBOOT = ("reboot with failover: `reboot_db_instance(ForceFailover=True)` (Aurora: "
          "`failover_db_cluster`); RDS offers no way to crash a host, so this is not a SIGKILL")


def _is_failover_done(event: dict[str, Any]) -> bool:
    """RDS-EVENT-0049 ('Multi-AZ instance failover completed') / 0071 (cluster failover completed)."""
    msg = event.get("message", "").lower()
    return "failover" in event.get("categories", []) and ("complete" in msg or "completed" in msg)


def _is_failover_started(event: dict[str, Any]) -> bool:
    """RDS-EVENT-0013 ('Multi-AZ instance failover started') / 0069-0070 (cluster failover started)."""
    msg = event.get("message", "").lower()
    return "failover" in event.get("categories", []) and "start" in msg


class AwsDriver(client_proxy.ClientPathLatency, FaultDriver):
    """One RDS instance (``aws.db_instance_id``) or Aurora cluster (``aws.db_cluster_id``, preferred)."""

    name = "aws"
    # What a game day must know before it starts anything (the methods raise the same).
    UNSUPPORTED = {
        "crash_postmaster": "there is no access to an RDS host's processes",
        "synchronous": "RDS replication mode is not switchable",
    }
    # What each fault really does here: the plan and the journal say this, not the lab's words.
    FAULT_TEXT = {
        "kill_primary": REBOOT, "force_failover": REBOOT,
        "latency": client_proxy.LATENCY_TEXT,
        "partition_primary": "security-group blackhole: revoke the DB security group's ingress "
                             "rules that admit the app tier on the DB port, hold {duration_s:.0f} s, "
                             "re-authorize exactly those (compared rule by rule)",
    }
    STEADY_TEXT = "control plane: instance available and Multi-AZ, or cluster writer + reader"
    SCENARIO_OVERRIDES = {
        "kill-primary": {"description": "reboot the primary with failover under load (RDS has no "
                         "host to crash: reboot_db_instance ForceFailover=True)"},
        "force-failover": {"description": "failover through the control plane (RDS reboot with "
                           "failover; Aurora failover_db_cluster) under load"},
        "latency": {"description": "200 ms (+/- 20 ms) latency on the client path (a Toxiproxy "
                    "beside the load generator) under load"},
        "partition": {"description": "cut the app tier off from the database (security-group "
                      "blackhole on the DB port) for chaos.duration_s, then restore; writes must "
                      "resume and none may be lost", "split_brain_check": False},
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
        self._session = session(aws.profile, aws.region, aws.credentials_file)
        self._client_kw = kw
        self.rds = self._session.client("rds", **kw)
        self._ec2: Any = None
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
        found: dict[str, Any] = self.rds.describe_db_clusters(
            DBClusterIdentifier=self.cluster_id)["DBClusters"][0]
        return found

    def _instance(self, ident: str | None = None) -> dict[str, Any]:
        ident = ident or self.instance_id
        found: dict[str, Any] = self.rds.describe_db_instances(
            DBInstanceIdentifier=ident)["DBInstances"][0]
        return found

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
        """When RDS says the failover started and completed; None when it said nothing (plain moto)."""
        events = self.events(since)
        started = [e["at"] for e in events if _is_failover_started(e)]
        done = [e["at"] for e in events if _is_failover_done(e)]
        return {"rds_event_at": done[0] if done else None,
                "rds_failover_started_at": started[0] if started else None}

    def snapshot(self, ident: str) -> Snapshot:
        """A manual DB (cluster) snapshot named ``ident``, waited for until available."""
        if self.cluster_id:
            self.rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=ident,
                                                DBClusterIdentifier=self.cluster_id)
            kind = "rds-cluster-snapshot"
        else:
            self.rds.create_db_snapshot(DBSnapshotIdentifier=ident, DBInstanceIdentifier=self.instance_id)
            kind = "rds-snapshot"
        deadline = time.monotonic() + self.wait_timeout_s
        status = "?"
        while time.monotonic() < deadline:
            status = self._snapshot_status(ident)
            if status == "available":
                return {"id": ident, "kind": kind}
            if status in ("failed", "deleted", "deleting", "incompatible-restore"):
                break
            time.sleep(self.poll_s)
        raise RuntimeError(f"snapshot {ident} is {status!r}, not available")

    def _snapshot_status(self, ident: str) -> str:
        if self.cluster_id:
            snaps = self.rds.describe_db_cluster_snapshots(
                DBClusterSnapshotIdentifier=ident)["DBClusterSnapshots"]
        else:
            snaps = self.rds.describe_db_snapshots(DBSnapshotIdentifier=ident)["DBSnapshots"]
        return str(snaps[0].get("Status", "?"))

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
        """Ask for the failover, then wait while the control plane shows it under way.

        The API call returns at once and the outage starts later; returning only when
        the resource is available again (as Patroni's /failover blocks) keeps the clock's
        "first failure, then first success" from reading a not-yet-started failover as
        instant recovery. An endpoint that answers "available" straight away (plain moto
        changes nothing) is not waited for.
        """
        if self.cluster_id:
            readers = [m["DBInstanceIdentifier"] for m in self._cluster().get("DBClusterMembers", [])
                       if not m.get("IsClusterWriter")]
            kw = {"TargetDBInstanceIdentifier": readers[0]} if readers else {}
            status = self.rds.failover_db_cluster(DBClusterIdentifier=self.cluster_id,
                                                  **kw)["DBCluster"].get("Status")
        else:
            status = self.rds.reboot_db_instance(DBInstanceIdentifier=self.instance_id,
                                                 ForceFailover=True)["DBInstance"].get("DBInstanceStatus")
        deadline = time.monotonic() + self.wait_timeout_s
        while status != "available" and time.monotonic() < deadline:
            time.sleep(min(self.poll_s, 0.5))
            with contextlib.suppress(Exception):  # a throttled describe is retried, not fatal
                status = self._status()

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

    # -- partition: security-group blackhole -----------------------------------------------------
    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = self._session.client("ec2", **self._client_kw)
        return self._ec2

    def db_security_groups(self) -> tuple[list[str], int]:
        """(the resource's VPC security group ids, its port)."""
        rec = self._cluster() if self.cluster_id else self._instance()
        groups = [g["VpcSecurityGroupId"] for g in rec.get("VpcSecurityGroups", [])]
        port = rec.get("Port") or (rec.get("Endpoint") or {}).get("Port") or rec.get("DbInstancePort")
        return groups, int(port or 5432)

    def app_rules(self) -> list[dict[str, Any]]:
        """The DB security group rules that admit the app tier on the DB port (what a blackhole revokes)."""
        groups, port = self.db_security_groups()
        return aws_sg.find(self.ec2, groups, port, list(self.aws.app_security_group_ids),
                           list(self.target.chaos.app_cidrs))

    def why_not(self, method: str) -> str | None:
        """Refusals that depend on the target's configuration, asked before anything starts."""
        if method == "partition_primary" and not (self.aws.app_security_group_ids
                                                  or self.target.chaos.app_cidrs):
            return (f"a security-group blackhole needs the app tier: set targets.{self.target.name}"
                    ".aws.app_security_group_ids or chaos.app_cidrs")
        return None

    def partition_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Revoke the app tier's ingress rules for ``chaos.duration_s``; the undo re-authorizes them.

        The rules are restored by a timer after the hold (a partition that heals, as the
        scenario then measures how fast writes resume) and again, idempotently, by the undo.
        """
        rules = self.app_rules()
        if not rules:
            groups, port = self.db_security_groups()
            raise RuntimeError(f"no ingress rule of {', '.join(groups) or 'the DB security groups'} "
                               f"admits the app tier on port {port}: nothing to revoke")
        lock, revoked = threading.Lock(), [False]
        timer: list[threading.Timer] = []

        def restore() -> None:
            with lock:
                if revoked[0]:
                    aws_sg.authorize(self.ec2, rules)
                    revoked[0] = False

        def quiet_restore() -> None:
            with contextlib.suppress(Exception):  # the undo at the end retries and reports
                restore()

        def act() -> None:
            with lock:
                revoked[0] = True  # before the call: a half-applied revoke is restored too
                aws_sg.revoke(self.ec2, rules)
            timer.append(threading.Timer(self.target.chaos.duration_s, quiet_restore))
            timer[0].daemon = True
            timer[0].start()

        def undo() -> None:
            for t in timer:
                t.cancel()
            restore()

        what = aws_sg.describe(rules)
        fix = " && ".join(f"aws ec2 authorize-security-group-ingress --group-id {r['group_id']} "
                          f"--ip-permissions '{aws_sg.key(r['rule'])}'" for r in rules)
        return fault(Undo(undo, f"security-group ingress revoked: {what}", fix), act, undo_stack,
                     durable=("sg_ingress_revoked", {"rules": rules}))

    def undo_recorded(self, kind: str, data: dict[str, Any]) -> str:
        """Undo one durably recorded fault of this driver (after the runner died); idempotent."""
        done = client_proxy.undo_recorded(kind, data)
        if done is not None:
            return done
        if kind == "sg_ingress_revoked":
            back = aws_sg.authorize(self.ec2, data["rules"])
            return (f"re-authorized {len(back)} ingress rule(s): {aws_sg.describe(data['rules'])}"
                    if back else "every recorded ingress rule is already in place")
        raise ValueError(f"the aws driver cannot undo a recorded {kind!r}")

    def synchronous(self, on: bool) -> AbstractContextManager[None]:
        """RDS fixes the replication mode (Multi-AZ: synchronous; Aurora: storage quorum)."""
        raise NotImplementedError("RDS replication mode is not switchable: Multi-AZ is synchronous "
                                  "and Aurora replicates at the storage layer")
