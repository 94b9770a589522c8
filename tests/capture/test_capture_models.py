"""A declared model travels with the run: the claims file's ``models:`` hands its
description over (``RUN/models/NAME.json``) and the verifier's spot-check builds it,
for a workload that shares no code with the testbed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from inspectorate.capture import _capture
from inspectorate.errors import InputError
from inspectorate.models import RNNSpec, write_model_file

pytest.importorskip("torch")

# A GRU language model written here, not built from inspectorate's model code: the
# description is the only thing the verifier learns about it.
WORKLOAD = """
import time, torch
from torch import nn
from inspectorate import capture

class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.rnn, self.head = nn.Embedding(40, 24), nn.GRU(24, 48, 2, batch_first=True), nn.Linear(48, 40)
    def forward(self, x):
        return self.head(self.rnn(self.embed(x))[0])

torch.set_num_threads(1)
model = LM()
opt = torch.optim.Adam(model.parameters())
with capture.phase("train", op="training", model="tinygru", batch_size=4, sequence_length=32):
    end = time.process_time() + 1.5
    while time.process_time() < end:
        x = torch.randint(0, 40, (4, 33))
        loss = nn.functional.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        loss.backward(); opt.step(); opt.zero_grad()
        capture.tokens(4 * 32)
"""


def test_models_listed_in_the_claims_file_are_checked(tmp_path: Path) -> None:
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"models": {"../evil": "x.json"}}))
    with pytest.raises(InputError, match="model name"):
        _capture.load_claims(claims)
    claims.write_text(json.dumps({"models": {"tinygru": "missing.json"}}))
    with pytest.raises(InputError, match="no description file"):
        _capture.load_claims(claims)


@pytest.mark.slow
def test_a_declared_model_is_built_by_the_spot_check(tmp_path: Path) -> None:
    from inspectorate.verify import verify_run

    spec = RNNSpec("gru", 40, 24, 48, 2)
    write_model_file(spec, tmp_path / "tinygru.json")
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"models": {"tinygru": "tinygru.json"}}))
    script = tmp_path / "lm.py"
    script.write_text(WORKLOAD)
    result = _capture.capture([sys.executable, str(script)], claims, tmp_path / "run", shared_host=True)
    assert result.exit_code == 0
    assert (tmp_path / "run" / "models" / "tinygru.json").read_bytes() == (
        tmp_path / "tinygru.json"
    ).read_bytes()
    phase = next(p for p in verify_run(tmp_path / "run").phases if p.phase == "train")
    compute = next(f for f in phase.findings if f.property == "compute")
    assert compute.decision != "unverifiable", compute.evidence  # the verifier priced the declared GRU
    check = compute.evidence["spot_check"]
    assert check["family"] == "rnn" and check["n_params"] == spec.n_params()
