"""A report as a list of blocks (headings, paragraphs, tables, figures) rendered twice: as
Markdown beside its PNGs, and as one self-contained HTML file (figures embedded as base64,
no external script or style sheet, so it opens offline in any browser)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, header: list[str], rows: list[list[str]], align: str | None = None) -> None:
        self.blocks.append(("table", (header, rows, align)))

    def figure(self, path: Path, caption: str = "") -> None:
        self.blocks.append(("figure", (Path(path), caption)))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    # ---- rendering -------------------------------------------------------------------
    def markdown(self, relative_to: Path) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                out += ["#" * level + " " + text, ""]
            elif kind == "para":
                out += [value, ""]
            elif kind == "bullets":
                out += [f"- {x}" for x in value] + [""]
            elif kind == "table":
                header, rows, align = value
                align = align or "l" + "r" * (len(header) - 1)
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
                out += ["| " + " | ".join(r) + " |" for r in rows]
                out.append("")
            elif kind == "figure":
                path, caption = value
                rel = _relative(path, relative_to)
                out += [f"![{caption}]({rel})", ""]
                if caption:
                    out += [f"*{caption}*", ""]
            elif kind == "code":
                out += ["```", value, "```", ""]
        return "\n".join(out)

    def html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                body.append(f"<h{level}>{_inline(text)}</h{level}>")
            elif kind == "para":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in value) + "</ul>")
            elif kind == "table":
                header, rows, align = value
                align = align or "l" + "r" * (len(header) - 1)
                th = "".join(f"<th>{_inline(h)}</th>" for h in header)
                trs = []
                for r in rows:
                    tds = "".join(f'<td class="{"num" if a == "r" else ""}">{_inline(c)}</td>'
                                  for c, a in zip(r, align, strict=False))
                    trs.append(f"<tr>{tds}</tr>")
                body.append(f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>")
            elif kind == "figure":
                path, caption = value
                data = base64.b64encode(Path(path).read_bytes()).decode()
                body.append(f'<figure><img alt="{html.escape(caption)}" '
                            f'src="data:image/png;base64,{data}"/>'
                            f"<figcaption>{_inline(caption)}</figcaption></figure>")
            elif kind == "code":
                body.append(f"<pre>{html.escape(value)}</pre>")
        return _PAGE.format(title=html.escape(self.title), body="\n".join(body))


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)


def _inline(text: str) -> str:
    """Escape, then the little Markdown the reports use: `code`, **bold**, *italic*."""
    t = html.escape(str(text))
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", t)
    return t


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1150px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.8em 0 1.4em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}
th {{ background: #f2f2f2; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: 0.9em; }}
code, pre {{ background: #f6f6f6; font-size: 0.9em; }} pre {{ padding: 0.6em; overflow-x: auto; }}
h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }}
</style></head><body>
{body}
</body></html>
"""
