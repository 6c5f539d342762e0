"""The operability part of the template: the alarms added for the functions, SES's reputation, rejected
mail and the download links, and a dashboard that names only metrics that exist (ours from
app/metrics.py and app/download.py, or AWS's own)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app import download, metrics
from app.outcomes import Outcome, Reason
from tests.support.cloudformation import Evaluator, image_functions, ref_name, resources_of, the_function

pytestmark = pytest.mark.unit

# What AWS publishes, by namespace: metric names and the one dimension set the dashboard may use.
# SQS: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
# Lambda: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
# SES (account-wide, no dimension): https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-cloudwatch.html
AWS_METRICS: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "AWS/SQS": (
        {
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
        },
        ("QueueName",),
    ),
    "AWS/Lambda": (
        {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"},
        ("FunctionName",),
    ),
    "AWS/DynamoDB": ({"ThrottledRequests", "SystemErrors", "ConsumedWriteCapacityUnits"}, ("TableName",)),
    "AWS/SES": (
        {
            "Send",
            "Delivery",
            "Bounce",
            "Complaint",
            "Reject",
            "Reputation.BounceRate",
            "Reputation.ComplaintRate",
        },
        (),
    ),
}
# The outcomes a mail's log line can carry (records that are not mails are logged without metrics).
MAIL_OUTCOMES = {str(Outcome.DISTRIBUTED), str(Outcome.FALLBACK), str(Outcome.RETRY)}
REASONS = {str(r) for r in Reason} | {metrics.NO_REASON}
# The download function's one metric and its one dimension (app/download.py, log_record).
DOWNLOAD_ANSWERS = {str(a) for a in download.Answer}


def _namespace(cfn: dict[str, Any]) -> str:
    """The function's METRICS_NAMESPACE as deployed (the example stack)."""
    _, function = the_function(cfn)
    return str(Evaluator(cfn)(function["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"]))


def _alarm(cfn: dict[str, Any], logical_id: str) -> dict[str, Any]:
    alarm = cfn["Resources"][logical_id]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    return dict(alarm["Properties"])


@pytest.mark.parametrize(
    ("logical_id", "namespace", "metric", "statistic", "period", "default"),
    [
        ("FunctionErrorsAlarm", "AWS/Lambda", "Errors", "Sum", 300, 0),
        ("DownloadErrorsAlarm", "AWS/Lambda", "Errors", "Sum", 300, 0),
        ("AlarmClockErrorsAlarm", "AWS/Lambda", "Errors", "Sum", 300, 0),
        ("BounceRateAlarm", "AWS/SES", "Reputation.BounceRate", "Maximum", 3600, 0.05),
        ("ComplaintRateAlarm", "AWS/SES", "Reputation.ComplaintRate", "Maximum", 3600, 0.001),
        ("RejectedMailAlarm", None, "Mails", "Sum", 900, 0),
        ("DownloadThrottlesAlarm", "AWS/Lambda", "Throttles", "Sum", 300, 0),
        ("DownloadUnavailableAlarm", None, "Downloads", "Sum", 300, 0),
    ],
)
def test_operability_alarms_watch_the_agreed_metric_and_notify_the_alarms_topic(
    cfn: dict[str, Any],
    logical_id: str,
    namespace: str | None,
    metric: str,
    statistic: str,
    period: int,
    default: float,
) -> None:
    props = _alarm(cfn, logical_id)
    assert Evaluator(cfn)(props["Namespace"]) == (namespace or _namespace(cfn))
    assert (props["MetricName"], props["Statistic"], props["Period"]) == (metric, statistic, period)
    assert props["EvaluationPeriods"] == 1
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["TreatMissingData"] == "notBreaching"
    assert cfn["Parameters"][ref_name(props["Threshold"])]["Default"] == default
    for actions in (props["AlarmActions"], props["OKActions"]):
        assert [ref_name(a) for a in actions] == ["AlarmsTopic"]
    dimensions = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
    expected_names = {
        "AWS/Lambda": {"FunctionName"},
        "AWS/SES": set(),  # the account's reputation has no dimension
        None: {"Outcome"} if metric == "Downloads" else {"Outcome", "Reason"},
    }[namespace]
    assert set(dimensions) == expected_names


