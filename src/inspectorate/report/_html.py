"""One self-contained HTML page: the verdict on top, then sections of tables and plots.

The page loads nothing from the network: the plotting library is inlined (``_vega``),
the specs are inline JSON, the styles are inline. Each plot's element gets
``data-rendered="1"`` once vega-embed has drawn it (or ``data-error`` if it could not),
and ``<body data-plots-done>`` counts them, so a browser test can wait for and check
every plot rather than sleep.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from inspectorate.report import _vega

STATUS_CLASS = {"pass": "pass", "fail": "fail", "open": "open"}


@dataclass
class Section:
    title: str
    html: str = ""
    plots: list[dict[str, Any]] = field(default_factory=list)
    anchor: str = ""
    plots_first: bool = False


@dataclass
class Page:
    title: str
    status: str  # pass | fail | open
    headline: str
    reasons: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from already-escaped cells (callers escape, so cells may hold links)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render(page: Page, generator: str) -> str:
    """The whole document as a string."""
    specs: list[dict[str, Any]] = []
    body = [_header(page)]
    for section in page.sections:
        body.append(_section(section, specs))
    versions = ", ".join(f"{k} {v}" for k, v in _vega.versions().items())
    body.append(f"<footer>{esc(generator)}; plots: {esc(versions)}, inlined.</footer>")
    data = json.dumps(specs, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return _TEMPLATE.format(
        title=esc(page.title),
        css=_CSS,
        body="\n".join(body),
        bundle=_vega.javascript_bundle(),
        specs=data,
        count=len(specs),
    )


def _header(page: Page) -> str:
    facts = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in page.facts)
    reasons = "".join(f"<li>{esc(r)}</li>" for r in page.reasons)
    return (
        f'<header class="verdict {STATUS_CLASS.get(page.status, "open")}">'
        f'<h1>{esc(page.headline)}</h1><p class="title">{esc(page.title)}</p>'
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + (f"<dl>{facts}</dl>" if facts else "")
        + "</header>"
    )


def _section(section: Section, specs: list[dict[str, Any]]) -> str:
    anchor = f' id="{esc(section.anchor)}"' if section.anchor else ""
    parts = [f"<section{anchor}><h2>{esc(section.title)}</h2>"]
    plots = []
    for spec in section.plots:
        plots.append(f'<div class="plot" id="plot-{len(specs)}"></div>')
        specs.append(spec)
    text = [section.html] if section.html else []
    parts += plots + text if section.plots_first else text + plots
    parts.append("</section>")
    return "".join(parts)


_CSS = """
:root{--pass:#1b7f3b;--fail:#c62828;--open:#b26a00;--ink:#1d1d1f;--mute:#666}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 22px 40px}
header.verdict{border-left:10px solid var(--open);background:#fff;padding:14px 20px;border-radius:6px;box-shadow:0 1px 3px #0001}
header.pass{border-color:var(--pass)}header.fail{border-color:var(--fail)}
header h1{margin:0;font-size:26px;letter-spacing:.3px}
header.pass h1{color:var(--pass)}header.fail h1{color:var(--fail)}header.open h1{color:var(--open)}
header .title{margin:2px 0 8px;color:var(--mute);font-family:ui-monospace,monospace;font-size:12px}
ul.reasons{margin:6px 0 8px 18px;padding:0}
dl{display:flex;flex-wrap:wrap;gap:6px 26px;margin:6px 0 0}dl div{min-width:90px}
dt{font-size:11px;color:var(--mute);text-transform:uppercase}dd{margin:0;font-weight:600}
section{background:#fff;margin-top:16px;padding:10px 18px 14px;border-radius:6px;box-shadow:0 1px 3px #0001}
h2{font-size:17px;margin:6px 0 10px}
.plot{width:100%;margin:6px 0 14px}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:4px 0 10px}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;padding:0 6px;border-radius:3px;font-size:11.5px;font-weight:600;color:#fff}
.tag.consistent,.tag.pass{background:var(--pass)}.tag.inconsistent,.tag.fail{background:var(--fail)}
.tag.unverifiable,.tag.open{background:var(--open)}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
tr:target{background:#fff3c4}
details summary{cursor:pointer;color:#245}
.ftag{display:inline-block;margin:1px 2px;padding:0 5px;border-radius:3px;font-size:11.5px;border:1px solid #ddd;cursor:help}
.ftag.consistent{color:var(--pass)}.ftag.unverifiable{color:var(--open)}
.finding{border-left:3px solid var(--fail);padding:2px 8px;margin:2px 0 4px;background:#fff5f5}
footer{margin-top:18px;color:var(--mute);font-size:11.5px}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head><body data-plots-total="{count}" data-plots-done="0"><main>
{body}
</main>
<script>{bundle}</script>
<script>
(function () {{
  var specs = {specs};
  var done = 0;
  specs.forEach(function (spec, i) {{
    var el = document.getElementById("plot-" + i);
    vegaEmbed(el, spec, {{actions: false, renderer: "svg"}}).then(function () {{
      el.setAttribute("data-rendered", "1");
    }}).catch(function (err) {{
      el.setAttribute("data-error", String(err));
      console.error("plot " + i + ": " + err);
    }}).finally(function () {{
      done += 1;
      document.body.setAttribute("data-plots-done", String(done));
    }});
  }});
}})();
</script>
</body></html>
"""
