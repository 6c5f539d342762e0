"""The benchmark harness on a tiny mail, so it cannot rot between the runs that publish figures."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from bench import cost, mails, previews, run, storm

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.unit
def test_mail_has_a_recipient_code_and_76_char_crlf_base64_of_random_bytes() -> None:
    case = mails.Case("test", (100_000, 3))
    mail = mails.build(case, tag="t1")

    message = message_from_bytes(mail.raw, policy=policy.default)
    parts = list(message.iter_attachments())
    assert [part.get_filename() for part in parts] == list(mail.filenames)
    assert [len(part.get_content()) for part in parts] == [100_000, 3]
    body = message.get_body(("plain",))
    assert body is not None
    assert "Email_Rxers_Code:[ops@example.com]:Email_Rxers_Code:" in body.get_content()
    encoded = mail.raw.split(b"\r\n\r\n")[4].split(b"\r\n--")[0]
    lines = encoded.split(b"\r\n")
    assert {len(line) for line in lines[:-1]} == {76}
    assert b"\n" not in mail.raw.replace(b"\r\n", b"")
    assert len(set(base64.b64decode(b"".join(lines)))) > 250  # random bytes, not a compressible filler


@pytest.mark.unit
def test_largest_mail_is_just_under_the_ses_limit() -> None:
    mail = mails.build(mails.largest_mail())
    assert mails.SES_MAX_MAIL_BYTES - 8 * mails.KB < len(mail.raw) <= mails.SES_MAX_MAIL_BYTES


@pytest.mark.unit
def test_sizes_option() -> None:
    cases = mails.cases_from("64k,10,max,many")
    assert [c.name for c in cases] == ["64KB", "10MB", "40MB-mail", "50x100KB"]
    assert [c.time_target for c in cases] == [False, True, False, False]
    assert [c.memory_target for c in cases] == [False, True, True, False]
    assert len(cases[3].attachment_sizes) == 50
    with pytest.raises(ValueError, match="not a size"):
        mails.cases_from("ten")


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One full harness run: moto server, both workloads once on a 64 KB mail, one cold import."""
    output = tmp_path_factory.mktemp("bench") / "latest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [sys.executable, "-m", "bench", "--sizes", "64k", "--repeat", "1", "--import-runs", "1",
               "--workloads", "limit,function"]  # fmt: skip
    done = subprocess.run(
        [*command, "--no-chart", "--output", str(output)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(output.read_text())


@pytest.mark.integration
def test_harness_measures_both_workloads_on_a_tiny_mail(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, report = smoke
    [case] = report["cases"]
    assert case["case"] == "64KB"
    assert case["attachment_bytes"] == 64 * 1024
    assert 64 * 1024 < case["mail_bytes"] < 100 * 1024
    for kind in ("limit", "function"):
        figures = case[kind]
        assert len(figures["runs"]) == 1
        assert figures["wall_s"] > 0
        assert figures["cpu_s"] > 0
        assert figures["peak_bytes"] >= 0
        assert figures["memory_multiple"] == figures["peak_bytes"] / case["mail_bytes"]
        assert figures["baseline_rss_bytes"] > 20 * 2**20  # measured after imports, not in a bare interpreter
    assert case["time_ratio"] == case["function"]["wall_s"] / case["limit"]["wall_s"]
    assert 0 < report["cold_import_s"]["median"] < 30
    assert "64KB" in done.stdout
    assert "cold import of app.handler" in done.stdout
    cold = report["cold_start"]
    assert len(cold["first_mail_s"]["runs"]) == len(cold["floor_s"]["runs"]) == 1
    assert 0 < cold["import_s"]["median"] < cold["first_mail_s"]["median"] < 30
    assert 0 < cold["floor_s"]["median"] < 30
    assert cold["ratio"] == cold["first_mail_s"]["median"] / cold["floor_s"]["median"]
    assert "cold process, first 4 KB mail" in done.stdout


@pytest.mark.integration
def test_harness_times_previews_against_the_baseline_and_a_camera_mail_both_ways(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, report = smoke
    figures = report["previews"]
    assert set(figures["making"]) == {"1080p", "4K"}
    for entry in figures["making"].values():
        assert len(entry["ours_s"]["runs"]) == len(entry["baseline_s"]["runs"]) == 3
        assert entry["ratio"] == entry["ours_s"]["median"] / entry["baseline_s"]["median"]
        assert 0 < entry["preview_bytes"]["ours"] <= 60 * 1024
    assert figures["making"]["4K"]["source_bytes"] > 1024 * 1024  # a camera's 4K still, not a toy
    relay = figures["relay_4k"]
    assert len(relay["on_s"]["runs"]) == len(relay["off_s"]["runs"]) == 1
    assert relay["ratio"] == relay["on_s"]["median"] / relay["off_s"]["median"]
    assert "previews: app.previews.make against draft()+thumbnail()" in done.stdout
    assert "relay, 4K camera mail" in done.stdout


@pytest.mark.unit
def test_the_camera_mail_carries_the_snapshot_and_a_recipient_code() -> None:
    jpeg = previews.camera_jpeg((320, 240))
    raw, _ = previews.camera_mail(jpeg)
    message = message_from_bytes(raw, policy=policy.default)
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "image/jpeg"
    assert part.get_content() == jpeg
    body = message.get_body(("plain",))
    assert body is not None
    assert "Email_Rxers_Code:[ops@example.com]:Email_Rxers_Code:" in body.get_content()


@pytest.mark.unit
def test_preview_verdicts_hold_each_size_to_the_ratio() -> None:
    figures = {"making": {"1080p": {"ratio": 1.19}, "4K": {"ratio": 1.21}}}
    assert previews.verdicts(figures) == [
        ("preview of a 1080p JPEG 1.19x draft()+thumbnail() <= 1.2x", True),
        ("preview of a 4K JPEG 1.21x draft()+thumbnail() <= 1.2x", False),
    ]


@pytest.mark.integration
def test_chart_from_the_smoke_results(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="installed by `make bench` (requirements-bench.txt)")
    from bench import chart

    target = tmp_path / "chart.png"
    chart.draw(smoke[1], target)
    assert target.read_bytes().startswith(b"\x89PNG")


@pytest.mark.integration
def test_a_failing_workload_stops_the_benchmark() -> None:
    with pytest.raises(run.BenchError, match="limit workload failed"):
        run.run_child(
            "limit", {"warmup_key": "missing"}, {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        )


@pytest.mark.unit
def test_verdicts_judge_only_the_targets_a_case_carries() -> None:
    report = {
        "cases": [
            {"case": "1MB", "time_target": False, "memory_target": False, "time_ratio": 9.0,
             "function": {"memory_multiple": 9.0}},
            {"case": "10MB", "time_target": True, "memory_target": True, "time_ratio": 1.4,
             "function": {"memory_multiple": 3.2}},
        ],
        "cold_import_s": {"median": 0.4},
        "cold_start": {"ratio": 1.3},
    }  # fmt: skip
    assert run.verdicts(report) == [
        ("10MB: time 1.40x <= 1.5x", True),
        ("10MB: memory 3.20x <= 3x", False),
        ("cold import 0.400 s <= 0.5 s", True),
        ("cold first mail 1.30x the dependency floor <= 1.2x", False),
    ]


STORM_HOURS = 2


def folded_sends(minutes: int, after: int = 10, cap: int = 240, quiet: int = 30) -> list[int]:
    """When a storm of one alarm a minute reaches its recipients with folding on, by the README's rules
    (template defaults): the first mail at once; a digest `after` minutes later and then at doubling
    intervals up to `cap`, each if repeats arrived since the last (a tick comes before the mail of its
    minute); a last digest when the alarm has been quiet for `quiet` minutes, if repeats are unlisted."""
    last, closes = minutes - 1, minutes - 1 + quiet
    sends, listed, due, interval = [0], 0, after, after
    while due < closes:
        if min(due - 1, last) > listed:
            sends.append(due)
            listed = min(due - 1, last)
        interval = min(2 * interval, cap)
        due += interval
    return [*sends, closes] if last > listed else sends


@pytest.mark.unit
def test_the_folding_schedule_of_a_day_is_the_acceptance_tests() -> None:
    assert folded_sends(24 * 60) == [0, 10, 30, 70, 150, 310, 550, 790, 1030, 1270, 1469]
    assert folded_sends(60) == [0, 10, 30, 70]  # the 70-minute digest listed the last repeats


@pytest.fixture(scope="module")
def storm_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], dict[str, Any]]:
    """The storm alone, 2 simulated hours, priced with a table of other prices than the project's."""
    folder = tmp_path_factory.mktemp("storm")
    prices = cost.load_prices()
    prices["prices"]["ses_outbound_recipient"]["usd"] = 7.0  # per 1000: not the real price
    (folder / "prices.json").write_text(json.dumps(prices))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [sys.executable, "-m", "bench", "--workloads", "storm", "--storm-hours", str(STORM_HOURS),
               "--prices", str(folder / "prices.json"), "--output", str(folder / "latest.json")]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads((folder / "latest.json").read_text())["storm"], prices


@pytest.mark.integration
def test_the_storm_sends_what_folding_should_and_every_mail_without_it(
    storm_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], dict[str, Any]],
) -> None:
    done, figures, _ = storm_run
    minutes = STORM_HOURS * 60
    on, off = figures["settings"]["on"], figures["settings"]["off"]
    assert on["sends"]["at_minutes"] == folded_sends(minutes)
    assert off["sends"]["count"] == minutes
    assert min(on["sends"]["bytes"], off["sends"]["bytes"]) > 0
    assert off["sends"]["at_minutes"] == list(range(storm.LISTED_SENDS))
    assert on["per_recipient"] == dict.fromkeys(storm.RECIPIENTS, len(folded_sends(minutes)))
    assert on["listed_in_digests"] == [9, 20, 40, 50]  # with the first mail: all 120, each once
    assert on["quantities"]["ses_outbound_recipient"] == 3 * len(folded_sends(minutes))
    assert off["per_recipient"] == dict.fromkeys(storm.RECIPIENTS, minutes)
    assert off["listed_in_digests"] == []
    assert off["quantities"]["ses_outbound_recipient"] == 3 * minutes
    for entry in (on, off):
        assert entry["mails"] == entry["quantities"]["ses_inbound_mail"] == minutes
        assert entry["retried_attempts"] == 0
        invocations = entry["invocations"]
        assert entry["quantities"]["lambda_request"] == sum(invocations.values())
        assert entry["quantities"]["xray_trace"] == sum(invocations.values())
        assert entry["quantities"]["lambda_gb_second"] > 0
    # the clock sweeps every minute until the alarm closed itself; off, its schedule is disabled
    assert on["invocations"]["clock"] == minutes + 30 + storm.TAIL_MINUTES
    assert off["invocations"]["clock"] == 0
    assert on["invocations"]["relay ticks"] == len(folded_sends(minutes)) - 1
    assert on["quantities"]["dynamodb_wru"] > 0
    assert "dynamodb_wru" not in off["quantities"]
    assert f"one alarm a minute for {STORM_HOURS} h to 3 recipients" in done.stdout


@pytest.mark.integration
def test_the_storm_is_priced_with_the_table_it_was_given(
    storm_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], dict[str, Any]],
) -> None:
    _, figures, prices = storm_run
    for entry in figures["settings"].values():
        lines = {line["price"]: line for line in entry["cost"]["lines"]}
        assert set(lines) == set(prices["prices"])
        for name, line in lines.items():
            price = prices["prices"][name]
            assert line["quantity"] == entry["quantities"].get(name, 0)
            assert line["usd"] == pytest.approx(line["quantity"] * price["usd"] / price["per"])
        assert lines["ses_outbound_recipient"]["usd"] == pytest.approx(
            entry["quantities"]["ses_outbound_recipient"] * 7.0 / 1000
        )
        assert entry["cost"]["total_usd"] == pytest.approx(sum(line["usd"] for line in lines.values()))
    on, off = (figures["settings"][k]["cost"]["total_usd"] for k in ("on", "off"))
    assert figures["cost_ratio_off_to_on"] == pytest.approx(off / on)


@pytest.mark.unit
def test_a_storm_only_run_keeps_the_mails_figures_of_the_results_file(tmp_path: Path) -> None:
    previous = {"generated_at": "2026-11-29T04:15:35+00:00", "repeat": 5, "cases": [{"case": "1MB"}],
                "storm": {"hours": 24}}  # fmt: skip
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(previous))
    report = {"generated_at": "2026-12-04T16:00:00+00:00", "storm": {"hours": 2}}
    written = run.carry_over(report, path)
    assert written["storm"] == {"hours": 2}
    assert written["cases"] == [{"case": "1MB"}]
    assert written["repeat"] == 5
    assert written["carried_over"] == {"repeat": previous["generated_at"], "cases": previous["generated_at"]}
    assert run.carry_over(report, tmp_path / "absent.json") == report
