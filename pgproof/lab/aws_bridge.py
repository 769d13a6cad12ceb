"""moto_server with the live lab bridged in: the AWS twin's control plane acts on real processes.

Plain moto answers ``reboot_db_instance(ForceFailover=True)`` and changes nothing,
and a revoked security-group rule cuts nobody off. Bridged, the twin's DB
instance *is* the lab's Patroni cluster:

- a reboot with failover sets the instance ``rebooting``, emits "Multi-AZ
  instance failover started" (RDS-EVENT-0013), fails Patroni over (REST
  ``/failover``), and once the other node leads moves the AvailabilityZone to
  the second AZ (at each failover the node leading is where the instance says
  it is, so lab-driver failovers in between never leave the AZ stale), emits "Multi-AZ
  instance failover completed" (RDS-EVENT-0049) and ``available`` again;
- after any ingress change, if no rule of the instance's security groups admits
  the app tier (an app security group, or a world CIDR) on the DB port, the
  lab's client->writer and client->reader Toxiproxy proxies are disabled; once a
  rule admits it again they are re-enabled. The decision is made from the
  current rules (state, not events), so any order of calls converges.

Why this way: moto's request parsing and XML rendering stay untouched; only two
narrow seams are wrapped in this server process (``RDSResponse.reboot_db_instance``,
the one place that sees ``ForceFailover``, and the EC2 security-group backend's
authorize/revoke ingress). The bridge then reads the rules back through moto's own
public API (boto3 against this server) with the same rule logic as the fault
(``faults.aws_sg``), so it depends on moto internals only at those seams. The bridge
is inactive until ``lab up`` has provisioned the twin (``state.aws`` names the instance).

The same server also adds the one CloudWatch behaviour moto 5.2.5 lacks, alarm
actions (for ``gameday alarm-drill``, MON-4). Real CloudWatch publishes to an
alarm's SNS actions on a state *transition* (ALARM -> ``AlarmActions``, OK ->
``OKActions``, INSUFFICIENT_DATA -> ``InsufficientDataActions``), only when
``ActionsEnabled`` is on; moto records the new state and publishes nothing. A
third seam, ``CloudWatchBackend.set_alarm_state``, publishes a notification
shaped like CloudWatch's to each SNS action in-process; moto's SNS then delivers
it to subscribed SQS queues itself. What the twin proves with it: the API calls,
the alarm -> topic -> subscriber pipeline and the subscriptions; only real AWS
proves delivery latency, email/Slack/PagerDuty endpoints and topic/queue
policies (moto does not enforce them). This seam needs no lab state.

``failover_db_cluster`` on the lab's Aurora cluster (``lab-aurora``) is bridged the same
way at a fourth seam (``RDSBackend.failover_db_cluster``): moto switches the writer
member, the bridge sets the cluster ``failing-over``, emits the cluster failover
events, fails Patroni over and sets it ``available`` again (on failure the writer is
switched back and a failure event says so).

One module, one moto process: the failover bridges, the security-group bridge
and alarm actions are installed together by ``main`` (``lab up`` runs it as
the lab's ``moto`` component).

Only the lab's owner is served (``--credentials``): the twin holds the lab's
master password (Secrets Manager) and its backups (S3), and it listens on a
loopback port every local user can open. ``main`` therefore creates the IAM
users named in the owner's 0600 credentials file inside moto *before* the port
opens and turns on moto's own request authentication from the first request
(``settings.INITIAL_NO_AUTH_ACTION_COUNT = 0``: SigV4 signature plus IAM
policy, as moto's ``set_initial_no_auth_action_count`` does in-process), and
``guard`` refuses moto's unauthenticated control API (``/moto-api/``: its
``data.json`` dumps every secret value, ``reset-auth`` would switch
authentication off) except the dashboard page the lab's health check reads.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pgproof.lab.aws_twin import LAB_PROFILE, LAB_REGION, LAB_USERS, lab_credentials

log = logging.getLogger("pgproof.aws_bridge")
FAILOVER_TIMEOUT_S = 90.0
EVENTS = {
    "DB_INSTANCE_FAILOVER_START": {"Categories": ["failover"],
                                   "Message": "Multi-AZ instance failover started."},
    "DB_INSTANCE_FAILOVER_FINISH": {"Categories": ["failover"],
                                    "Message": "Multi-AZ instance failover completed."},
    "DB_INSTANCE_FAILOVER_FAILED": {"Categories": ["failure"],
                                    "Message": "Multi-AZ instance failover failed; the primary "
                                               "was not changed."},
    "DB_INSTANCE_RESTARTED": {"Categories": ["availability"], "Message": "DB instance restarted"},
    # Aurora (RDS-EVENT-0072 / 0071 / 0070), emitted for the db-cluster source.
    "DB_CLUSTER_FAILOVER_START": {"Categories": ["failover"],
                                  "Message": "Started cross AZ failover to a reader DB instance."},
    "DB_CLUSTER_FAILOVER_FINISH": {"Categories": ["failover"],
                                   "Message": "Completed failover to DB instance."},
    "DB_CLUSTER_FAILOVER_FAILED": {"Categories": ["failure"],
                                   "Message": "Failover failed; the writer was not changed."},
}
ALARM_ACTIONS = {"ALARM": "alarm_actions", "OK": "ok_actions",
                 "INSUFFICIENT_DATA": "insufficient_data_actions"}


class Bridge:
    """Lab state looked up per call: the twin exists only after ``lab up`` provisioned it."""

    def __init__(self, state_dir: Path, port: int, credentials: Path | None = None) -> None:
        self.state_dir, self.port, self.credentials = state_dir, port, credentials
        self.cut = False  # whether *we* disabled the client path
        self.lock = threading.Lock()
        self.clients: dict[tuple[str, str], Any] = {}

    def state(self) -> Any:
        from pgproof.lab.state import LabState

        st = LabState.load(self.state_dir)
        return st if st is not None and st.aws.get("db_instance_id") else None

    # -- RDS -> Patroni -----------------------------------------------------------------------
    def reboot(self, backend: Any, db_id: str, force: bool) -> None:
        st = self.state()
        if st is None or db_id != st.aws["db_instance_id"] or db_id not in backend.databases:
            return
        db = backend.databases[db_id]
        if not force:
            backend.add_event("DB_INSTANCE_RESTARTED", db)
            return
        if db.status != "available":
            return  # a failover is already under way: RDS would refuse; moto answers as before
        db.status = "rebooting"
        backend.add_event("DB_INSTANCE_FAILOVER_START", db)
        threading.Thread(target=self._failover, args=(st, backend, db), daemon=True).start()

    def _failover(self, st: Any, backend: Any, db: Any) -> None:
        from pgproof.faults import patroni
        from pgproof.lab.state import NODES

        rest = [st.rest_url(n) for n in NODES]
        try:
            lead = _poll(lambda: patroni.leader(rest), 20)
            if lead is None:
                raise RuntimeError("no Patroni leader")
            cand = next(n for n in NODES if n != lead)
            # The node leading now is where the instance says it is; the standby is in the
            # other AZ. Anchored per failover: the lab driver may have moved the leader since.
            other = next(az for az in (f"{st.aws['region']}a", f"{st.aws['region']}b")
                         if az != db.availability_zone)
            patroni.failover(st.rest_url(lead), cand)
            if _poll(lambda: patroni.leader(rest) == cand or None, FAILOVER_TIMEOUT_S) is None:
                raise RuntimeError(f"{cand} did not become leader within {FAILOVER_TIMEOUT_S:.0f} s")
            db.availability_zone = other
            backend.add_event("DB_INSTANCE_FAILOVER_FINISH", db)
            log.info("failover of %s: %s -> %s", db.db_instance_identifier, lead, cand)
        except Exception as exc:  # noqa: BLE001 - the twin reports it as RDS would: an event
            log.warning("failover of %s failed: %s", db.db_instance_identifier, exc)
            backend.add_event("DB_INSTANCE_FAILOVER_FAILED", db)
        finally:
            db.status = "available"

    # -- Aurora failover_db_cluster -> Patroni (the lab-aurora cluster) ----------------------
    def cluster_failover(self, backend: Any, cluster: Any, old_writer: Any) -> None:
        """moto has switched the writer; make the failover real, then report it done."""
        st = self.state()
        if st is None or cluster.db_cluster_identifier != (st.aws_aurora or {}).get("db_cluster_id"):
            return
        cluster.status = "failing-over"
        backend.add_event("DB_CLUSTER_FAILOVER_START", _ClusterSource(cluster))
        threading.Thread(target=self._cluster_failover, args=(st, backend, cluster, old_writer),
                         daemon=True).start()

    def _cluster_failover(self, st: Any, backend: Any, cluster: Any, old_writer: Any) -> None:
        from pgproof.faults import patroni
        from pgproof.lab.state import NODES

        rest = [st.rest_url(n) for n in NODES]
        try:
            lead = _poll(lambda: patroni.leader(rest), 20)
            if lead is None:
                raise RuntimeError("no Patroni leader")
            cand = next(n for n in NODES if n != lead)
            patroni.failover(st.rest_url(lead), cand)
            if _poll(lambda: patroni.leader(rest) == cand or None, FAILOVER_TIMEOUT_S) is None:
                raise RuntimeError(f"{cand} did not become leader within {FAILOVER_TIMEOUT_S:.0f} s")
            backend.add_event("DB_CLUSTER_FAILOVER_FINISH", _ClusterSource(cluster))
            log.info("cluster failover of %s: %s -> %s", cluster.db_cluster_identifier, lead, cand)
        except Exception as exc:  # noqa: BLE001 - reported as RDS would: an event, writer unchanged
            log.warning("cluster failover of %s failed: %s", cluster.db_cluster_identifier, exc)
            if old_writer is not None:
                cluster.failover(old_writer)
                old_writer.is_cluster_writer = True
            backend.add_event("DB_CLUSTER_FAILOVER_FAILED", _ClusterSource(cluster))
        finally:
            cluster.status = "available"

    # -- EC2 security groups -> the lab's client path -----------------------------------------
    def sync_client_path(self) -> None:
        st = self.state()
        if st is None:
            return
        with self.lock:
            admitted = self._admitted(st)
            if admitted == (not self.cut):
                return
            from pgproof.faults import toxiproxy

            toxiproxy.set_enabled(st.toxiproxy_url, ["writer", "reader"], admitted)
            self.cut = not admitted
            log.info("client path %s", "re-enabled" if admitted else "cut (no ingress admits the app tier)")

    def _client(self, service: str, region: str) -> Any:
        """boto3 against this very server (cached: making a client costs ~1 s on a loaded machine)."""
        if (service, region) not in self.clients:
            import boto3

            key_id, secret = (lab_credentials(self.credentials) if self.credentials
                              else ("testing", "testing"))  # unauthenticated moto takes any keys
            self.clients[(service, region)] = boto3.client(
                service, endpoint_url=f"http://127.0.0.1:{self.port}", region_name=region,
                aws_access_key_id=key_id, aws_secret_access_key=secret)
        return self.clients[(service, region)]

    def _admitted(self, st: Any) -> bool:
        from pgproof.faults import aws_sg

        region = st.aws["region"]
        db = self._client("rds", region).describe_db_instances(
            DBInstanceIdentifier=st.aws["db_instance_id"])["DBInstances"][0]
        groups = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])]
        port = int((db.get("Endpoint") or {}).get("Port") or db.get("DbInstancePort") or 5432)
        perms = [p for g in self._client("ec2", region).describe_security_groups(
            GroupIds=groups)["SecurityGroups"] for p in g.get("IpPermissions", [])]
        app = list(st.aws.get("app_security_group_ids") or [])
        # The lab's app runs on loopback: only its SG membership or a world rule admits it.
        world = any(aws_sg.covers_port(r, port) and aws_sg.source(r) in ("0.0.0.0/0", "::/0")
                    for r in aws_sg.split(perms))
        return world or bool(aws_sg.admitting(perms, port, app, []))


class _ClusterSource:
    """What moto's ``Event`` reads from a resource, for a DB cluster (moto gives it none)."""

    def __init__(self, cluster: Any) -> None:
        self.resource_id = cluster.db_cluster_identifier
        self.event_source_type = "db-cluster"
        self.arn = cluster.db_cluster_arn


