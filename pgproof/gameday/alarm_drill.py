"""``pgproof gameday alarm-drill``: prove each MON-1 alarm reaches a subscriber (MON-4).

MON-1 reads the configuration: an alarm, an action, a topic with a subscriber.
Only forcing the alarm shows the page leaves CloudWatch. Per alarm: subscribe a
temporary SQS queue to its action topic, ``set_alarm_state`` it into ALARM, long-
poll the queue for CloudWatch's notification (budget
``thresholds.alarm_delivery_budget_s``), then restore the state and remove the
subscription and queue. This is no database failover, so it has its own small
runner; it shares the durable fault record (``gameday recover`` undoes a killed
drill), the journal, the report writers and history with the other game days.
On a real account the alarms' other subscribers ARE paged: that is the drill.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgproof.controls import title
from pgproof.errors import UserError
from pgproof.faults import aws_alarm, record
from pgproof.faults.aws_alarm import AwsConn
from pgproof.faults.base import FaultUndoError
from pgproof.gameday.journal import Journal
from pgproof.gameday.safety import ChaosRefused, check_policy, signal_name, sigterm_unwinds
from pgproof.report import results as res
from pgproof.target import Target
from pgproof.verdict import Unreachable

NAME = "alarm-drill"
CONTROLS = ("MON-4",)
DESCRIPTION = ("force each MON-1 alarm into ALARM and wait for its notification in a temporary "
               "SQS subscriber of the alarm's SNS topic")
TWIN_PROVES = ("an AWS emulator (endpoint_url set): this proves the API calls, the alarm -> topic -> "
               "subscriber pipeline and the subscriptions; only real AWS proves the delivery "
               "latency, the email/Slack/PagerDuty endpoints and topic/queue policies")


def alarms_of(target: Target) -> list[dict[str, Any]]:
    """The target's MON-1 alarms as CloudWatch describes them (read-only)."""
    from pgproof.checks.aws_alarms import drill_alarms
    from pgproof.probes.aws import gather
    assert target.aws is not None
    try:
        inv = gather(target.aws)
    except Unreachable as exc:
        raise ChaosRefused(f"cannot list the alarms of target {target.name!r}: {exc}") from None
    return drill_alarms(inv, target.thresholds)


def select(found: list[dict[str, Any]], names: list[str] | None, target: str) -> list[dict[str, Any]]:
    if not names:
        return found
    known = {a["AlarmName"]: a for a in found}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"alarm {unknown[0]!r} is not one of target {target!r}'s MON-1 alarms "
                        f"(known: {', '.join(sorted(known)) or 'none'})")
    return [known[n] for n in names]


def plan(target: Target, alarms: list[dict[str, Any]], budget_s: float) -> list[str]:
    lines = [f"target {target.name}; scenario {NAME}: {DESCRIPTION}",
             "every subscriber of each alarm's topic is notified (ALARM, then OK): on a real "
             "account this pages the on-call"]
    for i, a in enumerate(alarms, 1):
        lines.append(f"{i}. {a['AlarmName']} (now {a.get('StateValue', '?')}): queue + subscription "
                     f"on {', '.join(_topics(a)) or 'NO SNS ACTION'}; ALARM; wait <= {budget_s:.0f} s; "
                     f"restore {a.get('StateValue', '?')}; unsubscribe; delete queue")
    return lines


def _topics(alarm: dict[str, Any]) -> list[str]:
    return [t for t in alarm.get("AlarmActions", []) if ":sns:" in t]


