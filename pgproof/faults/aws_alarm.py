"""The alarm drill's changes to an AWS account, each with its undo, each recorded before it acts.

Three faults per alarm, nested in this order and undone in reverse:

1. ``alarm_drill_queue``: a temporary SQS queue whose policy lets only the
   alarm's topic send to it;
2. ``alarm_drill_subscription``: that queue subscribed to the topic (raw
   delivery off, so the SNS envelope and CloudWatch's JSON arrive as sent);
3. ``alarm_drill_state``: ``set_alarm_state(ALARM, "pgproof alarm drill")``.

The durable data holds what an undo needs without the runner (queue name, topic
and queue ARNs, the alarm's previous state, how to reach the account; never a
secret), so ``pgproof gameday recover`` can finish the job after a SIGKILL.
Every undo tolerates "already undone". An alarm is only set back when it still
carries the drill's reason: if CloudWatch re-evaluated it since, its real state
must not be overwritten.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from pgproof.faults.base import Undo, fault
from pgproof.target import Aws

DRILL_REASON = "pgproof alarm drill"
RESTORED_REASON = "pgproof alarm drill: restored to the state before the drill"
KINDS = ("alarm_drill_queue", "alarm_drill_subscription", "alarm_drill_state")
_GONE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound",
         "NotFoundException", "ResourceNotFound"}


@dataclass(frozen=True)
class AwsConn:
    """How to reach the account: kept in the durable record, so no secret goes in here."""

    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    credentials_file: str | None = None

    @classmethod
    def of(cls, aws: Aws) -> AwsConn:
        return cls(aws.region, aws.endpoint_url, aws.profile,
                   str(aws.credentials_file) if aws.credentials_file else None)

    def client(self, service: str) -> Any:
        from pgproof.probes.aws import session

        s = session(self.profile, self.region, Path(self.credentials_file) if self.credentials_file else None)
        cfg = Config(connect_timeout=5, read_timeout=40, retries={"max_attempts": 6, "mode": "adaptive"})
        kw: dict[str, Any] = {"region_name": self.region, "config": cfg}
        if self.endpoint_url:
            kw["endpoint_url"] = self.endpoint_url
        return s.client(service, **kw)


def gone(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _GONE


def queue_policy(queue_arn: str, topic_arn: str) -> str:
    """Only this topic may send to the queue (what real SQS needs before SNS can deliver)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "pgproof-alarm-drill", "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})


# -- the undos (also what recover runs) ---------------------------------------------------------
def delete_queue(conn: AwsConn, name: str) -> str:
    sqs = conn.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.delete_queue(QueueUrl=url)
    except ClientError as exc:
        if gone(exc):
            return f"queue {name} already gone"
        raise
    return f"queue {name} deleted"


def unsubscribe(conn: AwsConn, topic_arn: str, queue_arn: str) -> str:
    """Remove every subscription of ``queue_arn`` to ``topic_arn`` (the ARN may be unknown yet)."""
    sns = conn.client("sns")
    try:
        subs = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            subs += page.get("Subscriptions", [])
    except ClientError as exc:
        if gone(exc):
            return f"topic {topic_arn} is gone, and its subscriptions with it"
        raise
    mine = [s["SubscriptionArn"] for s in subs
            if s.get("Endpoint") == queue_arn and s.get("SubscriptionArn", "").startswith("arn:")]
    for arn in mine:
        with contextlib.suppress(ClientError):  # removed meanwhile: that is the goal
            sns.unsubscribe(SubscriptionArn=arn)
    return (f"{len(mine)} subscription(s) of {queue_arn.split(':')[-1]} to "
            f"{topic_arn.split(':')[-1]} removed")


def restore_state(conn: AwsConn, alarm: str, previous: str) -> str:
    cw = conn.client("cloudwatch")
    found = cw.describe_alarms(AlarmNames=[alarm]).get("MetricAlarms", [])
    if not found:
        return f"alarm {alarm} no longer exists; nothing to restore"
    now = found[0]
    if now.get("StateReason") != DRILL_REASON:
        return (f"alarm {alarm} is {now.get('StateValue')} by CloudWatch's own evaluation since the "
                "drill; left as is")
    cw.set_alarm_state(AlarmName=alarm, StateValue=previous, StateReason=RESTORED_REASON)
    return f"alarm {alarm} set back to {previous}"


