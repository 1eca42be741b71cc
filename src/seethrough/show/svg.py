"""Small inline SVG charts written by hand: the same data gives the same bytes, no ids to collide
between figures on one page, no fonts or scripts to fetch (text is set in the page's sans-serif)."""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 14, 42


def _c(x: float) -> str:
    return f"{x:.2f}"


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.2g}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 5 x 10^k steps)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


class _Frame:
    def __init__(self, width: int, height: int, x_range: tuple[float, float], y_range: tuple[float, float],
                 log_x: bool = False) -> None:
        self.width, self.height, self.log_x = width, height, log_x
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1

    def _lx(self, x: float) -> float:
        return math.log10(x) if self.log_x else x

    def x(self, value: float) -> float:
        span = self._lx(self.x1) - self._lx(self.x0)
        return _LEFT + (self._lx(value) - self._lx(self.x0)) / span * (self.width - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return self.height - _BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (self.height - _TOP - _BOTTOM)


def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}" class="chart">',
            f"<title>{escape(title)}</title>"]


def _axes(frame: _Frame, x_ticks: list[float], y_ticks: list[float], x_label: str, y_label: str,
          x_tick_labels: Sequence[str] | None = None) -> list[str]:
    out = []
    bottom, top = frame.height - _BOTTOM, _TOP
    left, right = _LEFT, frame.width - _RIGHT
    for t in y_ticks:
        y = frame.y(t)
        out.append(f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(right)}" y2="{_c(y)}" class="grid"/>')
        out.append(f'<text x="{_c(left - 4)}" y="{_c(y + 3.5)}" text-anchor="end">{escape(_tick_label(t))}</text>')
    labels = x_tick_labels if x_tick_labels is not None else [_tick_label(t) for t in x_ticks]
    for t, label in zip(x_ticks, labels):
        x = frame.x(t)
        out.append(f'<line x1="{_c(x)}" y1="{_c(bottom)}" x2="{_c(x)}" y2="{_c(bottom + 4)}" class="axis"/>')
        out.append(f'<text x="{_c(x)}" y="{_c(bottom + 15)}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<line x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(right)}" y2="{_c(bottom)}" class="axis"/>')
    out.append(f'<line x1="{_c(left)}" y1="{_c(top)}" x2="{_c(left)}" y2="{_c(bottom)}" class="axis"/>')
    out.append(f'<text x="{_c((left + right) / 2)}" y="{_c(frame.height - 6)}" text-anchor="middle">'
               f"{escape(x_label)}</text>")
    out.append(f'<text transform="translate(14 {_c((top + bottom) / 2)}) rotate(-90)" text-anchor="middle">'
               f"{escape(y_label)}</text>")
    return out


_LEGEND = 180
"""Width added on the right of a chart for its legend."""


