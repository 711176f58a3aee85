"""Small server-side SVG charts for a participant's page, drawn with pygal."""

from __future__ import annotations

import re
from datetime import date

import pygal
from markupsafe import Markup
from pygal.style import Style


def _style(color: str) -> Style:
    """A plain, legible style in the clinic's colour (no web fonts, white background)."""
    return Style(background="white", plot_background="white", foreground="#222",
                 foreground_strong="#111", foreground_subtle="#bbb", colors=(color, "#999"),
                 font_family="sans-serif", label_font_size=18, major_label_font_size=18,
                 title_font_size=22, legend_font_size=18, value_font_size=16,
                 no_data_font_size=28)


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


def _svg(chart) -> Markup:
    """The chart as inline SVG without pygal's config <script> (the page runs no inline JS)."""
    return Markup(_SCRIPT.sub("", chart.render(is_unicode=True)))


def _config(color: str, title: str) -> dict:
    """Options shared by every chart: no JavaScript, no XML declaration, scales to its box.

    The drawing is small (480 wide) with large type so labels stay readable when the SVG
    shrinks to a phone's width.
    """
    return {"title": title, "style": _style(color), "js": [], "disable_xml_declaration": True,
            "height": 330, "width": 480, "show_legend": False, "margin": 12,
            "x_label_rotation": 30}


def mood_chart(points: list[tuple[str, int]], color: str) -> Markup:
    """Mood check-ins (1-5) over time as a line chart."""
    chart = pygal.Line(range=(1, 5), dots_size=6, stroke_style={"width": 3},
                       **_config(color, "Mood check-ins (1-5), by session"))
    chart.x_labels = [label for label, _ in points]
    chart.add("Mood", [score for _, score in points])
    return _svg(chart)


def reply_chart(weeks: list[tuple[str, int, int]], color: str) -> Markup:
    """Nudges sent and answered per week as grouped bars."""
    chart = pygal.Bar(**{**_config(color, "Nudges answered per week"), "show_legend": True,
                         "legend_at_bottom": True})
    chart.x_labels = [f"wk {date.fromisoformat(week):%b %d}" for week, _, _ in weeks]
    top = max((sent for _, sent, _ in weeks), default=1)
    chart.y_labels = list(range(0, top + 1, max(1, top // 5)))  # whole nudges only
    chart.add("Answered", [answered for _, _, answered in weeks])
    chart.add("Sent", [sent for _, sent, _ in weeks])
    return _svg(chart)
