"""The README's chart (time ratio and memory multiple per mail, targets drawn in) and its table.

`python -m bench.chart [results.json] [chart.png]` redraws the chart from saved results without
measuring; `python -m bench.chart --markdown [results.json]` prints the README's table of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FUNCTION_COLOUR = "#1f77b4"
LIMIT_COLOUR = "#b0b0b0"
TARGET_COLOUR = "#d62728"


def draw(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = report["cases"]
    names = [f"{c['case']}\n({c['mail_bytes'] / 2**20:.1f} MB mail)" for c in cases]
    positions = list(range(len(cases)))
    targets = report["targets"]
    figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")

    ratios = [c.get("time_ratio", 0.0) for c in cases]
    bars = time_axes.bar(positions, ratios, color=FUNCTION_COLOUR, width=0.6)
    time_axes.bar_label(bars, labels=[f"{r:.2f}x" if r else "-" for r in ratios], padding=2, fontsize=8)
    time_axes.axhline(1.0, color=LIMIT_COLOUR, linewidth=1)
    time_axes.axhline(targets["time_ratio"], color=TARGET_COLOUR, linestyle="--", linewidth=1.2)
    time_axes.text(
        len(cases) - 0.5, targets["time_ratio"], f"target {targets['time_ratio']}x", color=TARGET_COLOUR,
        ha="right", va="bottom", fontsize=8,
    )  # fmt: skip
    time_axes.set_title("Wall time: function / raw limit (median)")
    time_axes.set_ylabel("x the raw limit's time")

    width = 0.38
    limit = [c["limit"]["memory_multiple"] if "limit" in c else 0.0 for c in cases]
    function = [c["function"]["memory_multiple"] if "function" in c else 0.0 for c in cases]
    for offset, values, colour, label in (
        (-width / 2, limit, LIMIT_COLOUR, "raw limit"),
        (width / 2, function, FUNCTION_COLOUR, "function"),
    ):
        bars = memory_axes.bar([p + offset for p in positions], values, width, color=colour, label=label)
        memory_axes.bar_label(bars, labels=[f"{v:.1f}" if v else "-" for v in values], padding=2, fontsize=8)
    memory_axes.axhline(targets["memory_multiple"], color=TARGET_COLOUR, linestyle="--", linewidth=1.2)
    memory_axes.text(
        len(cases) - 0.5, targets["memory_multiple"], f"target {targets['memory_multiple']}x",
        color=TARGET_COLOUR, ha="right", va="bottom", fontsize=8,
    )  # fmt: skip
    memory_axes.set_title("Peak memory above baseline / mail size (median)")
    memory_axes.set_ylabel("x the raw mail's size")
    memory_axes.legend(loc="upper left", fontsize=8, frameon=False)

    for axes in (time_axes, memory_axes):
        axes.set_xticks(positions, names, fontsize=8)
        axes.set_ylim(0, axes.get_ylim()[1] * 1.12)  # room for the bar labels
        axes.spines[["top", "right"]].set_visible(False)
    imports = report.get("cold_import_s")
    note = ""
    if imports:
        note = f"cold import of app.handler {imports['median']:.2f} s (target {targets['cold_import_s']} s); "
    figure.suptitle(
        f"IoT Mail Relay benchmark: {note}medians of {report['repeat']} runs, "
        f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}",
        fontsize=9,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(report: dict[str, Any]) -> str:
    """The figures as the README's Markdown table."""
    mb = 2**20
    columns = ("mail", "raw size", "raw limit", "function", "time ratio", "peak: limit", "peak: function")
    lines = [f"| {' | '.join(columns)} | function peak / mail |", "|---|" + "--:|" * len(columns)]
    for c in report["cases"]:
        limit, function = c["limit"], c["function"]
        cells = (
            c["case"],
            f"{c['mail_bytes'] / mb:.1f} MB",
            f"{limit['wall_s']:.3f} s",
            f"{function['wall_s']:.3f} s",
            f"{c['time_ratio']:.2f}x",
            f"{limit['peak_bytes'] / mb:.1f} MB",
            f"{function['peak_bytes'] / mb:.1f} MB",
            f"{function['memory_multiple']:.2f}x",
        )
        lines.append(f"| {' | '.join(cells)} |")
    if report.get("cold_import_s"):
        lines.append(f"\nCold import of `app.handler`: {report['cold_import_s']['median']:.2f} s (median).")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--markdown"]:
        source = Path(argv[1]) if len(argv) > 1 else Path("bench/results/latest.json")
        print(markdown(json.loads(source.read_text(encoding="utf-8"))))
        return 0
    source = Path(argv[0]) if argv else Path("bench/results/latest.json")
    target = Path(argv[1]) if len(argv) > 1 else Path("docs/benchmark.png")
    draw(json.loads(source.read_text(encoding="utf-8")), target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
