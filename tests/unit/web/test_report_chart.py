"""The course report's chart: a valid SVG document for no, one and many sessions, and what
people typed (a course's name) never becomes markup or TeX in it."""

import re
import xml.etree.ElementTree as ET

import pytest

from services.web.report_chart import MAX_LABELS, Bar, plain_text, session_rates_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return root


def bars_drawn(root: ET.Element) -> int:
    """Each bar is an SVG group of its own, "session-bar-N"."""
    return sum(1 for g in root.iter(f"{SVG}g") if re.fullmatch(r"session-bar-\d+", g.get("id", "")))


def test_no_sessions_is_an_empty_chart_that_says_so() -> None:
    svg = session_rates_svg("M1 Maths · Autumn", [], 80)
    root = parse(svg)
    assert bars_drawn(root) == 0
    assert "No sessions held in this term yet" in svg  # the text is kept, as a comment


def test_one_session_is_one_bar() -> None:
    root = parse(session_rates_svg("M1 Maths", [Bar("09-02", 0.5)], 80))
    assert bars_drawn(root) == 1


def test_many_sessions_are_one_bar_each_with_thinned_labels() -> None:
    bars = [Bar(f"d{i:03d}", (i % 10) / 10) for i in range(300)] + [Bar("none", None)]
    svg = session_rates_svg("M1 Maths", bars, 75)
    root = parse(svg)
    assert bars_drawn(root) == len(bars)
    labels = re.findall(r"<!-- (d\d{3}) -->", svg)
    assert 0 < len(labels) <= MAX_LABELS
    assert "n/a" in svg  # the session where nothing was counted says so


@pytest.mark.parametrize(
    "name",
    [
        "</svg><script>alert(1)</script>",
        '"><image href=x onerror=alert(1)>',
        "<!-- --> & ]]>",
        "Maths $\\frac{",  # unbalanced TeX: matplotlib's math parser would raise
        "Nul\x00 and bell\x07 and \ufffe",  # characters XML cannot carry even escaped
    ],
)
def test_a_course_name_is_text_never_markup(name: str) -> None:
    baseline = parse(session_rates_svg("Maths · Autumn", [Bar("09-02", 0.5)], 80))
    svg = session_rates_svg(f"{name} · Autumn", [Bar("09-02", 0.5)], 80)
    root = parse(svg)
    # The same elements as a chart of an ordinary name: nothing the name brought in.
    assert {e.tag for e in root.iter()} == {e.tag for e in baseline.iter()}
    assert not [k for e in root.iter() for k in e.attrib if k.lower().startswith("on")]
    assert "<script" not in svg and "<image" not in svg


def test_plain_text_drops_what_xml_refuses_and_cuts_long_titles() -> None:
    assert plain_text("a\x00b\x1fc\u0085d  \n e") == "abcd e"
    assert plain_text("x" * 500, 10) == "x" * 9 + "\N{HORIZONTAL ELLIPSIS}"