def _legend(names: Sequence[str], left: int) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = _TOP + 6 + 14 * i
        out.append(f'<rect x="{left}" y="{y - 5}" width="12" height="3" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{left + 16}" y="{y}">{escape(name[:30])}</text>')
    return out


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float | None]]], title: str, x_label: str,
               y_label: str, log_x: bool = False, width: int = 560, height: int = 240,
               y_range: tuple[float, float] | None = None, reference: float | None = None) -> str:
    """Lines (with points when there are few), one per ``(name, xs, ys)``; a None y is a gap."""
    points = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys)
              if y is not None and math.isfinite(y) and (not log_x or x > 0)]
    xs_all = [p[0] for p in points] or [1.0]
    ys_all = [p[1] for p in points] or [0.0]
    if reference is not None:
        ys_all = ys_all + [reference]
    y_low, y_high = y_range if y_range is not None else (min(ys_all), max(ys_all))
    y_ticks = nice_ticks(y_low, y_high)
    if y_range is None:
        y_low, y_high = y_ticks[0], y_ticks[-1]
    x_low, x_high = min(xs_all), max(xs_all)
    if log_x:
        x_ticks = [10.0 ** k for k in range(math.floor(math.log10(x_low)), math.ceil(math.log10(x_high)) + 1)]
        x_low, x_high = x_ticks[0], x_ticks[-1] if x_ticks[-1] > x_ticks[0] else x_ticks[0] * 10
    else:
        x_ticks = nice_ticks(x_low, x_high)
        if all(float(x).is_integer() for x in xs_all):  # layers, steps: no tick between two integers
            x_ticks = [t for t in x_ticks if float(t).is_integer()] or x_ticks
        x_low, x_high = x_ticks[0], x_ticks[-1]
    frame = _Frame(width, height, (x_low, x_high), (y_low, y_high), log_x)
    legend = len(series) > 1 or bool(series and series[0][0])
    out = _open(width + (_LEGEND if legend else 0), height, title) + _axes(frame, x_ticks, y_ticks, x_label, y_label)
    if reference is not None:
        y = frame.y(reference)
        out.append(f'<line x1="{_LEFT}" y1="{_c(y)}" x2="{width - _RIGHT}" y2="{_c(y)}" class="ref"/>')
    for i, (_, xs, ys) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pieces: list[list[str]] = [[]]
        for x, y in zip(xs, ys):
            if y is None or not math.isfinite(y) or (log_x and x <= 0):
                pieces.append([])
                continue
            pieces[-1].append(f"{_c(frame.x(x))},{_c(frame.y(y))}")
        for piece in pieces:
            if len(piece) > 1:
                out.append(f'<polyline points="{" ".join(piece)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            if len(piece) <= 40:
                for p in piece:
                    cx, cy = p.split(",")
                    out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
    if legend:
        out += _legend([name for name, _, _ in series], width + 4)
    out.append("</svg>")
    return "".join(out)


def bar_chart(labels: Sequence[str], values: Sequence[float | None], title: str, x_label: str, y_label: str,
              intervals: Sequence[tuple[float, float] | None] | None = None, width: int = 560, height: int = 240,
              y_range: tuple[float, float] | None = None, reference: float | None = None) -> str:
    """One bar per label (a None value draws no bar), with optional interval whiskers and a reference line."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    tops = finite + [hi for iv in (intervals or []) if iv is not None for hi in iv[1:]]
    if reference is not None:
        tops.append(reference)
    low, high = y_range if y_range is not None else (min([0.0] + finite), max(tops or [1.0]))
    y_ticks = nice_ticks(low, high)
    if y_range is None:
        low, high = y_ticks[0], y_ticks[-1]
    n = max(1, len(labels))
    frame = _Frame(width, height, (0, n), (low, high))
    centres = [i + 0.5 for i in range(len(labels))]
    step = max(1, math.ceil(len(labels) / 12))  # at most ~12 tick labels
    shown = [(c, label) for i, (c, label) in enumerate(zip(centres, labels)) if i % step == 0]
    out = _open(width, height, title) + _axes(frame, [c for c, _ in shown], y_ticks, x_label, y_label,
                                              [label[:14] for _, label in shown])
    bar = (width - _LEFT - _RIGHT) / n * 0.7
    for i, value in enumerate(values):
        if value is None or not math.isfinite(value):
            continue
        x = frame.x(centres[i]) - bar / 2
        y_top, y_base = frame.y(max(value, low)), frame.y(max(low, min(0.0, high)) if low < 0 < high else low)
        top, bottom = min(y_top, y_base), max(y_top, y_base)
        out.append(f'<rect x="{_c(x)}" y="{_c(top)}" width="{_c(bar)}" height="{_c(bottom - top)}" '
                   f'fill="{PALETTE[0]}"/>')
        interval = intervals[i] if intervals else None
        if interval is not None:
            cx = frame.x(centres[i])
            lo_y, hi_y = frame.y(interval[0]), frame.y(interval[1])
            out.append(f'<line x1="{_c(cx)}" y1="{_c(lo_y)}" x2="{_c(cx)}" y2="{_c(hi_y)}" class="whisker"/>')
            for yy in (lo_y, hi_y):
                out.append(f'<line x1="{_c(cx - 4)}" y1="{_c(yy)}" x2="{_c(cx + 4)}" y2="{_c(yy)}" class="whisker"/>')
    if reference is not None:
        y = frame.y(reference)
        out.append(f'<line x1="{_LEFT}" y1="{_c(y)}" x2="{width - _RIGHT}" y2="{_c(y)}" class="ref"/>')
    out.append("</svg>")
    return "".join(out)
