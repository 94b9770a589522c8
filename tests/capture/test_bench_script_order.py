"""bench/capture_workloads.py's plans, without a capture: ``--order script`` trains
before it evaluates and serves (the optimizer alive, as a training script runs), the
default keeps serve and eval first; the stranger loader's declared sizes are its own
module's, and its declared-size twin is the 20x model the lie declares."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "workloads" / "stranger"))
from loader_lm import LoaderLM  # noqa: E402


def _bench():
    spec = importlib.util.spec_from_file_location(
        "capture_workloads", ROOT / "bench" / "capture_workloads.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _params(config: dict) -> int:
    c = {"d": 128, "layers": 2, "heads": 4, "ctx": 64} | config
    with torch.device("meta"):
        model = LoaderLM(65, c["d"], c["layers"], c["heads"], c["ctx"])
    return sum(p.numel() for p in model.parameters())


def test_script_order_trains_first_and_default_is_unchanged() -> None:
    bench = _bench()
    honest = ["honest_idle", "honest_train", "honest_eval", "honest_serve"]
    script = bench.plan("s_loader", 1.0, "competent", False, True, True, order="script")
    default = bench.plan("s_loader", 1.0, "competent", False, True, True)
    assert [p["name"] for p in script["phases"][:4]] == honest
    assert [p["name"] for p in default["phases"][:4]] == [
        "honest_idle",
        "honest_serve",
        "honest_eval",
        "honest_train",
    ]
    assert [p["name"] for p in script["phases"][4:]] == [p["name"] for p in default["phases"][4:]]
    with pytest.raises(ValueError):
        bench.plan("s_loader", 1.0, "naive", False, order="alphabetical")


@pytest.mark.parametrize("name", ["s_loader", "s_loader_wide"])
def test_loader_declared_sizes_are_its_modules(name: str) -> None:
    bench = _bench()
    config = bench.WORKLOADS[name]["config"]
    assert bench.n_params(name, config) == _params(config)
    twin = bench.shrunk_config(name, config, bench.SHRINK)
    assert bench.n_params(name, config, bench.SHRINK) == _params(twin)
    assert _params(twin) < _params(config) / 15
    plan = bench.plan(name, 1.0, "competent", False, recomputed=True)
    shadow = {p["name"]: p.get("shadow_config") for p in plan["phases"]}
    assert shadow["lie_big_as_small_serve"] == shadow["lie_big_as_small_eval"] == twin
