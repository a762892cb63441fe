"""A course report's chart, drawn on the server: attendance rate per session as bars, the
threshold as a dashed line, an SVG document (matplotlib's SVG writer on its object API, no
pyplot, no display, no script, no CDN; the page shows it as an <img>).

What people typed (a course's code and name, a term's name) reaches the SVG only as the
title, and is neutralised first: control characters (which XML cannot hold, escaped or not)
are dropped, and matplotlib's math parsing is off for it, so a `$` is a dollar sign and not
TeX that could fail to parse. Glyphs are drawn as paths (`svg.fonttype` "path"), and the text
itself appears only in an XML comment, which matplotlib escapes (`&`, `<`, `>`, `--`)."""

import io
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

# Matplotlib is not thread-safe (shared font and text caches) and the dashboard serves pages
# on many threads: one chart is drawn at a time (a few tens of milliseconds each).
_DRAWING = threading.Lock()

# Characters XML 1.0 cannot carry at all (escaping does not help), and the Unicode
# non-characters; a title never needs them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
# A title longer than this is cut (with an ellipsis): a chart's heading, not a document.
MAX_TITLE = 120
# At most this many session labels under the bars: with more sessions every n-th is labelled.
MAX_LABELS = 24
# Figure size (inches, at 100 dpi in the browser): wider with more sessions, up to a limit.
HEIGHT_IN = 3.6
MIN_WIDTH_IN, MAX_WIDTH_IN, WIDTH_PER_SESSION_IN = 6.0, 14.0, 0.35


@dataclass(frozen=True)
class Bar:
    """One session: its label under the axis (a day, made by us, e.g. "09-02") and its rate in
    0..1, or None when nothing was counted (everyone excused or not decided yet)."""

    label: str
    rate: float | None


def plain_text(value: str, limit: int = MAX_TITLE) -> str:
    """User text as the chart may show it: no characters XML refuses, whitespace collapsed,
    at most `limit` characters."""
    text = " ".join(_NOT_XML.sub("", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"


def _labelled(count: int) -> int:
    """Label every n-th bar so that at most MAX_LABELS labels show."""
    return max(1, math.ceil(count / MAX_LABELS))


def session_rates_svg(title: str, bars: Sequence[Bar], threshold_percent: float | None) -> str:
    """The chart as an SVG document (text). No bars: an empty chart that says so."""
    width = min(MAX_WIDTH_IN, max(MIN_WIDTH_IN, WIDTH_PER_SESSION_IN * len(bars) + 2))
    with _DRAWING:
        figure = Figure(figsize=(width, HEIGHT_IN), dpi=100)
        canvas = FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        axes.set_title(plain_text(title), fontsize=11, parse_math=False)
        axes.set_ylim(0, 105)
        axes.set_ylabel("attended (%)")
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
        if bars:
            positions = list(range(len(bars)))
            heights = [0.0 if bar.rate is None else bar.rate * 100 for bar in bars]
            colours = [
                "#bbbbbb"
                if bar.rate is None
                else "#c0392b"
                if threshold_percent is not None and bar.rate * 100 < threshold_percent
                else "#2e7d32"
                for bar in bars
            ]
            for index, rectangle in enumerate(axes.bar(positions, heights, color=colours, width=0.8)):
                rectangle.set_gid(f"session-bar-{index}")  # the SVG group's id: one per session
            for position, bar in zip(positions, bars, strict=True):
                if bar.rate is None:  # nothing counted: say so instead of a bar of zero
                    axes.text(position, 2, "n/a", ha="center", va="bottom", fontsize=7, color="#555555")
            step = _labelled(len(bars))
            shown = positions[::step]
            axes.set_xticks(shown, [plain_text(bars[i].label, 20) for i in shown], parse_math=False)
            axes.tick_params(axis="x", labelrotation=60 if len(shown) > 8 else 0, labelsize=8)
            axes.set_xlim(-0.6, len(bars) - 0.4)
        else:
            axes.set_xticks([])
            axes.text(0.5, 0.5, "No sessions held in this term yet", ha="center", va="center",
                      transform=axes.transAxes, color="#555555")  # fmt: skip
        if threshold_percent is not None:
            axes.axhline(threshold_percent, color="#333333", linestyle="--", linewidth=1)
            # At the right edge, outside the bars: x in axes units, y in percent.
            edge = axes.get_yaxis_transform()
            axes.text(1.0, threshold_percent, f" {threshold_percent:g}%", transform=edge,
                      va="center", ha="left", fontsize=8)  # fmt: skip
        figure.tight_layout()
        out = io.StringIO()
        # No date in the metadata (it would only tell when the chart was drawn).
        canvas.print_svg(out, metadata={"Date": None})
    return out.getvalue()
