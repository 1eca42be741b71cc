"""HTML pieces of the report: every string that is not already :class:`Html` is escaped, so text from
an artefact (a document, a task name, a file path) can never become markup."""

from __future__ import annotations

import re
from html import escape
from typing import Any, Iterable, Sequence

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""The page's Content-Security-Policy: no script, no font, no request of any kind; inline styles and
``data:`` images only."""


class Html(str):
    """Markup that is safe to put on the page as is (built here, with every artefact string escaped)."""


def esc(value: Any) -> Html:
    """``value`` as page text: Html stays, anything else is converted to a string and escaped."""
    if isinstance(value, Html):
        return value
    return Html(escape("" if value is None else str(value), quote=True))


def tag(name: str, content: Any = "", **attributes: Any) -> Html:
    attrs = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(str(v), quote=True)}"'
                    for k, v in attributes.items() if v is not None)
    return Html(f"<{name}{attrs}>{esc(content)}</{name}>")


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


_NUMERIC = re.compile(r"^[\s\d.,%+\-\[\]eE]*\d[\s\d.,%+\-\[\]eE]*$|^n/a$")
_TAGS = re.compile(r"<[^>]*>")


def is_numeric(cell: Html) -> bool:
    """Whether a cell's text is a number or an interval of numbers (right-aligned in tables)."""
    return bool(_NUMERIC.match(_TAGS.sub("", cell)))


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], caption: Any = None) -> Html:
    """A table; cells that hold a number (or an interval) are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{cell}</td>' if is_numeric(cell) else f"<td>{cell}</td>"
                        for cell in (esc(c) for c in row))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption is not None else ""
    return Html(f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                "</table></div>")


def facts_list(items: Iterable[tuple[Any, Any]]) -> Html:
    """A definition list of (label, value)."""
    return Html("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>")


def para(*parts: Any) -> Html:
    return Html("<p>" + "".join(esc(p) for p in parts) + "</p>")


def code(text: Any) -> Html:
    return Html(f"<pre><code>{esc(text)}</code></pre>")


def figure(svg: str, caption: Any) -> Html:
    return Html(f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>")


STYLE = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--mark:#fff3b0;--accent:#0b5cad}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg);margin:0}
header.top{padding:20px 32px;border-bottom:1px solid var(--line);background:var(--soft)}
header.top h1{margin:0 0 4px;font-size:24px}
header.top p{margin:0;color:var(--muted)}
nav.toc{padding:8px 32px;border-bottom:1px solid var(--line);font-size:14px}
nav.toc a{margin-right:14px;color:var(--accent);text-decoration:none;white-space:nowrap}
main{max-width:1100px;padding:8px 32px 48px}
section{border-bottom:1px solid var(--line);padding:8px 0 18px}
h2{font-size:20px;margin:18px 0 8px}
h3{font-size:16px;margin:14px 0 6px}
p.note,.note{color:var(--muted);font-size:13px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
caption{text-align:left;color:var(--muted);padding-bottom:4px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--soft)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre,.hash{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
pre{background:var(--soft);padding:8px 10px;overflow-x:auto;border:1px solid var(--line)}
.hash{word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dt{color:var(--muted)}dd{margin:0}
figure{margin:8px 0 14px}
figcaption{color:var(--muted);font-size:13px}
svg.chart{max-width:100%;height:auto;font:11px system-ui,"DejaVu Sans",sans-serif;fill:var(--fg)}
svg.chart .grid{stroke:#eaeef2;stroke-width:1}
svg.chart .axis{stroke:#57606a;stroke-width:1}
svg.chart .ref{stroke:#888;stroke-width:1;stroke-dasharray:4 3}
svg.chart .whisker{stroke:#1b1f24;stroke-width:1}
mark.copied{background:var(--mark);border-bottom:2px solid #d4a72c;padding:0 1px}
.traced{background:var(--soft);border:1px solid var(--line);padding:10px;white-space:pre-wrap;line-height:1.8}
.snippet{font-size:13px}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;border:1px solid var(--line);white-space:nowrap}
.auto{background:#dafbe1}.user{background:#fff8c5}.na{background:#eaeef2}.missing{background:#ffebe9}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
"""


def page(title: str, subtitle: Any, sections: Sequence[tuple[str, str, Html]]) -> str:
    """The whole document: CSP, inline style, a table of contents and one <section> per (id, title, html)."""
    toc = "\n".join(f'<a href="#{escape(sid)}">{esc(stitle)}</a>' for sid, stitle, _ in sections)
    body = "\n".join(f'<section id="{escape(sid)}"><h2>{esc(stitle)}</h2>{content}</section>'
                   for sid, stitle, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            '<link rel="icon" href="data:,">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
            f'<header class="top"><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>'
            f'<nav class="toc">{toc}</nav><main>{body}</main></body></html>\n')
