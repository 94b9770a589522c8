"""End to end: a real testbed run with honest logged serving and post-training claimed as
serving; the posttrain_* properties pass the honest phase and catch the naive RL phase."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from inspectorate.testbed import run_testbed
from inspectorate.trace import load_run
from inspectorate.verify import _posttrain as P
from inspectorate.verify import check_property
from inspectorate.verify._evidence import collect
from inspectorate.verify._properties import Context

pytestmark = pytest.mark.slow
H100 = Path(__file__).resolve().parents[1] / "data" / "rundirs" / "h100_two_hosts"


def test_naive_rl_is_caught_and_honest_serving_passes(tmp_path, corpus_path):
    phases = ["honest_serve_logged_tiny", "pt_rl_full_naive_k1_tiny"]
    run = run_testbed("test", "h0", tmp_path / "run", phases=phases, corpus=corpus_path, progress=False)
    assert (run / "served" / "pt_rl_full_naive_k1_tiny" / "declared.pt").is_file()
    found = {}
    for ev in collect(load_run(run)):
        found[ev.name] = {
            f.property: str(f.decision)
            for f in (fn(ev, Context()) for fn in (P.resident_state, P.weight_writes, P.served_drift))
        }
    honest, naive = found["honest_serve_logged_tiny"], found["pt_rl_full_naive_k1_tiny"]
    assert "inconsistent" not in honest.values(), honest
    # It saved the policy and its live policy moved: on a quiet box both checks fire
    # (three local runs); under CI's load a 2.5 s phase ran few updates and one of them
    # stayed quiet once each way (2026-12-07), so the end-to-end claim is that the phase
    # is caught; each check's own power is tested in tests/verify/test_posttrain_props.py.
    fired = {k for k, v in naive.items() if v == "inconsistent"}
    assert fired & {"posttrain_served_drift", "posttrain_weight_writes"}, naive
    # the plugin conformance battery: deterministic, JSON evidence, fires here, quiet on a
    # run without served logs (the seed's H100 layout)
    for name in ("posttrain_weight_writes", "posttrain_served_drift"):
        check_property(name, run, H100)
