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

from bench import mails, previews, run

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
    command = [sys.executable, "-m", "bench", "--sizes", "64k", "--repeat", "1", "--import-runs", "1"]
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
