"""status lists the alarms that have no queue to recognise them by: the function's errors, SES's
reputation and rejected mail are found through the alarms topic they notify."""

from __future__ import annotations

import boto3

from tests.support.relayctl import Relay

QUEUELESS = {"FunctionErrorsAlarm", "BounceRateAlarm", "ComplaintRateAlarm", "RejectedMailAlarm"}


def test_alarms_notifying_the_alarms_topic_are_listed_with_the_queue_alarms(relay: Relay) -> None:
    names = {a.logical_id: a.name for a in relay.blueprint.alarms}
    assert set(names) >= QUEUELESS
    cloudwatch = boto3.client("cloudwatch", region_name=relay.region)
    cloudwatch.set_alarm_state(
        AlarmName=names["BounceRateAlarm"], StateValue="ALARM", StateReason="0.06 > 0.05"
    )

    report = relay.run_json("status", *relay.resource_options())

    states = {a["name"]: a for a in report["alarms"]}
    assert set(states) == set(names.values())
    assert states[names["BounceRateAlarm"]]["state"] == "ALARM"
    assert states[names["BounceRateAlarm"]]["metric"] == "Reputation.BounceRate"
    assert states[names["BounceRateAlarm"]]["queue"] is None
    code, out, _ = relay.run("status", *relay.resource_options())
    assert code == 0
    assert f"{names['RejectedMailAlarm']} (Mails)" in out


def test_without_the_alarms_topic_only_the_queue_alarms_are_known(relay: Relay) -> None:
    options = relay.resource_options()
    at = options.index("--alarms-topic")
    del options[at : at + 2]

    report = relay.run_json("status", *options)

    listed = {a["name"] for a in report["alarms"]}
    queue_alarms = {a.name for a in relay.blueprint.alarms if a.namespace == "AWS/SQS"}
    assert listed == queue_alarms