def _poll(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            got = check()
            if got:
                return got
        time.sleep(0.25)
    return None


# -- CloudWatch alarm actions -> SNS (moto's SNS delivers to SQS itself) ---------------------------
def notification(alarm: Any, old_state: str, account: str) -> tuple[str, str]:
    """(subject, message) as CloudWatch sends them to SNS for a state change."""
    when = alarm.state_updated_timestamp
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000" if isinstance(when, dt.datetime) else ""
    msg = {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason,
        "StateChangeTime": stamp, "Region": alarm.region_name, "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state, "AlarmActions": list(alarm.alarm_actions),
        "OKActions": list(alarm.ok_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace,
                    "Statistic": (alarm.statistic or "").upper(), "Period": alarm.period,
                    "EvaluationPeriods": alarm.evaluation_periods,
                    "ComparisonOperator": alarm.comparison_operator, "Threshold": alarm.threshold,
                    "TreatMissingData": alarm.treat_missing_data or "",
                    "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions]},
    }
    subject = f'{alarm.state_value}: "{alarm.name}" in {alarm.region_name}'
    return subject[:100], json.dumps(msg)


def deliver(alarm: Any, old_state: str, account: str) -> list[str]:
    """Publish to every SNS action of the alarm's new state; one line per action (for the log)."""
    from moto.sns.models import sns_backends

    subject, message = notification(alarm, old_state, account)
    out = []
    for arn in getattr(alarm, ALARM_ACTIONS.get(alarm.state_value, ""), None) or []:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            out.append(f"{alarm.name}: action {arn} is not an SNS topic; skipped")
            continue
        try:
            sns_backends[parts[4]][parts[3]].publish(message, arn=arn, subject=subject)
            out.append(f"{alarm.name}: {alarm.state_value} published to {arn}")
        except Exception as exc:  # noqa: BLE001 - a deleted topic fails the action, as on AWS
            out.append(f"{alarm.name}: failed to execute action {arn}: {type(exc).__name__}: {exc}")
    return out


def install_alarm_actions() -> None:
    """Wrap moto's ``set_alarm_state`` so a transition publishes to the alarm's actions (idempotent)."""
    from moto.cloudwatch.models import CloudWatchBackend

    original = CloudWatchBackend.set_alarm_state
    if getattr(original, "pgproof_bridge", False):
        return

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str,
                        state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        old = alarm.state_value if alarm is not None else None
        original(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        if old != alarm.state_value and alarm.actions_enabled:
            for line in deliver(alarm, old or "", self.account_id):
                log.info("%s", line)

    set_alarm_state.pgproof_bridge = True  # type: ignore[attr-defined]
    CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]


def install(bridge: Bridge) -> None:
    """Wrap the seams (see the module docstring) in this process only; idempotent."""
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.rds import models as rds_models
    from moto.rds.responses import RDSResponse

    install_alarm_actions()
    if getattr(RDSResponse.reboot_db_instance, "pgproof_bridge", False):
        return
    rds_models.Event.EVENT_MAP.update(EVENTS)
    reboot = RDSResponse.reboot_db_instance

    def reboot_db_instance(self: Any) -> Any:
        force = str(self.params.get("ForceFailover", "")).lower() in ("true", "1")
        with contextlib.suppress(Exception):  # the bridge never breaks moto's own answer
            bridge.reboot(self.backend, self.params.get("DBInstanceIdentifier"), force)
        return reboot(self)

    reboot_db_instance.pgproof_bridge = True  # type: ignore[attr-defined]
    RDSResponse.reboot_db_instance = reboot_db_instance  # type: ignore[method-assign]

    cluster_failover = rds_models.RDSBackend.failover_db_cluster

    def failover_db_cluster(self: Any, db_cluster_identifier: str, *a: Any, **kw: Any) -> Any:
        before = getattr(self.clusters.get(db_cluster_identifier), "writer", None)
        busy = getattr(self.clusters.get(db_cluster_identifier), "status", "") != "available"
        cluster = cluster_failover(self, db_cluster_identifier, *a, **kw)
        if not busy:  # a second request while failing over: moto's answer, nothing more
            with contextlib.suppress(Exception):  # the bridge never breaks moto's own answer
                bridge.cluster_failover(self, cluster, before)
        return cluster  # rendered after this returns: a bridged failover answers "failing-over"

    rds_models.RDSBackend.failover_db_cluster = failover_db_cluster  # type: ignore[method-assign]

    for name in ("authorize_security_group_ingress", "revoke_security_group_ingress"):
        original = getattr(SecurityGroupBackend, name)

        def wrapped(self: Any, *a: Any, _original: Any = original, **kw: Any) -> Any:
            out = _original(self, *a, **kw)
            try:
                bridge.sync_client_path()
            except Exception as exc:  # noqa: BLE001 - logged; the SG call itself succeeded
                log.warning("client-path sync failed: %s", exc)
            return out

        setattr(SecurityGroupBackend, name, wrapped)


def install_users(credentials: Path) -> None:
    """The IAM users of the owner's credentials file, with their policies and keys, in moto."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for profile, statement in LAB_USERS.items():
        key_id, secret = lab_credentials(credentials, profile)
        iam.create_user("us-east-1", profile)
        iam.put_user_policy(profile, "lab", json.dumps({"Version": "2012-10-17",
                                                        "Statement": [statement]}))
        key = iam.create_access_key(profile)
        iam.access_keys.pop(key.access_key_id, None)
        key.access_key_id, key.secret_access_key = key_id, secret
        iam.access_keys[key_id] = key


def enforce_auth() -> None:
    """moto's IAM authentication from the very first request (no unauthenticated grace calls).

    One fix on the way (measured, moto 5.2.5): to check a signature moto re-signs the request
    with ``data = body or parsed parameters``, so a body-less REST GET/DELETE with path
    parameters (Backup ``GetBackupPlan``: ``GET /backup/plans/{id}/``) hashes a non-empty
    payload and fails with SignatureDoesNotMatch. botocore signs such a request's empty body.
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequestBase

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    original = IAMRequestBase._create_aws_request
    if getattr(original, "pgproof_bridge", False):
        return

    def create_aws_request(self: Any) -> Any:
        if self._method in ("GET", "HEAD", "DELETE") and not self._body:
            saved, self._data = self._data, b""
            try:
                return original(self)
            finally:
                self._data = saved
        return original(self)

    create_aws_request.pgproof_bridge = True  # type: ignore[attr-defined]
    IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guard(app: Wsgi) -> Wsgi:
    """Refuse moto's control API (unauthenticated by design) except its static dashboard page."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = unquote(environ.get("PATH_INFO", "")).lower()
        host = str(environ.get("HTTP_HOST", "")).lower()
        if environ.get("REQUEST_METHOD") == "GET" and path == "/moto-api/":
            return app(environ, start_response)  # the static dashboard page: the health check
        if "moto-api" in path or host.startswith("motoapi."):
            return _forbidden(start_response, "the lab's AWS twin does not serve moto's control API")
        if not (environ.get("HTTP_AUTHORIZATION") or "x-amz-credential" in
                str(environ.get("QUERY_STRING", "")).lower()):  # moto would answer 500
            return _forbidden(start_response, "the lab's AWS twin serves signed requests only")
        return app(environ, start_response)

    return wrapped


def _forbidden(start_response: Callable[..., Any], why: str) -> list[bytes]:
    body = (why + "\n").encode()
    start_response("403 Forbidden", [("Content-Type", "text/plain"),
                                     ("Content-Length", str(len(body)))])
    return [body]


def serve(host: str, port: int) -> None:
    """moto_server's own app and request handler (as ``moto.server.main``), behind ``guard``."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(host, port, guard(DomainDispatcherApplication(create_backend_app)), threaded=True,
               request_handler=MotoRequestHandler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--credentials", type=Path, required=True,
                        help=f"the owner's 0600 credentials file ([{LAB_PROFILE}] and the backup "
                             "profile): only requests signed with its keys are served")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    credentials = args.credentials.resolve()
    bridge = Bridge(args.state_dir.resolve(), args.port, credentials)
    install(bridge)
    install_users(credentials)
    enforce_auth()
    # Build the bridge's clients now (~1 s on a loaded machine), not inside the first
    # security-group call: a partition's revoke answers only after the client path is cut.
    threading.Thread(target=lambda: [bridge._client(s, LAB_REGION) for s in ("rds", "ec2")],
                     daemon=True).start()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
