"""The lab's moto server, with the one CloudWatch behaviour moto 5.2.5 lacks: alarm actions.

Real CloudWatch publishes to an alarm's SNS actions when its state changes
(ALARM -> ``AlarmActions``, OK -> ``OKActions``, INSUFFICIENT_DATA ->
``InsufficientDataActions``), only when ``ActionsEnabled`` is on and only on a
transition. moto records the new state and publishes nothing, so an alarm drill
against the twin could never see a page. This entry point wraps
``CloudWatchBackend.set_alarm_state`` to publish, in-process, a notification
shaped like CloudWatch's to each SNS action; moto's SNS then delivers it to
subscribed SQS queues itself. Nothing else about moto changes.

What the twin proves with it: the API calls, the alarm -> topic -> subscriber
pipeline and the subscriptions. What only real AWS proves: delivery latency and
delivery to email, Slack or PagerDuty endpoints (and topic/queue policies, which
moto does not enforce).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

ACTIONS = {"ALARM": "alarm_actions", "OK": "ok_actions", "INSUFFICIENT_DATA": "insufficient_data_actions"}


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
    for arn in getattr(alarm, ACTIONS.get(alarm.state_value, ""), None) or []:
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


def install() -> None:
    """Wrap moto's set_alarm_state (idempotent)."""
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
                print(f"pgproof bridge: {line}", file=sys.stderr, flush=True)

    set_alarm_state.pgproof_bridge = True  # type: ignore[attr-defined]
    CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
