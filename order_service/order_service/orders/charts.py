"""Charts drawn on the server as inline SVG: no chart library, no CDN, nothing to load.

Every label is escaped (``format_html``); the output is safe to put into a template.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

Number = int | float | Decimal
PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#64748b")


def column_chart(
    points: Sequence[tuple[str, Number]],
    *,
    title: str,
    width: int = 720,
    height: int = 220,
    color: str = PALETTE[0],
    label_every: int = 1,
    value_text: Callable[[Number], str] = str,
) -> SafeString:
    """Vertical bars, one per point, with the value on hover and every ``label_every``th label."""
    top, bottom, left = 24, 36, 8
    plot_height = height - top - bottom
    peak = max((float(value) for _, value in points), default=0.0) or 1.0
    slot = (width - left * 2) / max(len(points), 1)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = plot_height * float(value) / peak
        x = left + index * slot + slot * 0.15
        y = top + plot_height - bar_height
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
                f"{x:.1f}",
                f"{y:.1f}",
                f"{slot * 0.7:.1f}",
                f"{bar_height:.1f}",
                color,
                label,
                value_text(value),
            )
        )
        if index % label_every == 0:
            bars.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#475569">{}</text>',
                    f"{left + index * slot + slot / 2:.1f}",
                    height - bottom + 14,
                    label,
                )
            )
    return _svg(title, width, height, SafeString("".join(bars)), f"peak {value_text(peak if points else 0)}")


def bar_chart(
    points: Sequence[tuple[str, Number]],
    *,
    title: str,
    width: int = 720,
    row_height: int = 26,
    value_text: Callable[[Number], str] = str,
    max_value: Number | None = None,
) -> SafeString:
    """Horizontal bars with their labels and values written out (for categories and rates)."""
    top, label_width, value_width = 24, 110, 80
    height = top + row_height * max(len(points), 1) + 8
    peak = float(max_value) if max_value is not None else max((float(v) for _, v in points), default=0.0)
    peak = peak or 1.0
    plot_width = width - label_width - value_width
    rows = format_html_join(
        "",
        '<text x="4" y="{}" font-size="12" fill="#0f172a">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" font-size="12" fill="#0f172a">{}</text>',
        (
            (
                f"{top + index * row_height + row_height * 0.65:.1f}",
                label,
                label_width,
                top + index * row_height + 4,
                f"{plot_width * float(value) / peak:.1f}",
                row_height - 8,
                PALETTE[index % len(PALETTE)],
                label,
                value_text(value),
                f"{label_width + plot_width * float(value) / peak + 6:.1f}",
                f"{top + index * row_height + row_height * 0.65:.1f}",
                value_text(value),
            )
            for index, (label, value) in enumerate(points)
        ),
    )
    return _svg(title, width, height, rows, "")


def _svg(title: str, width: int, height: int, body: SafeString, note: str) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="100%" style="max-width:{}px">'
        '<text x="8" y="16" font-size="13" font-weight="600" fill="#0f172a">{}</text>'
        '<text x="{}" y="16" font-size="11" text-anchor="end" fill="#64748b">{}</text>{}</svg>',
        title,
        width,
        height,
        width,
        title,
        width - 8,
        note,
        body,
    )
