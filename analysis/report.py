"""A readable report of a study from one Markdown source: ``report.md`` (figures linked) and
``report.html`` (one self-contained file, figures embedded), the HTML rendered from the very same
Markdown by markdown-it-py (CommonMark with tables) inside a jinja2 page template.

A section is ``(title, blocks)``; a block is

* a paragraph or list (str, Markdown);
* a table ``{"table": rows, "header": [...], "caption": "..."}`` (cells formatted by :func:`fmt`,
  ``|`` escaped so that a cell such as ``mean |shift|`` cannot break the table);
* a figure ``{"figure": "file.png", "caption": "..."}`` (path relative to the report's folder);
* a warning ``{"warning": "..."}`` (a block quote headed **Warning**: a number the files flag).
"""
from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["write_report", "render_markdown", "render_html", "fmt"]

Block = Any
Section = tuple[str, Sequence[Block]]

_MD = """# {{ title }}
{% for title, blocks in sections %}
## {{ title }}
{% for block in blocks %}
{{ block }}
{% endfor %}{% endfor %}"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:62rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.5}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #ccc;margin-top:2.2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid #bbb;padding:.25rem .6rem;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd}
blockquote{margin:1rem 0;padding:.4rem 1rem;border-left:5px solid #d9822b;background:#fff6e8}
code{background:#f3f3f3;padding:0 .2rem}em{color:#555}
</style></head>
<body>
{{ body }}
</body></html>
"""


def fmt(x: Any, digits: int = 3) -> str:
    """Compact number formatting for tables (floats to ``digits`` significant figures; nan: n/a)."""
    if isinstance(x, float):
        if x != x:
            return "n/a"
        if x == 0:
            return "0"
        if abs(x) < 1e-3 or abs(x) >= 1e5:
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return str(x)


def _cell(x: Any) -> str:
    return fmt(x).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _block_md(b: Block) -> str:
    if isinstance(b, str):
        return b
    if not isinstance(b, dict):
        raise ValueError(f"unknown report block {b!r}")
    if "table" in b:
        header = [_cell(h) for h in b["header"]]
        for row in b["table"]:
            if len(row) != len(header):
                raise ValueError(f"report table row has {len(row)} cells, the header {len(header)}: {row!r}")
        # numbers right-aligned, text left-aligned (a column of numbers only: right)
        numeric = [all(isinstance(r[j], (int, float, np.integer, np.floating)) and not isinstance(r[j], bool)
                       for r in b["table"]) for j in range(len(header))]
        lines = ["| " + " | ".join(header) + " |", "|" + "".join(" ---: |" if n else " :--- |" for n in numeric)]
        for row in b["table"]:
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        if b.get("caption"):
            lines += ["", f"*{b['caption']}*"]
        return "\n".join(lines)
    if "figure" in b:
        cap = str(b.get("caption", ""))
        alt = cap.replace("[", "(").replace("]", ")").replace("\n", " ")
        return f"![{alt}]({b['figure']})\n\n*{cap}*" if cap else f"![figure]({b['figure']})"
    if "warning" in b:
        text = str(b["warning"]).replace("\n", "\n> ")
        return f"> **Warning:** {text}"
    raise ValueError(f"unknown report block {b!r}")


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """The report's Markdown source (the one source of both files)."""
    from jinja2 import Environment

    env = Environment(autoescape=False, keep_trailing_newline=True, trim_blocks=False)
    secs = [(t, [_block_md(b) for b in blocks]) for t, blocks in sections]
    return env.from_string(_MD).render(title=title, sections=secs)


def render_html(markdown: str, title: str, folder: str | Path | None = None) -> str:
    """HTML of ``markdown`` (markdown-it-py, CommonMark + tables; raw HTML in the source is
    escaped) in the page template; images found under ``folder`` are embedded as data URIs."""
    from jinja2 import Environment
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    if folder is not None:
        for tok in tokens:
            for child in tok.children or []:
                if child.type == "image":
                    src = str(child.attrGet("src") or "")
                    path = Path(folder) / src
                    if src and not src.startswith(("data:", "http:", "https:")) and path.is_file():
                        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                        child.attrSet("src", f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}")
    body = md.renderer.render(tokens, md.options, {})
    return Environment(autoescape=True).from_string(_PAGE).render(title=title, body=_Markup(body))


class _Markup(str):
    """Already-safe HTML for the template (jinja2 escapes everything else)."""

    def __html__(self) -> str:
        return str(self)


def write_report(folder: str | Path, title: str, sections: Sequence[Section], stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.html`` (rendered from the same Markdown) into ``folder``;
    returns their paths. Raises ValueError for an unknown block or a table row of the wrong width."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = render_markdown(title, sections)
    md_path, html_path = folder / f"{stem}.md", folder / f"{stem}.html"
    md_path.write_text(text, encoding="utf-8")
    html_path.write_text(render_html(text, title, folder), encoding="utf-8")
    return md_path, html_path
