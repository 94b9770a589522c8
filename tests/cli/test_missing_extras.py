"""A missing optional extra is exit 2 and one line naming the extra, never an internal error.

Each case runs the real CLI in a child interpreter whose ``sys.modules[NAME] = None``
makes ``import NAME`` fail exactly as it does where the extra is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspectorate.data import commitment_path, seed_path
from inspectorate.errors import MissingExtra, import_optional, missing_extra

CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"


def cli_without(module: str, *args: object) -> tuple[int, str, str]:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from inspectorate.cli import invoke\n"
        "sys.exit(invoke(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


def _files(tmp_path: Path) -> dict[str, Path]:
    names = {"log": "served.jsonl", "ckpt": "model.pt", "claim": "claim.json", "prompts": "prompts.txt"}
    paths = {key: tmp_path / name for key, name in names.items()}
    for path in paths.values():
        path.write_text("{}\n")
    return paths


@pytest.mark.parametrize(
    ("module", "extra", "argv"),
    [
        ("torch", "testbed", lambda f, t: ["difr", "verify", f["log"], "--reference", f["ckpt"]]),
        ("torch", "testbed", lambda f, t: ["replay", f["claim"], "--corpus", CORPUS]),
        ("torch", "testbed", lambda f, t: ["testbed", "run", "--corpus", CORPUS, "--out", t / "run"]),
        (
            "distributed",
            "scale",
            lambda f, t: [
                "check",
                seed_path("legit_finetune"),
                "-c",
                commitment_path("frontier-training-cap"),
                "--engine",
                "dask",
            ],
        ),
    ],
    ids=["difr-verify", "replay", "testbed-run", "check-dask"],
)
def test_a_missing_extra_is_exit_2_naming_it(tmp_path, module, extra, argv):
    code, out, err = cli_without(module, *argv(_files(tmp_path), tmp_path))
    assert code == 2, err
    assert (
        err.strip()
        == f"error: {module} is not installed (the [{extra}] extra): pip install 'inspectorate[{extra}]'"
    )
    assert "internal error" not in err and "Traceback" not in err


def test_the_same_commands_get_past_the_import_with_the_extra(tmp_path):
    """The control: with torch present the same command fails later, on the file itself."""
    pytest.importorskip("torch")
    files = _files(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspectorate.cli",
            "difr",
            "verify",
            str(files["log"]),
            "--reference",
            str(files["ckpt"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "is not installed" not in proc.stderr


def test_library_calls_raise_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    from inspectorate.verify._calibration import auroc

    with pytest.raises(MissingExtra, match=r"pip install 'inspectorate\[calibrate\]'"):
        auroc([0.1, 0.9], [0, 1])
    with pytest.raises(ModuleNotFoundError):  # a module no extra provides: a broken install, not exit 2
        import_optional("inspectorate_no_such_module")


def test_only_optional_modules_map_to_an_extra():
    assert missing_extra(ModuleNotFoundError(name="torch.nn")).extra == "testbed"
    assert missing_extra(ModuleNotFoundError(name="anthropic")).extra == "agent"
    assert missing_extra(ModuleNotFoundError(name="sklearn.isotonic")).extra == "calibrate"
    assert missing_extra(ModuleNotFoundError(name="yaml")) is None  # core: a broken install
