"""`make bench`: the function against the raw limit of its work, side by side, on a local moto server,
and what an alarm storm costs a day with alarm folding on and off.

For every mail size, fresh child processes (bench.workloads) run the raw limit and the function in turn,
alternating which goes first; the medians of their wall time and peak memory give the ratios the
performance targets are set on: function time / limit time, and peak memory / mail size. Cold import
time of `app.handler` is measured in fresh interpreters too. The storm (bench.storm) plays a day of one
alarm a minute on a simulated clock and prices the calls it counted. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cost, mails, previews, storm
from bench.harness import ROOT, Bench, BenchError, Runner, Stored, run_child
from localaws.account import served
from localaws.template import load

RESULTS = Path("bench/results/latest.json")
CHART = Path("docs/benchmark.png")
TARGETS = {"time_ratio": 1.5, "memory_multiple": 3.0, "cold_import_s": 0.5, "cold_start_ratio": 1.2}
WARMUP_CASE = mails.Case("warm-up", (4 * mails.KB,))
WORKLOADS = ("limit", "function", "storm")
MAIL_WORKLOADS = ("limit", "function")  # run on the mails of --sizes, with the cold starts and previews
MAIL_SECTIONS = ("repeat", "cases", "cold_import_s", "cold_start", "previews")  # of the results
IMPORT_PROBE = "import time; t = time.perf_counter(); import app.handler; print(time.perf_counter() - t)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=mails.DEFAULT_SIZES,
        help="comma-separated attachment sizes in MB (or 64k), 'max' for a 40 MB mail, 'many' for 50 "
        f"small attachments (default {mails.DEFAULT_SIZES})",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of each workload per size (default 5)")
    parser.add_argument(
        "--import-runs",
        type=int,
        default=5,
        help="cold imports of app.handler, and cold first mails against the dependency floor (default 5)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, of {', '.join(WORKLOADS)} (default all; `storm` alone: only the alarm storm)",
    )
    parser.add_argument(
        "--storm-hours",
        type=float,
        default=24,
        help="simulated hours of the alarm storm, one alarm a minute (default 24)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=cost.PRICES,
        help="the price table the storm is priced with (default bench/prices.json)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument("--chart", type=Path, default=CHART, help=f"PNG chart (default {CHART})")
    parser.add_argument("--no-chart", action="store_true", help="write no chart (no matplotlib needed)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not args.workloads or set(args.workloads) - set(WORKLOADS):
        parser.error(f"--workloads takes one or more of {', '.join(WORKLOADS)}")
    if args.repeat < 1 or args.import_runs < 0:
        parser.error("--repeat must be at least 1 and --import-runs at least 0")
    if round(args.storm_hours * 60) < 1:
        parser.error("--storm-hours must be at least one simulated minute")
    try:
        args.cases = mails.cases_from(args.sizes)
    except ValueError as e:
        parser.error(str(e))
    return args


# -- runs -------------------------------------------------------------------------------------------


def cold_imports(runs: int, env: dict[str, str]) -> list[float]:
    """Seconds to import app.handler in a fresh interpreter (bytecode and flanker tables already built),
    as Lambda's runtime does: LAMBDA_TASK_ROOT set, so the X-Ray SDK takes its Lambda path (no sampling
    client of its own)."""
    env = {**env, "LAMBDA_TASK_ROOT": str(ROOT), "AWS_LAMBDA_FUNCTION_NAME": "bench"}
    command = [sys.executable, "-c", IMPORT_PROBE]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603 - builds caches
    times = []
    for _ in range(runs):
        done = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)  # noqa: S603
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return times


def cold_starts(runs: int, aws: Bench, warmup: Stored) -> dict[str, Any]:
    """Time to first mail in a cold process against the dependency floor, alternating, `runs` of each.

    Lambda's environment as in `cold_imports`; each cold run relays a fresh copy of the 4 KB warm-up
    mail (no idempotency marker lets it skip work) and must send it.
    """
    env = {**aws.child_environment(), "LAMBDA_TASK_ROOT": str(ROOT), "AWS_LAMBDA_FUNCTION_NAME": "bench"}
    run_child("floor", {}, env)  # bytecode and flanker's tables built, as the image builds them
    first_mail, floor, imports = [], [], []
    for n in range(runs):
        key = f"{warmup.key}/cold-{n}"
        aws.copy(warmup.key, key)
        sent_before = aws.sent_count()
        try:
            for kind in ("cold", "floor") if n % 2 == 0 else ("floor", "cold"):
                spec = {"key": key, "incoming_bucket": aws.incoming}
                result = run_child(kind, spec, env)
                if kind == "floor":
                    floor.append(result["floor_s"])
                    continue
                if result["batch_item_failures"] or aws.sent_count() != sent_before + 1:
                    raise BenchError(f"the cold process did not send {key}; its log:\n{result['log']}")
                if result["pillow_imported"]:
                    raise BenchError("a text-only mail imported Pillow: its cold start pays for previews")
                first_mail.append(result["first_mail_s"])
                imports.append(result["import_s"])
        finally:
            aws.forget(key)
    return {
        "first_mail_s": {"median": statistics.median(first_mail), "runs": first_mail},
        "import_s": {"median": statistics.median(imports), "runs": imports},
        "floor_s": {"median": statistics.median(floor), "runs": floor},
        "ratio": statistics.median(first_mail) / statistics.median(floor),
    }


# -- figures ----------------------------------------------------------------------------------------


def summarise(stored: Stored, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    case = stored.case
    entry: dict[str, Any] = {
        "case": case.name,
        "mail_bytes": stored.mail_bytes,
        "attachments": len(case.attachment_sizes),
        "attachment_bytes": sum(case.attachment_sizes),
        "time_target": case.time_target,
        "memory_target": case.memory_target,
    }
    for kind, results in runs.items():
        wall = [r["wall_s"] for r in results]
        peak = [r["peak_above_baseline_bytes"] for r in results]
        entry[kind] = {
            "wall_s": statistics.median(wall),
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "peak_bytes": statistics.median(peak),
            "memory_multiple": statistics.median(peak) / stored.mail_bytes,
            "baseline_rss_bytes": statistics.median(r["baseline_rss_bytes"] for r in results),
            "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "peak_above_baseline_bytes")} for r in results],
        }
    if "limit" in entry and "function" in entry:
        entry["time_ratio"] = entry["function"]["wall_s"] / entry["limit"]["wall_s"]
        # Each repetition ran the two side by side: their ratio cancels slow drift in the machine's load.
        pairs = zip(runs["function"], runs["limit"], strict=True)
        entry["paired_time_ratio"] = statistics.median(f["wall_s"] / lim["wall_s"] for f, lim in pairs)
        entry["cpu_ratio"] = entry["function"]["cpu_s"] / entry["limit"]["cpu_s"]
    return entry


def verdicts(report: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each target the run can judge, with whether it was met."""
    found = []
    for entry in report.get("cases", []):
        if entry["time_target"] and "time_ratio" in entry:
            ratio = entry["time_ratio"]
            found.append((f"{entry['case']}: time {ratio:.2f}x <= 1.5x", ratio <= TARGETS["time_ratio"]))
        if entry["memory_target"] and "function" in entry:
            multiple = entry["function"]["memory_multiple"]
            found.append(
                (f"{entry['case']}: memory {multiple:.2f}x <= 3x", multiple <= TARGETS["memory_multiple"])
            )
    if report.get("cold_import_s"):
        median = report["cold_import_s"]["median"]
        found.append((f"cold import {median:.3f} s <= 0.5 s", median <= TARGETS["cold_import_s"]))
    if report.get("cold_start"):
        ratio = report["cold_start"]["ratio"]
        met = ratio <= TARGETS["cold_start_ratio"]
        found.append((f"cold first mail {ratio:.2f}x the dependency floor <= 1.2x", met))
    if report.get("previews"):
        found += previews.verdicts(report["previews"])
    if report.get("storm"):
        found += storm.verdicts(report["storm"])
    return found