def run(target: Target, *, reports: Path = Path("reports"), alarms: list[str] | None = None,
        budget_s: float | None = None, i_mean_production: bool = False, dry_run: bool = False,
        echo: Callable[[str], None] = print) -> tuple[Journal, Path | None]:
    check_policy(target, i_mean_production)
    left = record.notice(target)
    if left:  # an orphan (or a run in progress) must be recovered first, even for a dry run
        raise ChaosRefused(left)
    if target.aws is None:
        raise ChaosRefused(f"target {target.name!r} has no [aws] section: the alarm drill needs "
                           "CloudWatch and SNS")
    budget = budget_s or target.thresholds.alarm_delivery_budget_s
    chosen = select(alarms_of(target), alarms, target.name)
    if not chosen:
        raise ChaosRefused(f"target {target.name!r} has no MON-1 alarm to drill (see MON-1)")
    if dry_run:
        for line in plan(target, chosen, budget):
            echo(line)
        return Journal(uuid.uuid4().hex[:12], target.name, NAME, DESCRIPTION, "aws", {},
                       verdict="dry-run"), None
    run_id = f"{NAME}-{uuid.uuid4().hex[:8]}"
    try:
        rec = record.FaultRecord.create(target, run_id, NAME, None)
    except record.RecordExists:
        raise ChaosRefused(f"another game day has claimed target {target.name!r}: "
                           f"{record.notice(target)}") from None
    try:
        out = res.run_dir(reports.resolve(), target.name, NAME)
    except BaseException:
        rec.delete()
        raise
    rec.data["run_dir"] = str(out)
    rec.save()
    j = Journal(run_id, target.name, NAME, DESCRIPTION, "aws",
                {"budget_s": budget, "alarms": ", ".join(a["AlarmName"] for a in chosen),
                 "region": target.aws.region}, echo=echo)
    j.versions = _versions()
    if target.aws.endpoint_url:  # the report says what a twin can and cannot prove
        j.measurements = {"twin": TWIN_PROVES}
        j.event("drill", "what this run proves", TWIN_PROVES)
    j.fault = {"name": "set_alarm_state ALARM", "description": DESCRIPTION, "injected_at": None,
               "undone_at": None, "undo_ok": None, "undo_error": None}
    j.save_stub(out, rec.delete)  # the stub a SIGKILLed drill leaves for `gameday recover`
    conn = AwsConn.of(target.aws)
    results: list[dict[str, Any]] = []
    j.measurements = {**(j.measurements or {}), "budget_s": budget, "alarms": results}
    j.steady_state_before = {"ok": True, "detail": "; ".join(
        f"{a['AlarmName']} {a.get('StateValue', '?')}" for a in chosen)}
    try:
        with sigterm_unwinds(), record.activate(rec):
            for i, alarm in enumerate(chosen):
                results.append(drill_one(conn, alarm, f"pgproof-drill-{run_id[-8:]}-{i}", budget, j, out))
                j.save(out)
    except FaultUndoError as exc:
        j.manual_fix, j.fault["undo_ok"], j.fault["undo_error"] = str(exc), False, str(exc)
        j.event("undo", "UNDO FAILED", str(exc))
    except KeyboardInterrupt as exc:
        j.interrupted = {"at": time.time(), "by": signal_name(exc),
                         "phase": j.events[-1]["phase"] if j.events else "start"}
        j.event("abort", "interrupted; every registered undo has run", type(exc).__name__)
        _finish(j, out, rec, conn, chosen, run_id)
        raise
    _finish(j, out, rec, conn, chosen, run_id)
    return j, out


def drill_one(conn: AwsConn, alarm: dict[str, Any], queue_name: str, budget_s: float,
              j: Journal, out: Path) -> dict[str, Any]:
    """One alarm: queue -> subscription -> ALARM -> wait -> (undo) restore, unsubscribe, delete."""
    name, previous = alarm["AlarmName"], alarm.get("StateValue") or "INSUFFICIENT_DATA"
    r: dict[str, Any] = {"alarm": name, "previous_state": previous, "topics": _topics(alarm),
                         "delivered_s": None, "detail": ""}
    if not r["topics"]:
        r["detail"] = "has no SNS alarm action: nothing can deliver"
    elif alarm.get("ActionsEnabled") is False:
        r["detail"] = "its actions are disabled: CloudWatch executes none"  # still drilled: proven
    if previous == "ALARM":
        r["detail"] = "already in ALARM (a live incident or a breaching alarm): not drilled"
        j.event("drill", f"{name}: skipped", r["detail"])
        return r
    if not r["topics"]:
        j.event("drill", f"{name}: not drilled", r["detail"])
        return r
    topic = r["topics"][0]
    try:
        with contextlib.ExitStack() as stack:
            q = stack.enter_context(aws_alarm.temporary_queue(conn, queue_name, topic))
            j.event("drill", f"{name}: temporary queue {queue_name}", q["arn"])
            sub = stack.enter_context(aws_alarm.subscription(conn, topic, q["arn"]))
            j.event("drill", f"{name}: subscribed to {topic.split(':')[-1]}", sub["arn"])
            forced_at = time.time()
            stack.enter_context(aws_alarm.forced_alarm(conn, name, previous))
            r["forced_at"] = forced_at
            if j.fault.get("injected_at") is None:
                j.fault["injected_at"] = forced_at
            j.event("fault", f"{name}: set to ALARM", f"was {previous}; waiting <= {budget_s:.0f} s")
            j.save(out)
            r["delivered_s"], seen = wait_delivery(conn, q["url"], name, forced_at, budget_s)
            r["other_messages"] = seen
            j.event("drill", f"{name}: " + (f"notification delivered in {r['delivered_s']:.2f} s"
                                            if r["delivered_s"] is not None
                                            else f"NOT delivered within {budget_s:.0f} s"))
    except FaultUndoError:
        raise
    except Exception as exc:  # noqa: BLE001 - a refused call is this alarm's finding
        r["detail"] = _why(exc, topic)
        j.event("drill", f"{name}: drill failed", r["detail"])
    j.fault["undone_at"] = j.event("undo", f"{name}: restored {previous}, subscription and queue removed")
    return r


