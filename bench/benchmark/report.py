"""The figures as a table for a person (the JSON is the same dict, written as is)."""

from typing import Any

from bench.benchmark.measure import Throughput


def ratios(runs: list[Throughput]) -> dict[str, float]:
    by_label = {r.label: r for r in runs}
    naive = by_label.get("naive loop")
    one = by_label.get("system, 1 recognizer(s)")
    out: dict[str, float] = {}
    for run in runs:
        if naive and run is not naive:
            out[f"{run.label} / naive"] = round(run.fps / naive.fps, 2)
        if one and run.label.startswith("system") and run is not one:
            out[f"{run.label} / 1 recognizer"] = round(run.fps / one.fps, 2)
    return out


def render(report: dict[str, Any]) -> str:
    lines = [
        f"video {report['video']}; enrolled {', '.join(report['enrolled'])}; target {report['target']}",
        "",
    ]
    if report.get("throughput"):
        lines.append(f"{'run':32} {'frames/s':>9} {'faces/s':>8} {'target frames':>14}  others named")
        for r in report["throughput"]:
            lines.append(
                f"{r['label']:32} {r['fps']:>9.1f} {r['faces_per_s']:>8.1f} "
                f"{r['target_frames']:>7}/{r['frames']:<6}  {', '.join(r['other_names']) or 'none'}"
            )
        lines += ["", *(f"  {name}: {value}x" for name, value in report["ratios"].items()), ""]
    for name, run in report.get("latency", {}).items():
        lines.append(
            f"latency {name} ({run['input_fps']} frames/s in, {run['frames_dropped']} of "
            f"{run['frames_published']} dropped, queue depth max {run['queue_depth_max']})"
        )
        for key in ("capture_to_analyzed_ms", "capture_to_committed_row_ms", "capture_to_dashboard_ms"):
            p = run[key]
            lines.append(
                f"  {key:30} p50 {p.get('p50', '-'):>7} p95 {p.get('p95', '-'):>7} "
                f"p99 {p.get('p99', '-'):>7}  (n={p['n']})"
            )
        lines.append(f"  committed-row p95 by third of the run: {run['committed_row_p95_by_third_ms']}")
    if "recorder" in report:
        r = report["recorder"]
        lines += [
            "",
            f"recorder alone: {r['events_per_s']} events/s ({r['events_published']} events, "
            f"{r['events_published'] - r['unique_events']} redelivered); duplicate rows "
            f"{r['duplicate_rows']}, duplicate marks {r['duplicate_marks']}",
        ]
    if "matching" in report:
        lines.append("")
        for row in report["matching"]:
            loop = (
                f"   (Python loop: {row['python_loop_ms_per_face']} ms)"
                if "python_loop_ms_per_face" in row
                else ""
            )
            lines.append(
                f"matching vs {row['gallery']:>9,} encodings: {row['ms_per_face']:>8} ms per face{loop}"
            )
    if report.get("peak_memory_mb"):
        lines += [
            "",
            "peak memory (MB): " + ", ".join(f"{k} {v}" for k, v in report["peak_memory_mb"].items()),
        ]
    return "\n".join(lines)
