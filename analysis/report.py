"""A readable report of a study: ``report.md`` (figures linked) and ``report.html`` (one
self-contained file, figures embedded), from a list of sections.

A section is ``(title, blocks)``; a block is a paragraph (str), a table
``{"table": rows, "header": [...]}`` or a figure ``{"figure": "file.png", "caption": "..."}``
with paths relative to the report's folder.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any, Sequence

__all__ = ["write_report", "fmt"]

Block = Any
Section = tuple[str, Sequence[Block]]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.5}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #ccc;margin-top:2.2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
th,td{border:1px solid #bbb;padding:.25rem .6rem;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9rem;color:#555}code{background:#f3f3f3;padding:0 .2rem}
"""


def fmt(x: Any, digits: int = 3) -> str:
    """Compact number formatting for tables (floats to ``digits`` significant figures)."""
    if isinstance(x, float):
        if x != x:
            return "n/a"
        if x == 0:
            return "0"
        if abs(x) < 1e-3 or abs(x) >= 1e5:
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return str(x)


def _md_inline_to_html(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    return t


def _table_md(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _table_html(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{_md_inline_to_html(fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def write_report(folder: str | Path, title: str, sections: Sequence[Section], stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.html`` into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", ""]
    ht = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
          f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for sec_title, blocks in sections:
        md += [f"## {sec_title}", ""]
        ht.append(f"<h2>{html.escape(sec_title)}</h2>")
        for b in blocks:
            if isinstance(b, str):
                md += [b, ""]
                paras = [p for p in b.split("\n\n") if p.strip()]
                for p in paras:
                    if p.lstrip().startswith("```"):
                        code = p.strip().strip("`")
                        ht.append(f"<pre>{html.escape(code)}</pre>")
                    elif all(line.lstrip().startswith("- ") for line in p.strip().splitlines()):
                        items = "".join(f"<li>{_md_inline_to_html(line.lstrip()[2:])}</li>" for line in p.strip().splitlines())
                        ht.append(f"<ul>{items}</ul>")
                    else:
                        ht.append(f"<p>{_md_inline_to_html(p)}</p>")
            elif "table" in b:
                md += [_table_md(b["table"], b["header"]), ""]
                if b.get("caption"):
                    md += [f"*{b['caption']}*", ""]
                ht.append(_table_html(b["table"], b["header"]))
                if b.get("caption"):
                    ht.append(f"<p><i>{_md_inline_to_html(b['caption'])}</i></p>")
            elif "figure" in b:
                rel = str(b["figure"])
                cap = b.get("caption", "")
                md += [f"![{cap}]({rel})", "", f"*{cap}*", ""]
                p = folder / rel
                if p.exists():
                    data = base64.b64encode(p.read_bytes()).decode()
                    src = f"data:image/png;base64,{data}"
                else:
                    src = rel
                ht.append(f"<figure><img src='{src}' alt='{html.escape(cap)}'><figcaption>"
                          f"{_md_inline_to_html(cap)}</figcaption></figure>")
            else:
                raise ValueError(f"unknown report block {b!r}")
    ht.append("</body></html>")
    md_path = folder / f"{stem}.md"
    html_path = folder / f"{stem}.html"
    md_path.write_text("\n".join(md))
    html_path.write_text("\n".join(ht))
    return md_path, html_path