def _why(exc: Exception, topic: str) -> str:
    if aws_alarm.gone(exc):
        return f"its action topic {topic.split(':')[-1]} does not exist ({exc})"
    return f"{type(exc).__name__}: {exc}"


def wait_delivery(conn: AwsConn, url: str, alarm: str, since: float,
                  budget_s: float) -> tuple[float | None, int]:
    """Seconds from set_alarm_state until this alarm's ALARM notification was received; None: none.

    Long polling returns as soon as a message lands, so the delay is the pipeline's,
    not a poll interval. Other messages (e.g. an earlier OK) are counted, not matched.
    """
    sqs = conn.client("sqs")
    other = 0
    while (left := since + budget_s - time.time()) > 0:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=max(1, min(20, int(left)))).get("Messages", [])
        now = time.time()
        for m in got:
            if is_alarm_notification(m.get("Body", ""), alarm):
                return now - since, other
            other += 1
    return None, other


def is_alarm_notification(body: str, alarm: str) -> bool:
    """An SNS envelope carrying CloudWatch's ALARM state change for ``alarm``."""
    try:
        env = json.loads(body)
        msg = json.loads(env["Message"]) if isinstance(env, dict) and "Message" in env else None
    except (ValueError, TypeError):
        return False
    return isinstance(msg, dict) and msg.get("AlarmName") == alarm and msg.get("NewStateValue") == "ALARM"


def judge(r: dict[str, Any], budget_s: float) -> dict[str, str]:
    """MON-4 for one alarm: delivered within the budget, or why not."""
    name, d = r["alarm"], r.get("delivered_s")
    if d is not None:
        ok, text = d <= budget_s, f"{name}: delivered in {d:.2f} s (budget {budget_s:.0f} s)"
    elif r.get("previous_state") == "ALARM":
        return {"id": "MON-4", "title": f"{title('MON-4')}: {name}", "verdict": "cannot-verify",
                "evidence": f"{name}: {r['detail']}"}
    else:
        ok = False
        text = f"{name}: " + (r["detail"] + "; " if r.get("detail") else "") + \
            f"not delivered within {budget_s:.0f} s; the spec wants every alarm to reach a subscriber (MON-4)"
    return {"id": "MON-4", "title": f"{title('MON-4')}: {name}", "verdict": "pass" if ok else "fail",
            "evidence": text}


def leftovers(conn: AwsConn, alarms: list[dict[str, Any]], run_id: str) -> tuple[bool, str]:
    """After the undo: no drill queue remains and no alarm still carries the drill's reason."""
    problems = []
    with contextlib.suppress(Exception):
        urls = conn.client("sqs").list_queues(QueueNamePrefix=f"pgproof-drill-{run_id[-8:]}-")
        problems += [f"queue {u.rsplit('/', 1)[-1]} left" for u in urls.get("QueueUrls", [])]
    names = [a["AlarmName"] for a in alarms]
    states = []
    try:
        for a in conn.client("cloudwatch").describe_alarms(AlarmNames=names).get("MetricAlarms", []):
            states.append(f"{a['AlarmName']} {a['StateValue']}")
            if a.get("StateReason") == aws_alarm.DRILL_REASON:
                problems.append(f"{a['AlarmName']} still forced into ALARM")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"alarms not readable: {exc}")
    return not problems, "; ".join(problems) or "no drill queue left; " + "; ".join(states)


def _finish(j: Journal, out: Path, rec: record.FaultRecord, conn: AwsConn,
            alarms: list[dict[str, Any]], run_id: str) -> None:
    budget = float(j.measurements.get("budget_s") or 0)
    done = j.measurements.get("alarms") or []
    if j.interrupted is None and j.fault.get("undo_ok") is not False:
        j.verdicts = [judge(r, budget) for r in done]
        j.fault["undo_ok"] = True
    ok, detail = leftovers(conn, alarms, run_id)
    j.steady_state_after = {"ok": ok, "detail": detail}
    j.event("steady-after", "drill left nothing behind" if ok else "LEFT BEHIND", detail)
    if not rec.close():
        j.event("undo", "fault record kept", f"{rec.path}: {rec.summary()}")
    kinds = {v["verdict"] for v in j.verdicts}
    j.verdict = ("error" if j.interrupted or j.manual_fix or not j.verdicts else
                 "fail" if "fail" in kinds else "pass" if kinds == {"pass"} else "cannot-verify")
    j.event("verify", f"verdict {j.verdict}", f"{sum(r.get('delivered_s') is not None for r in done)}"
            f"/{len(alarms)} alarms delivered")
    j.ended_at = time.time()
    j.save(out)
    with contextlib.suppress(Exception):
        from pgproof.report.gameday import write_reports

        write_reports(j.to_dict(), out)
    res.point_latest(out.parent, out)
    from pgproof.report import index

    index.after_run(out, "gameday", j.to_dict())


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("pgproof", "boto3")}
