"""The plotting library, inlined: Vega, Vega-Lite and vega-embed as one JS bundle.

Why Vega-Lite through ``vl-convert-python`` (the ``[report]`` extra): it ships the three
libraries and bundles them offline into one ~0.9 MB script, so a report is one file that
opens with no network (Plotly's inlined ``plotly.min.js`` alone is 4.8 MB, the whole 5 MB
page budget). The bundle is built once per vl-convert version and cached on disk, because
building it costs ~2 s and a report should render in well under 3 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError

INSTALL_HINT = "pip install 'inspectorate[report]'"


def vl_convert() -> Any:
    """The vl-convert module, or InputError naming the extra (the CLI exits 2 on it)."""
    try:
        import vl_convert
    except ImportError:
        raise InputError(f"the HTML report needs the plotting library: {INSTALL_HINT}") from None
    return vl_convert


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inspectorate"


def javascript_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one classic script that sets ``window.vegaEmbed``."""
    vlc = vl_convert()
    version = getattr(vlc, "__version__", "unknown")
    cached = _cache_dir() / f"vega-bundle-{version}.js"
    try:
        text = cached.read_text(encoding="utf-8")
        if "window.vegaEmbed" in text:
            return text
    except OSError:
        pass
    text = vlc.javascript_bundle()
    if "</script" in text.lower():  # would end the inline <script> early
        text = text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(cached)  # atomic: a concurrent reader never sees half a bundle
    except OSError:
        pass  # a read-only home costs the 2 s again next time, nothing else
    return text


def versions() -> dict[str, str]:
    """Library versions printed in the page footer (what rendered these plots)."""
    vlc = vl_convert()
    return {
        "vega": vlc.get_vega_version(),
        "vega-lite": vlc.get_vegalite_versions()[-1],
        "vega-embed": vlc.get_vega_embed_version(),
    }