def test_the_function_errors_alarm_watches_this_function(cfn: dict[str, Any]) -> None:
    function_id, _ = the_function(cfn)
    (dimension,) = _alarm(cfn, "FunctionErrorsAlarm")["Dimensions"]
    assert ref_name(dimension["Value"]) == function_id


def test_every_image_function_has_an_errors_alarm_existing_whenever_it_does(
    source: dict[str, Any], cfn: dict[str, Any]
) -> None:
    """A crash of any function (the download function's 502, a failing alarm clock) reaches the alarms
    topic, not only the dashboard; the alarm shares its function's Condition, so neither is left alone."""
    functions = image_functions(source)
    assert set(functions) == {"RelayFunction", "DownloadFunction", "AlarmClockFunction"}
    watched: dict[str, str] = {}
    for logical_id, alarm in source["Resources"].items():
        props = alarm["Properties"]
        if alarm["Type"] != "AWS::CloudWatch::Alarm" or props.get("MetricName") != "Errors":
            continue
        (dimension,) = props["Dimensions"]
        assert dimension["Name"] == "FunctionName"
        function_id = ref_name(dimension["Value"])
        assert function_id not in watched, (logical_id, watched)
        watched[function_id] = logical_id
        assert alarm.get("Condition") == functions[function_id].get("Condition"), logical_id
        assert ref_name(props["Threshold"]) == "FunctionErrorsAlarmThreshold"
    assert set(watched) == set(functions)
    assert watched["DownloadFunction"] == "DownloadErrorsAlarm"
    assert watched["AlarmClockFunction"] == "AlarmClockErrorsAlarm"
    for logical_id in watched.values():
        assert cfn["Resources"][logical_id]["Type"] == "AWS::CloudWatch::Alarm"


def test_the_download_alarms_watch_the_download_function(cfn: dict[str, Any]) -> None:
    (throttles,) = _alarm(cfn, "DownloadThrottlesAlarm")["Dimensions"]
    assert ref_name(throttles["Value"]) == "DownloadFunction"
    (unavailable,) = _alarm(cfn, "DownloadUnavailableAlarm")["Dimensions"]
    # The 503 the function answers itself ("Try again"): not a Lambda error, only this series shows it.
    assert (unavailable["Name"], unavailable["Value"]) == ("Outcome", str(download.Answer.UNAVAILABLE))


def test_the_rejected_alarm_watches_a_series_the_function_writes(cfn: dict[str, Any]) -> None:
    props = _alarm(cfn, "RejectedMailAlarm")
    dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    assert dimensions == {"Outcome": str(Outcome.FALLBACK), "Reason": str(Reason.REJECTED)}
    assert tuple(dimensions) in metrics.DIMENSION_SETS
    assert props["MetricName"] in metrics.METRIC_NAMES
    assert _namespace(cfn) == "IoTMailRelay/iot-mail-relay"  # IoTMailRelay/<stack name>


