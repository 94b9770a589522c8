"""The claim's code_commit is enforced: a replay runs only the code the claim names."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import numpy as np
import torch

from inspectorate.cli import invoke
from inspectorate.replay import code_fingerprint, read_claim, replay_claim, replay_finding
from inspectorate.replay._attacks import metric_inflated
from inspectorate.replay._code import TRAINING_MODULES
from inspectorate.verify._recomputed import read_recomputed

CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"


def _rename_code(claim, out: Path, value: str):
    """The claim as a prover would ship it with ``code_commit`` set to ``value``."""
    forged = metric_inflated(claim, out, delta=0.0)
    forged.code_commit = value
    forged.write()
    return read_claim(forged.base / "claim.json")


def test_fingerprint_is_the_training_sources_and_torch():
    value = code_fingerprint()
    assert value.startswith("inspectorate-train:sha256:") and len(value.split(":")[-1]) == 64
    # recomputed independently from the files the modules were imported from
    digest = hashlib.sha256()
    fields = [f"torch {torch.__version__}".encode(), f"numpy {np.__version__}".encode()]
    for name in TRAINING_MODULES:
        path = Path(importlib.import_module(name).__file__)
        fields += [f"module {name}".encode(), path.read_bytes()]
    for f in fields:
        digest.update(len(f).to_bytes(8, "big") + f)
    assert value == "inspectorate-train:sha256:" + digest.hexdigest()
    assert code_fingerprint(TRAINING_MODULES[:2]) != value


def test_record_run_writes_the_fingerprint_and_the_honest_claim_replays(honest, corpus):
    claim = read_claim(honest.base / "claim.json")
    assert claim.code_commit == code_fingerprint()
    result = replay_claim(claim, corpus, segments=[1])
    assert result.decision == "consistent", result.reasons
    assert result.to_dict()["code_commit"] == {
        "claimed": claim.code_commit,
        "replayed_with": code_fingerprint(),
    }


def test_edited_code_commit_is_indeterminate_naming_both(honest, corpus, tmp_path):
    other = "inspectorate-train:sha256:" + "0" * 64
    forged = _rename_code(honest, tmp_path / "e", other)
    result = replay_claim(forged, corpus)
    assert result.decision == "unverifiable" and result.exit_code == 1 and result.segments == []
    (reason,) = result.reasons
    assert other in reason and code_fingerprint() in reason and "cannot replay" in reason
    finding = replay_finding(result)
    assert finding["decision"] == "unverifiable" and finding["score"] == 0.0


def test_unknown_code_commit_is_indeterminate(honest, corpus, tmp_path):
    forged = _rename_code(honest, tmp_path / "u", "unknown")
    result = replay_claim(forged, corpus, segments=[0])
    assert result.decision == "unverifiable" and "'unknown'" in result.reasons[0]


def test_verifier_declares_the_code_it_replays_with(honest, corpus, tmp_path):
    forged = _rename_code(honest, tmp_path / "g", "git:lab/train@0a1b2c3")
    # a verifier that checked out git:lab/train@0a1b2c3 says so; the replay then runs
    result = replay_claim(forged, corpus, segments=[2], code="git:lab/train@0a1b2c3")
    assert result.decision == "consistent", result.reasons
    assert replay_claim(honest, corpus, segments=[2], code="git:lab/train@0a1b2c3").decision == "unverifiable"


def test_cli_code_commit(honest, tmp_path, capsys):
    forged = _rename_code(honest, tmp_path / "c", "git:lab/train@0a1b2c3")
    claim, found = str(forged.base / "claim.json"), tmp_path / "finding.json"
    args = ["replay", claim, "--corpus", str(CORPUS), "--segment", "0"]
    assert invoke([*args, "--finding-out", str(found)]) == 1
    out = capsys.readouterr().out
    assert "UNVERIFIABLE" in out and "git:lab/train@0a1b2c3" in out and code_fingerprint() in out
    _, finding = read_recomputed(f"pretrain={found}")
    assert finding.decision == "unverifiable"
    assert invoke([*args, "--code-commit", "git:lab/train@0a1b2c3", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["code_commit"]["replayed_with"] == "git:lab/train@0a1b2c3"
