"""The budget report as markdown, JSON and a PNG chart (benchmarks/benchmark.py writes its lab
report, with a baseline and peak memory, through the same functions)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from birdinfer.atomic import write_atomic, write_json_atomic


def write_report(data: dict[str, Any], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "bench.json", "markdown": folder / "bench.md"}
    write_json_atomic(data, paths["json"])
    write_atomic(paths["markdown"], lambda handle: handle.write(markdown(data)))
    with contextlib.suppress(ImportError):  # matplotlib: the [bench] extra; the rest needs none
        chart(data, folder / "bench.png")
        paths["png"] = folder / "bench.png"
    return paths


def markdown(data: dict[str, Any]) -> str:
    machine, work = data["machine"], data["workload"]
    lines = [
        "# birdinfer timing-budget report",
        "",
        f"Machine: {machine['cores']} cores, {machine['cpu']}. Workload: {work['files']} files x "
        f"{work['seconds_per_file']:.0f} s ({work['windows']} windows), {work['model']}, "
        f"batch {work['batch_size']}.",
        "",
        "## Stages alone, at full cores (ms per window)",
        "",
        "| stage | ms/window |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in data["stages_alone_ms_per_window"].items()],
        "",
        "## End to end, side by side",
        "",
        "| configuration | ms/window | real time | vs baseline | e2e / sum of stages |",
        "|---|---|---|---|---|",
    ]
    for row in data["configurations"]:
        ratio = row.get("end_to_end_over_sum_of_stages")
        speedup = row["speedup_vs_baseline"]
        lines.append(
            f"| {row['configuration']} | {row['ms_per_window']:.2f} | {row['realtime_factor']:.0f}x | "
            f"{f'{speedup:.2f}x' if speedup else '-'} | {f'{ratio:.2f}' if ratio else '-'} |"
        )
    if data.get("ensemble"):
        ens = data["ensemble"]
        lines += [
            "",
            f"Ensemble: {ens['configuration']}: {ens['ms_per_window']:.2f} ms/window vs front end "
            f"+ members alone {ens['front_end_plus_members_alone_ms']:.2f} ms ({ens['ratio']:.2f}x).",
        ]
    if data.get("peak_rss_mb"):
        rss = ", ".join(f"{n} files {v:.0f} MB" for n, v in data["peak_rss_mb"].items())
        lines += ["", f"Peak RSS: {rss} (growth {100 * data['rss_growth']:+.1f}%)."]
    lines += [
        "",
        "## Projection onto the hidden test sets",
        "",
        f"Minutes on Kaggle = windows x ms/window measured here x {machine['kaggle_scale']} "
        "(Kaggle's 4 vCPU are 2 cores with hyper-threading: assumed as fast as the cores here; "
        "change with --kaggle-scale). 'Fit' leaves the reserve out of the budget.",
        "",
    ]
    if data.get("thread_plans"):
        lines += [
            "## Thread plans (fastest model, end to end)",
            "",
            "| feature workers | runtime threads | ms/window |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['workers']} | {r['threads']} | {r['ms_per_window']:.2f} |"
            for r in data["thread_plans"]
        ]
        lines.append("")
    editions = list(data["configurations"][0]["projection"])
    lines.append("| configuration | " + " | ".join(editions) + " |")
    lines.append("|---|" + "---|" * len(editions))
    for row in data["configurations"]:
        cells = []
        for edition in editions:
            p = row["projection"][edition]
            mark = "fits" if p["fits"] else "over"
            cells.append(
                f"{p['minutes']:.0f}/{p['budget_minutes']} min, {mark}, {p['models_that_fit']} models"
            )
        lines.append(f"| {row['configuration']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["configurations"]
    names = [r["configuration"] for r in rows]
    factors = [r["realtime_factor"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.5))
    ax.barh(names, factors, color="#4c72b0")
    for y, value in enumerate(factors):
        ax.text(value, y, f" {value:.0f}x", va="center")
    ax.set_xlabel("real-time factor (seconds of audio per second), higher is better")
    ax.set_title(f"birdinfer end to end on {data['machine']['cores']} cores")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
