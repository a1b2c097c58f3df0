"""Charts as inline SVG text: no script, no library, nothing fetched. Every string that reaches the
SVG (labels, run ids) goes through ``esc``; numbers are formatted here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# matplotlib's tab20, strong colours first: distinct, and readable on white
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
           "#9edae5", "#393b79"]
OTHER = "other labels"
OTHER_COLOR = "#d9d9d9"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:11px"


def esc(value: object) -> str:
    """Text safe in HTML and SVG, inside elements and quoted attributes."""
    return escape("" if value is None else str(value), quote=True)


def colors_for(labels: Sequence[str]) -> dict[str, str]:
    out = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    out[OTHER] = OTHER_COLOR
    return out


@dataclass(frozen=True)
class Bar:
    name: str  # the x-axis text (a date)
    sub: str  # a second line (a time)
    counts: dict[str, int]  # label -> videos
    title: str  # tooltip of the whole bar
    current: bool = False


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def stacked_shares(bars: Sequence[Bar], order: Sequence[str], colors: dict[str, str]) -> str:
    """One 100% bar per run, segments in ``order`` (labels outside it are summed as 'other labels'),
    the run's video count above it; each segment's tooltip gives label, videos and share."""
    left, top, plot_h, slot = 40, 18, 170, 52
    width = max(360, left + slot * len(bars) + 10)
    height = top + plot_h + 36
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="label distribution per run" style="{FONT}">']
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        parts.append(f'<text x="{left - 7}" y="{y + 4:.1f}" text-anchor="end" fill="#666">{_pct(frac)}</text>')
    known = set(order)
    bar_w = 34
    for i, bar in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        total = sum(bar.counts.values())
        segments = [(label, bar.counts.get(label, 0)) for label in order]
        segments.append((OTHER, sum(n for label, n in bar.counts.items() if label not in known)))
        parts.append(f'<g><title>{esc(bar.title)}</title>')
        y = top + plot_h
        if total == 0:
            parts.append(f'<rect x="{x:.1f}" y="{top}" width="{bar_w}" height="{plot_h}" fill="none" '
                         'stroke="#bbb" stroke-dasharray="3 3"/>')
        for label, n in segments:
            if n <= 0 or total == 0:
                continue
            h = plot_h * n / total
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.2f}" width="{bar_w}" height="{h:.2f}" fill="{colors[label]}">'
                         f'<title>{esc(label)}: {n} videos ({_pct(n / total)})</title></rect>')
        if bar.current:
            parts.append(f'<rect x="{x - 2:.1f}" y="{top - 2}" width="{bar_w + 4}" height="{plot_h + 4}" fill="none" '
                         'stroke="#111" stroke-width="2"/>')
        weight = "bold" if bar.current else "normal"
        cx = x + bar_w / 2
        parts.append(f'<text x="{cx:.1f}" y="{top - 5}" text-anchor="middle" fill="#333" font-weight="{weight}">'
                     f'{total}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 15}" text-anchor="middle" fill="#333" '
                     f'font-weight="{weight}">{esc(bar.name)}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 28}" text-anchor="middle" fill="#777">{esc(bar.sub)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def histogram(current: Sequence[int], before: Sequence[int]) -> str:
    """Shares of videos per top-1 score bin: this run as bars, the earlier runs as a dark step line."""
    bins = len(current)
    left, top, plot_h, bin_w = 40, 10, 120, 30
    width, height = left + bins * bin_w + 10, top + plot_h + 34
    n_now, n_before = sum(current), sum(before)
    share_now = [c / n_now if n_now else 0.0 for c in current]
    share_before = [c / n_before if n_before else 0.0 for c in before]
    peak = max([*share_now, *share_before, 0.05])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="top-1 score distribution" style="{FONT}">']
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        parts.append(f'<text x="{left - 7}" y="{y + 4:.1f}" text-anchor="end" fill="#666">{_pct(peak * frac)}</text>')
    for b in range(bins):
        x = left + b * bin_w
        h = plot_h * share_now[b] / peak
        lo, hi = b / bins, (b + 1) / bins
        parts.append(f'<rect x="{x + 2}" y="{top + plot_h - h:.2f}" width="{bin_w - 4}" height="{h:.2f}" fill="#4e79a7">'
                     f'<title>score {lo:.1f}-{hi:.1f}: {current[b]} videos of this run ({_pct(share_now[b])}); '
                     f'earlier runs {_pct(share_before[b])}</title></rect>')
        if b % 2 == 0:
            parts.append(f'<text x="{x}" y="{top + plot_h + 14}" text-anchor="middle" fill="#666">{lo:.1f}</text>')
    parts.append(f'<text x="{left + bins * bin_w}" y="{top + plot_h + 14}" text-anchor="middle" fill="#666">1.0</text>')
    parts.append(f'<text x="{left + bins * bin_w / 2}" y="{top + plot_h + 29}" text-anchor="middle" fill="#333">'
                 'top-1 score</text>')
    if n_before:
        points = []
        for b in range(bins):
            y = top + plot_h - plot_h * share_before[b] / peak
            points += [f"{left + b * bin_w},{y:.2f}", f"{left + (b + 1) * bin_w},{y:.2f}"]
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#222" stroke-width="1.5" '
                     'stroke-dasharray="4 2"/>')
    parts.append("</svg>")
    return "".join(parts)