def table(report: dict[str, Any]) -> str:
    lines = mail_table(report) if report.get("cases") else []
    if report.get("storm"):
        lines += storm.table(report["storm"])
    for text, met in verdicts(report):
        lines.append(f"{'PASS' if met else 'MISS'}  {text}")
    return "\n".join(lines)


def mail_table(report: dict[str, Any]) -> list[str]:
    mb = 1024 * 1024
    header = (
        f"{'case':<12} {'mail MB':>8} {'limit s':>8} {'func s':>8} {'time x':>7} {'cpu x':>6} "
        f"{'limit MB':>9} {'func MB':>8} {'limit mem':>10} {'func mem':>9}"
    )
    lines = [header, "-" * len(header)]

    def cell(entry: dict[str, Any], kind: str, field: str, fmt: str, scale: float = 1) -> str:
        return format(entry[kind][field] / scale, fmt) if kind in entry else "-"

    for e in report["cases"]:
        lines.append(
            f"{e['case']:<12} {e['mail_bytes'] / mb:>8.1f} {cell(e, 'limit', 'wall_s', '8.3f'):>8} "
            f"{cell(e, 'function', 'wall_s', '8.3f'):>8} "
            f"{format(e['time_ratio'], '6.2f') + 'x' if 'time_ratio' in e else '-':>7} "
            f"{format(e['cpu_ratio'], '5.2f') + 'x' if 'cpu_ratio' in e else '-':>6} "
            f"{cell(e, 'limit', 'peak_bytes', '9.1f', mb):>9} "
            f"{cell(e, 'function', 'peak_bytes', '8.1f', mb):>8} "
            f"{cell(e, 'limit', 'memory_multiple', '9.2f') + 'x':>10} "
            f"{cell(e, 'function', 'memory_multiple', '8.2f') + 'x':>9}"
        )
    if report.get("cold_import_s"):
        lines.append(f"\ncold import of app.handler: median {report['cold_import_s']['median']:.3f} s")
    if report.get("cold_start"):
        cold = report["cold_start"]
        lines.append(
            f"cold process, first 4 KB mail: median {cold['first_mail_s']['median']:.3f} s (import"
            f" {cold['import_s']['median']:.3f} s); dependency floor (boto3, 4 clients, flanker tables):"
            f" {cold['floor_s']['median']:.3f} s; {cold['ratio']:.2f}x"
        )
    if report.get("previews"):
        lines += previews.table(report["previews"])
    lines.append(
        f"medians of {report['repeat']} runs; time x = function / limit (wall), cpu x = the same in CPU "
        "time; MB = peak RSS above the baseline after warm-up; mem = that peak / mail size"
    )
    return lines