def undo_recorded(kind: str, data: dict[str, Any]) -> str:
    """Undo one durably recorded drill fault (``pgproof gameday recover``)."""
    conn = AwsConn(**data["conn"])
    if kind == "alarm_drill_queue":
        return delete_queue(conn, data["queue_name"])
    if kind == "alarm_drill_subscription":
        return unsubscribe(conn, data["topic_arn"], data["queue_arn"])
    if kind == "alarm_drill_state":
        return restore_state(conn, data["alarm"], data["previous_state"])
    raise ValueError(f"not an alarm-drill fault: {kind!r}")


# -- the faults ---------------------------------------------------------------------------------
@contextlib.contextmanager
def temporary_queue(conn: AwsConn, name: str, topic_arn: str,
                    undo_stack: contextlib.ExitStack | None = None) -> Iterator[dict[str, str]]:
    """Yield {"url", "arn"} of a new queue only ``topic_arn`` may send to; deleted on exit."""
    out: dict[str, str] = {}
    sqs = conn.client("sqs")

    def act() -> None:
        out["url"] = sqs.create_queue(QueueName=name)["QueueUrl"]
        out["arn"] = sqs.get_queue_attributes(QueueUrl=out["url"],
                                              AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=out["url"],
                                 Attributes={"Policy": queue_policy(out["arn"], topic_arn)})

    undo = Undo(lambda: delete_queue(conn, name), f"temporary SQS queue {name} exists",
                f"aws sqs delete-queue --queue-url $(aws sqs get-queue-url --queue-name {name} "
                "--query QueueUrl --output text)")
    with fault(undo, act, undo_stack,
               durable=("alarm_drill_queue", {"conn": asdict(conn), "queue_name": name})):
        yield out


@contextlib.contextmanager
def subscription(conn: AwsConn, topic_arn: str, queue_arn: str,
                 undo_stack: contextlib.ExitStack | None = None) -> Iterator[dict[str, str]]:
    """Subscribe the queue to the topic (raw delivery off); yield {"arn"}; unsubscribed on exit."""
    out: dict[str, str] = {}

    def act() -> None:
        out["arn"] = conn.client("sns").subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True,
            Attributes={"RawMessageDelivery": "false"})["SubscriptionArn"]

    topic = topic_arn.split(":")[-1]
    undo = Undo(lambda: unsubscribe(conn, topic_arn, queue_arn),
                f"temporary subscription of {queue_arn.split(':')[-1]} to topic {topic}",
                f"aws sns list-subscriptions-by-topic --topic-arn {topic_arn}, then "
                f"aws sns unsubscribe the one whose endpoint is {queue_arn}")
    with fault(undo, act, undo_stack, durable=("alarm_drill_subscription", {
            "conn": asdict(conn), "topic_arn": topic_arn, "queue_arn": queue_arn})):
        yield out


@contextlib.contextmanager
def forced_alarm(conn: AwsConn, alarm: str, previous: str,
                 undo_stack: contextlib.ExitStack | None = None) -> Iterator[None]:
    """Force ``alarm`` into ALARM (its actions page); set back to ``previous`` on exit."""
    cw = conn.client("cloudwatch")
    undo = Undo(lambda: restore_state(conn, alarm, previous),
                f"alarm {alarm} forced into ALARM by the drill",
                f"aws cloudwatch set-alarm-state --alarm-name {alarm} --state-value {previous} "
                "--state-reason 'restored after pgproof alarm drill'")
    with fault(undo, lambda: cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM",
                                                StateReason=DRILL_REASON), undo_stack,
               durable=("alarm_drill_state", {"conn": asdict(conn), "alarm": alarm,
                                               "previous_state": previous})):
        yield
