"""trace reads a partitioned layout through its registry, without importing scale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspectorate.data import seed_path
from inspectorate.trace import read_trace
from inspectorate.trace._layouts import LayoutRegistry


def test_a_lazy_layout_imports_its_module_once_when_first_read(tmp_path):
    registry = LayoutRegistry()
    registry.register_lazy("demo", "marker.txt", "json")  # any importable module
    (tmp_path / "marker.txt").write_text("")
    assert registry.match(tmp_path).name == "demo" and registry.match(tmp_path / "marker.txt") is None
    with pytest.raises(LookupError, match="json registered no reader"):
        registry.reader("demo")  # importing json registers nothing
    registry.register("demo", "marker.txt", lambda path: ("read", path))
    assert registry.reader("demo")(tmp_path) == ("read", tmp_path)


def test_read_trace_finds_the_partitioned_reader_without_scale_imported(tmp_path):
    """In a fresh interpreter: importing trace does not import scale; reading a
    partitioned directory does (through the lazy hook), and gives the same records."""
    source = seed_path("legit_finetune")
    from inspectorate.scale import convert

    convert(source, tmp_path / "parts")
    code = (
        "import sys\n"
        "from inspectorate.trace import read_trace\n"
        "assert 'inspectorate.scale' not in sys.modules, 'trace imported scale'\n"
        f"t = read_trace({str(tmp_path / 'parts')!r})\n"
        "assert 'inspectorate.scale._layout' in sys.modules\n"
        "print(len(t))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(read_trace(source))
    assert Path(tmp_path / "parts" / "manifest.json").exists()