def _dashboard(cfn: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's body as CloudFormation would hand it to CloudWatch for the example stack."""
    (dashboard,) = resources_of(cfn, "AWS::CloudWatch::Dashboard").values()
    body: dict[str, Any] = json.loads(Evaluator(cfn)(dashboard["Properties"]["DashboardBody"]))
    return body


def _rows(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) of every metric the dashboard draws."""
    rows = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            names = row[:-1] if options else row
            namespace, metric, *pairs = names
            assert len(pairs) % 2 == 0, row
            rows.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
    return rows


def test_every_metric_on_the_dashboard_is_emitted_or_published_by_aws(cfn: dict[str, Any]) -> None:
    evaluate = Evaluator(cfn)
    own = _namespace(cfn)
    queues = {f"<{lid}.QueueName>" for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    functions = {evaluate({"Ref": f}) for f in ("RelayFunction", "DownloadFunction", "AlarmClockFunction")}
    tables = {evaluate({"Ref": "IncidentsTable"})}
    rows = _rows(_dashboard(cfn))
    assert rows
    for namespace, metric, dimensions, _ in rows:
        if namespace == own and metric == "Downloads":
            assert tuple(dimensions) == ("Outcome",), dimensions
            assert dimensions["Outcome"] in DOWNLOAD_ANSWERS
            continue
        if namespace == own and metric in metrics.FOLDING_METRICS:
            assert dimensions == {}, (metric, dimensions)  # written without dimensions (app/metrics.py)
            continue
        if namespace == own:
            assert metric in metrics.METRIC_NAMES, metric
            assert tuple(dimensions) in metrics.DIMENSION_SETS, dimensions
            assert dimensions["Outcome"] in MAIL_OUTCOMES
            assert dimensions.get("Reason", metrics.NO_REASON) in REASONS
            continue
        assert namespace in AWS_METRICS, namespace
        names, dimension_names = AWS_METRICS[namespace]
        assert metric in names, (namespace, metric)
        assert tuple(dimensions) == dimension_names, (namespace, metric, dimensions)
        if "QueueName" in dimensions:
            assert dimensions["QueueName"] in queues
        if "FunctionName" in dimensions:
            assert dimensions["FunctionName"] in functions
        if "TableName" in dimensions:
            assert dimensions["TableName"] in tables


def test_the_dashboard_shows_what_an_operator_is_asked(cfn: dict[str, Any]) -> None:
    body = _dashboard(cfn)
    rows = _rows(body)
    own = _namespace(cfn)
    drawn = {(ns, m) for ns, m, _, _ in rows}
    assert {
        (own, "Mails"),
        (own, "RelayLatency"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("AWS/SES", "Send"),
        ("AWS/SES", "Bounce"),
        ("AWS/SES", "Complaint"),
        ("AWS/SES", "Reputation.BounceRate"),
        ("AWS/SES", "Reputation.ComplaintRate"),
    } <= drawn
    reasons = {d["Reason"] for ns, m, d, _ in rows if ns == own and m == "Mails" and "Reason" in d}
    assert reasons == {str(r) for r in Reason}  # every fallback reason has its line
    answers = {d["Outcome"] for ns, m, d, _ in rows if ns == own and m == "Downloads"}
    assert answers == DOWNLOAD_ANSWERS  # every answer a link can get has its line
    download_function = {m for ns, m, d, _ in rows if d.get("FunctionName") == "<DownloadFunction>"}
    assert {"Throttles", "Errors", "ConcurrentExecutions"} <= download_function
    latency = {o.get("stat") for ns, m, _, o in rows if m == "RelayLatency"}
    assert {"p50", "p95", "p99"} <= latency
    queues = {d["QueueName"] for ns, _, d, _ in rows if ns == "AWS/SQS"}
    assert queues == {"<InboundQueue.QueueName>", "<DeadLetterQueue.QueueName>"}
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    alarms = {lid for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarm_widget["properties"]["alarms"]) == {f"<{lid}.Arn>" for lid in alarms}


def test_the_dashboard_url_is_an_output(cfn: dict[str, Any]) -> None:
    url = Evaluator(cfn)(cfn["Outputs"]["DashboardUrl"]["Value"])
    name = Evaluator(cfn)(cfn["Resources"]["RelayDashboard"]["Properties"]["DashboardName"])
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#dashboards:name=<RelayDashboard>"  # Ref of a dashboard is its name
    )
    # Dashboards are global to the account: the region keeps two regions' stacks of one name apart.
    assert name == "iot-mail-relay-eu-west-1"
