"""`make demo` installs only what the demo imports; `make install` / `make test` install everything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inspectorate.errors import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
FULL = {"dev", "testbed", "scale", "agent", "calibrate"}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make_n(*args: str, venv: Path) -> list[str]:
    """The commands ``make`` would run for a fresh venv at ``venv`` (dry run)."""
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def demo_extras(venv: Path) -> set[str]:
    out = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT),
            f"VENV={venv}",
            "--eval=print-demo-extras: ; @echo '$(DEMO_EXTRAS)'",
            "print-demo-extras",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {e for e in out.stdout.strip().split(",") if e}


def installed_extras(lines: list[str]) -> set[str]:
    """Extras named by the ``pip install -e '.[...]'`` lines."""
    found: set[str] = set()
    for line in lines:
        if "pip install" in line and " -e " in line and "[" in line:
            found |= set(line.split("[", 1)[1].split("]", 1)[0].split(","))
    return found


def test_make_demo_installs_only_the_demo_extras(tmp_path):
    lines = make_n("demo", venv=tmp_path / "venv")
    assert installed_extras(lines) == demo_extras(tmp_path / "venv")
    assert not any("torch" in line for line in lines) or "testbed" in demo_extras(tmp_path / "venv")
    assert not any("apt-get" in line for line in lines)  # the sandbox's bubblewrap is for redteam
    assert lines[-1].endswith("inspectorate demo")


def test_the_demo_extras_are_one_variable(tmp_path):
    lines = make_n("demo", "DEMO_EXTRAS=testbed", venv=tmp_path / "venv")
    assert installed_extras(lines) == {"testbed"}


def test_make_install_and_test_keep_the_full_set(tmp_path):
    for target in ("install", "test"):
        assert installed_extras(make_n(target, venv=tmp_path / "venv")) == FULL


@pytest.mark.slow
def test_the_demo_runs_with_every_other_extra_missing(tmp_path):
    """What ``make demo`` installs is enough: the demo, with each optional module outside
    DEMO_EXTRAS made unimportable, exits 0."""
    allowed = demo_extras(tmp_path / "venv")
    blocked = sorted(module for module, extra in EXTRAS.items() if extra not in allowed)
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from inspectorate.cli import invoke\n"
        f"sys.exit(invoke(['demo', '--out', {str(tmp_path / 'demo')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" in blocked or "testbed" in allowed
