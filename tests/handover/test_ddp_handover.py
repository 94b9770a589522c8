"""A data-parallel job hands over one training claim: two ranks under
DistributedDataParallel over gloo (tests/workloads/stranger/ddp_llama_handover.py, the
stranger's Llama), each recording its batches through ``training(..., rank=, world=)``.
Replay re-runs both ranks' batches and lands on every checkpoint rank 0 wrote."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from inspectorate import handover  # noqa: E402
from inspectorate.errors import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "workloads" / "stranger" / "ddp_llama_handover.py"
CORPUS = ROOT / "tests" / "data" / "testbed_corpus.txt"


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "sensor.jsonl").write_text(json.dumps({"kind": "start", "nonce": "feedface01"}) + "\n")
    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_ddp_ranks_hand_over_one_claim_that_replays(tmp_path: Path) -> None:
    from inspectorate.models import load_corpus
    from inspectorate.replay import read_claim, replay_claim

    run = _run(tmp_path)
    cmd = [sys.executable, str(SCRIPT), str(run), str(CORPUS), str(_free_port())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = run / "claims" / "t"
    assert not list(folder.glob("*.part"))  # rank 1's batches merged, its part removed
    claim = read_claim(folder / "claim.json")
    assert (claim.spec.world_size, claim.spec.batch_size, claim.spec.steps) == (2, 2, 3)
    corpus = load_corpus(CORPUS)
    result = replay_claim(claim, corpus)
    assert result.decision == "consistent", result.reasons
    assert all(seg.distance < 1e-5 for seg in result.segments)
    # rank 1's batches are part of what replays: the claim with rank 0's in their place does not
    manifest = json.loads((folder / "batches.json").read_text())
    manifest["starts"] = [[step[0], step[0]] for step in manifest["starts"]]
    (folder / "batches.json").write_text(json.dumps(manifest))
    assert replay_claim(read_claim(folder / "claim.json"), corpus).decision == "inconsistent"


def test_ranks_that_disagree_are_one_line_errors(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    import ddp_llama_handover as job

    run = _run(tmp_path)

    def rank(r: int, phase: str = "t") -> handover.TrainingHandover:
        model = job.llama.Llama(job.VOCAB, 16, 1, 2, 1, 24)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        return handover.training(
            phase,
            model,
            opt,
            job.DESC,
            corpus=CORPUS,
            seq_len=8,
            run=run,
            rank=r,
            world=2,
            checkpoint_every_s=1e9,
        )

    with pytest.raises(InputError, match="rank"):
        handover.training(
            "u", torch.nn.Linear(2, 2), None, job.DESC, corpus=CORPUS, seq_len=8, run=run, rank=2, world=2
        )
    zero, one = rank(0), rank(1)
    for _ in range(3):
        zero.step([0, 5])
    one.step([1, 6])
    assert one.finish() is None  # a rank other than 0 only hands its batches over
    with pytest.raises(InputError, match="rank 1 recorded 1 steps") as err:
        zero.finish()
    assert "\n" not in str(err.value)
    lonely = rank(0, "v")
    lonely.step([0, 5])
    with pytest.raises(InputError, match=r"no batches from batches\.json\.r1\.part"):
        lonely.finish(timeout_s=0.2)
