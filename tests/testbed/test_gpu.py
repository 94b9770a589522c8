"""GPU path: the gpu profile, shrunk, on a CUDA host (skipped elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_gpu_profile_writes_nvsmi_and_gpu_chips(tmp_path: Path) -> None:
    from inspectorate.testbed import run_testbed, summarize_run

    corpus = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"
    out = run_testbed(
        "gpu",
        "g0",
        tmp_path / "run",
        phases="honest_pretrain_tiny,idle,honest_inference_small",
        scale=0.005,
        corpus=corpus,
        progress=False,
    )
    assert (out / "nvsmi.csv").stat().st_size > 0
    chips = {json.loads(line)["chip_id"] for line in (out / "windows.jsonl").read_text().splitlines()}
    assert all("-gpu" in c for c in chips) and len(chips) == 2
    rows = {r["phase"]: r for r in summarize_run(out)}
    assert (
        rows["honest_pretrain_tiny"]["collectives"] > 0 and rows["honest_inference_small"]["collectives"] == 0
    )
