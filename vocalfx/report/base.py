"""What the report builders share: the error, number formatting, HTML pieces and SVG figures.

The figures are drawn with matplotlib's object API (:class:`matplotlib.figure.Figure` with the
SVG canvas), never through ``pyplot``: no backend is chosen and no ``rcParams`` are changed, so
building a report leaves the calling process's matplotlib state as it was. Every style setting is
passed to the artists that use it.
"""

from __future__ import annotations

import html
import io
import math
import re
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence

from ..errors import VocalfxError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ReportError",
    "fmt",
    "esc",
    "table",
    "new_figure",
    "figure_svg",
    "figure_block",
    "page",
    "PALETTE",
    "FONT_SIZE",
]

#: Line colours: matched/output, start/dry, reference, and more (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: Font size (points) of every label in the figures.
FONT_SIZE = 8.5


class ReportError(VocalfxError, ValueError):
    """Bad input to a report builder (wrong shape, NaN samples, silent audio, unreadable tables);
    the message names the file or argument at fault."""


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: ``digits`` significant digits; ``—`` for ``None``, NaN or infinity
    (so no ``nan`` ever reaches a page); other values as text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) or hasattr(value, "__float__"):
        try:
            v = float(value)
        except (TypeError, ValueError):
            return esc(str(value))
        if not math.isfinite(v):
            return "—" if math.isnan(v) else ("−∞" if v < 0 else "∞")
        if isinstance(value, int):
            return str(value)
        text = f"{v:.0f}" if abs(v) >= 10**digits else f"{v:.{digits}g}"
        return text.replace("-", "−")
    return esc(str(value))


def esc(text: Any) -> str:
    """HTML-escaped text."""
    return html.escape(str(text), quote=True)


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", caption: str = "") -> str:
    """An HTML table; ``head`` is escaped, row cells are inserted as given (already formatted)."""
    out = [f'<table class="{esc(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def new_figure(width_in: float = 6.4, height_in: float = 3.2, ncols: int = 1) -> "tuple[Figure, List[Axes]]":
    """A matplotlib figure (not registered with pyplot) and its axes, styled locally."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        style_axes(ax)
    return fig, axes


def style_axes(ax: "Axes") -> None:
    """Grid, tick label size and spines, set on ``ax`` only."""
    ax.grid(True, which="major", color="#d0d0d0", linewidth=0.6)
    ax.grid(True, which="minor", color="#ececec", linewidth=0.4)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=FONT_SIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def label(ax: "Axes", xlabel: str, ylabel: str, title: str = "") -> None:
    """Axis labels and title at the report's font size."""
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    ax.set_ylabel(ylabel, fontsize=FONT_SIZE)
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 1)


def legend(ax: "Axes", **kw: Any) -> None:
    """A legend at the report's font size (only if something is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=FONT_SIZE - 0.5, frameon=False, **kw)


_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def figure_svg(fig: "Figure", key: str) -> str:
    """``fig`` as an inline ``<svg>`` element (no XML prolog), its ids prefixed with ``key``.

    matplotlib names glyphs and clip paths with ids that repeat between figures; an HTML page
    holds one id namespace, so each figure's ids (and the references to them) get a unique prefix.
    """
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None})
    svg = _SVG_HEAD.sub("", buf.getvalue(), count=1)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    ids = set(_SVG_ID.findall(svg))
    if ids:
        pattern = re.compile(
            r'(\bid="|#)(' + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)) + r')\b(?=["\)])'
        )
        svg = pattern.sub(lambda m: f"{m.group(1)}{key}-{m.group(2)}", svg)
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r"<svg \1", svg, count=1)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def figure_block(fig: "Figure", key: str, caption: str) -> str:
    """A ``<figure>`` holding the SVG of ``fig`` and a caption (HTML allowed in ``caption``)."""
    return f'<figure id="fig-{esc(key)}">{figure_svg(fig, key)}<figcaption>{caption}</figcaption></figure>'


def message_block(key: str, title: str, text: str) -> str:
    """A placeholder where a figure cannot be drawn (e.g. no loss history given)."""
    return f'<div class="missing" id="fig-{esc(key)}"><b>{esc(title)}</b>: {esc(text)}</div>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:1.2em 1.6em;color:#1d1d1f;background:#fff;line-height:1.4;font-size:14px}
h1{font-size:1.5em;margin:.2em 0 .1em}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.sub{color:#555;margin:0 0 .8em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:.8em 1.2em}
figure{margin:0;padding:.3em;border:1px solid #eee;border-radius:6px;background:#fcfcfc}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:.85em;color:#444;padding:.2em .4em}
table{border-collapse:collapse;font-size:.88em;margin:.3em 0 .8em}
th,td{border-bottom:1px solid #e4e4e4;padding:.15em .6em;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
td.l,th.l{text-align:left}
tr.group td{font-weight:600;background:#fafafa;text-align:left}
.changed{color:#0b57a4;font-weight:600}
.players{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:.6em}
.player{border:1px solid #eee;border-radius:6px;padding:.4em .6em}.player audio{width:100%}
.missing{border:1px dashed #bbb;border-radius:6px;padding:1em;color:#666}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f6f6;padding:.6em;border-radius:4px;white-space:pre-wrap;word-break:break-all}
details{margin:.4em 0}summary{cursor:pointer;color:#0b57a4}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}
"""

# Playing one player pauses the others, so two excerpts never sound at once.
_JS = """
document.addEventListener("play", function (e) {
  for (const a of document.querySelectorAll("audio")) { if (a !== e.target) a.pause(); }
}, true);
"""


def page(title: str, body: str, *, subtitle: str = "", script: bool = True) -> str:
    """A whole self-contained HTML document (inline CSS and script, no external resources)."""
    sub = f'<p class="sub">{subtitle}</p>' if subtitle else ""
    js = f"<script>{_JS}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>"
        f"<h1>{esc(title)}</h1>{sub}\n{body}\n{js}</body></html>\n"
    )


def check_no_nan(text: str, where: str) -> None:
    """Refuse a page whose visible text says ``nan`` (a number that was not formatted by :func:`fmt`).

    Base64 payloads are skipped: they can hold the letters ``NaN`` by chance.
    """
    visible = re.sub(r"base64,[A-Za-z0-9+/=]+", "", text)
    visible = re.sub(r"<svg.*?</svg>", lambda m: re.sub(r'd="[^"]*"', "", m.group(0)), visible, flags=re.S)
    hit = re.search(r"(?<![\w/\\.-])nan(?![\w/\\-])", visible, flags=re.I)  # not inside a word or a path
    if hit:
        raise ReportError(
            f"{where}: the report would show an undefined number ({hit.group(0)!r} near "
            f"{visible[max(0, hit.start() - 60) : hit.end() + 20]!r}); this is a bug, please report it"
        )


def optional(values: Optional[Iterable[float]]) -> List[float]:
    """``values`` as a list of floats, NaN/None kept as NaN (for plotting gaps)."""
    return [math.nan if v is None else float(v) for v in (values or [])]
