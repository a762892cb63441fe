"""FAR, FRR and misidentification against the tolerance, as a PNG: apart from the report
because only --png needs matplotlib."""

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.accuracy.report import Report


def render_png(report: Report, path: Path) -> None:
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    thresholds = [row.threshold for row in report.rows]
    for values, label, style in (
        ([row.far for row in report.rows], "FAR (strangers named)", "-"),
        ([row.frr for row in report.rows], "FRR (genuine not named correctly)", "-"),
        ([row.misidentification for row in report.rows], "misidentification", ":"),
    ):
        if any(v is not None for v in values):
            # Steps: a rate holds from one tolerance up to the next one measured.
            axes.plot(
                thresholds,
                [math.nan if v is None else v for v in values],
                style,
                label=label,
                marker=".",
                drawstyle="steps-post",
            )
    axes.axvline(
        report.default_tolerance, color="grey", linestyle="--", label=f"default {report.default_tolerance}"
    )
    if not math.isclose(report.tolerance, report.default_tolerance):
        axes.axvline(report.tolerance, color="black", linestyle=":", label=f"--tolerance {report.tolerance}")
    axes.set_xlabel(f"tolerance (margin {report.margin:.2f})")
    axes.set_ylabel("rate")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend()
    r = report.rates
    axes.set_title(
        f"{Path(report.folder).name}: {len(report.enrolled_photos)} enrolled "
        f"({report.enroll_per_identity}/identity), {r.genuine} genuine, "
        f"{r.strangers + r.strangers_without_face} stranger photos",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, format="png")
