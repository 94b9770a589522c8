"""An independently written training loop (the workload's own module and optimizer)
hands over a claim of a declared family; the verifier's family module replays it within
tolerance, and a substituted segment is caught."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
sys.path.insert(0, str(WORKLOADS))

import _replay_handover  # noqa: E402
import mlp_lm  # noqa: E402
from corpus import CORPUS  # noqa: E402

from inspectorate.errors import InputError  # noqa: E402
from inspectorate.models import load_corpus  # noqa: E402
from inspectorate.replay import read_claim, replay_claim  # noqa: E402

pytestmark = pytest.mark.skipif(not CORPUS.is_file(), reason=f"needs the corpus file {CORPUS}")


def _handed_over(tmp_path: Path, steps: int = 9, every: int = 3) -> tuple[Any, Path]:
    """9 steps of mlp_lm's own loop (GELU MLP, its AdamW), a checkpoint every 3 steps."""
    torch.manual_seed(0)
    wl = mlp_lm.Workload(hidden=128, batch_size=4, seq_len=8)
    phase = {"name": "honest_train", "do": "train", "seconds": 1.0, "handover": True}
    hand = _replay_handover.begin(wl, phase, str(tmp_path))
    assert hand is not None
    hand.every_s = float("inf")  # checkpoints by step count here, not by time
    for i in range(steps):
        wl.train()
        if (i + 1) % every == 0:
            hand.every_s = 0.0
        hand.step()
        hand.every_s = float("inf")
    path = hand.finish()
    assert path is not None
    return wl, path


@pytest.fixture(scope="module")
def corpus() -> Any:
    return load_corpus(CORPUS)


def test_independent_loop_replays_and_binds(tmp_path: Path, corpus: Any) -> None:
    torch.set_num_threads(1)
    _, path = _handed_over(tmp_path)
    claim = read_claim(path)
    assert [c.step for c in claim.checkpoints] == [0, 3, 6, 9]
    result = replay_claim(claim, corpus)
    assert result.decision == "consistent", result.reasons
    # another module, the same math: not bit-exact, but far inside the tolerance (1e-2)
    assert max(s.distance for s in result.segments) < 1e-4
    summary = result.claim
    assert summary["family"] == "mlp" and summary["start"] == "seed_init" and summary["start_checked"]
    assert summary["tokens"] == 9 * 4 * 8  # one scored position per window


def test_substituted_segment_is_caught(tmp_path: Path, corpus: Any) -> None:
    """Segment 1 trained on other windows than the manifest declares (what a prover
    that substituted a segment must hand over): its replay lands far from checkpoint 2."""
    _, path = _handed_over(tmp_path)
    manifest = path.parent / "batches.json"
    data = json.loads(manifest.read_text())
    for step in range(3, 6):
        data["starts"][step] = [[(s + 7919) % 150_000 for s in data["starts"][step][0]]]
    manifest.write_text(json.dumps(data))
    result = replay_claim(read_claim(path), corpus, segments=[0, 1, 2])
    assert result.decision == "inconsistent"
    far = {s.segment: s.distance for s in result.segments}
    assert far[1] > 0.1 and far[0] < 1e-4 and far[2] < 1e-4, far


def test_declared_optimizer_is_what_replays(tmp_path: Path, corpus: Any) -> None:
    """The declared hyper-parameters replay, not the ones in the checkpoint's optimizer
    state: a claim declaring twice the rate the loop used is caught; an optimizer
    declared without all of its hyper-parameters is refused."""
    _, path = _handed_over(tmp_path, steps=3, every=3)
    data = json.loads(path.read_text())
    data["config"]["lr"] *= 2
    path.write_text(json.dumps(data))
    result = replay_claim(read_claim(path), corpus)
    assert result.decision == "inconsistent" and result.segments[0].distance > 0.1
    data["config"]["optimizer"] = {"name": "sgd", "momentum": 0.9}
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="optimizer sgd must declare exactly"):
        read_claim(path)


def test_gradient_accumulation_must_split_a_step_evenly(tmp_path: Path) -> None:
    """``grad_accum`` micro-batches of equal size: a claim whose steps do not split so is
    refused on reading, not replayed as another run."""
    from inspectorate.replay import TrainSpec

    assert TrainSpec.from_dict({"batch_size": 4, "grad_accum": 2}).grad_accum == 2
    assert TrainSpec.from_dict({}).grad_accum == 1  # older claims: no accumulation
    for bad in (3, 0):
        with pytest.raises(InputError, match="grad_accum"):
            TrainSpec.from_dict({"batch_size": 4, "grad_accum": bad})