def measure_mails(args: argparse.Namespace) -> dict[str, Any]:
    """The limit and the function on each mail size, the cold starts and the previews."""
    kinds = [kind for kind in args.workloads if kind in MAIL_WORKLOADS]
    # The runs relay copies of a few mails again and again (the warm-up before each): with alarm folding
    # on, every copy after the first would be folded as a repeat of the same alarm and not sent, and
    # the checks stop the benchmark. These workloads measure the relay's work on a mail, not folding.
    blueprint = load(ROOT / "template.yaml", {"RepeatFolding": "off"}, stack_name="bench")
    with served(blueprint) as account:
        aws = Bench(account)
        print(
            f"moto server on {account.endpoint}; generating and storing {len(args.cases)} mails", flush=True
        )
        warmup = aws.store(WARMUP_CASE, "incoming/bench/warm-up")
        stored = [aws.store(case, f"incoming/bench/{case.name}") for case in args.cases]
        runner = Runner(aws, warmup)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {s.case.name: {} for s in stored}
        for repetition in range(args.repeat):
            for n, item in enumerate(stored):
                # Alternate which workload goes first, so drift in the machine's load favours neither.
                order = kinds if (repetition + n) % 2 == 0 else kinds[::-1]
                for kind in order:
                    result = runner.run(kind, item)
                    runs[item.case.name].setdefault(kind, []).append(result)
                    print(
                        f"  run {repetition + 1}/{args.repeat} {item.case.name:<10} {kind:<8} "
                        f"{result['wall_s']:7.3f} s {result['peak_above_baseline_bytes'] / 2**20:8.1f} MB",
                        flush=True,
                    )
                    if not result["peak_reset"]:
                        print("  warning: could not reset the peak RSS; memory includes imports", flush=True)
        imports = cold_imports(args.import_runs, aws.child_environment()) if args.import_runs else []
        cold = cold_starts(args.import_runs, aws, warmup) if args.import_runs else None

        preview_figures = previews.measure(aws, args.repeat)
    return {
        "repeat": args.repeat,
        "cases": [summarise(s, runs[s.case.name]) for s in stored],
        "cold_import_s": {"median": statistics.median(imports), "runs": imports} if imports else None,
        "cold_start": cold,
        "previews": preview_figures,
    }


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "targets": TARGETS,
    }
    if set(args.workloads) & set(MAIL_WORKLOADS):
        report.update(measure_mails(args))
    if "storm" in args.workloads:
        report["storm"] = storm.measure(args.storm_hours, args.prices)
    return report


def carry_over(report: dict[str, Any], previous_path: Path) -> dict[str, Any]:
    """The results to write: this run's, and the sections it did not measure as the file had them
    (`carried_over` names those and when they were measured), so `--workloads storm` updates the
    storm's figures without dropping the mails'."""
    if not previous_path.exists():
        return report
    previous = json.loads(previous_path.read_text(encoding="utf-8"))
    sections = [*MAIL_SECTIONS, "storm"]
    kept = {k: previous[k] for k in sections if k not in report and k in previous}
    if not kept:
        return report
    carried = previous.get("carried_over", {})
    when = {k: carried.get(k, previous.get("generated_at")) for k in kept}
    return {**report, **kept, "carried_over": when}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        report = measure_all(args)
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 2
    report["duration_s"] = round(time.perf_counter() - started, 1)
    written = carry_over(report, args.output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    print()
    print(table(report))
    print(f"\nwrote {args.output}", end="")
    if not args.no_chart and report.get("cases"):
        from bench import chart

        chart.draw(report, args.chart)
        print(f" and {args.chart}", end="")
    print(f" in {report['duration_s']:.0f} s")
    missed = [text for text, met in verdicts(report) if not met]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
