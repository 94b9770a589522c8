"""A served-output / eval re-computation settles P2 only for the phase it re-computes."""

from __future__ import annotations

from inspectorate.capture._nonce import derive_seed
from inspectorate.verify._evidence import Claim
from inspectorate.verify._recomputed import bind_served, settle
from inspectorate.verify._registry import Finding


def _served(
    n_params: int = 1000, tokens: int = 960, seed: int | None = None, prop: str = "served_model_identity"
):
    ev = {"n_params": n_params, "tokens": tokens, "seed": seed}
    return Finding(prop, 0.1, "consistent", ev, basis=("difr",))


def _claim(op: str = "inference", n_params: int | None = 1000) -> Claim:
    return Claim(label=op, activity=None, op=op, size=None, n_params=n_params)


def test_bound_served_log_settles_p2():
    rec = bind_served(_served(seed=derive_seed("n1", "serve:s")), _claim(), 1000.0, "n1", "s")
    assert rec.decision == "consistent" and rec.evidence["settles"] == ["p2_model_size"]
    p2 = Finding("p2_model_size", 0.0, "unverifiable", {})
    out = settle([p2], [rec])
    assert out[0].decision == "consistent" and out[0].basis == ("difr",)


def test_weights_of_another_size_contradict_the_claim():
    rec = bind_served(_served(n_params=20_000), _claim(), 1000.0, None, "s")
    assert rec.decision == "inconsistent"
    assert "parameters" in rec.evidence["binding"][0]


def test_seed_not_from_the_challenge_is_inconsistent():
    rec = bind_served(_served(seed=1234), _claim(), 1000.0, "n1", "s")
    assert rec.decision == "inconsistent"
    assert "challenge" in rec.evidence["binding"][0]


def test_log_covering_a_fraction_of_the_claimed_tokens_is_inconsistent():
    rec = bind_served(_served(tokens=300), _claim(), 1000.0, None, "s")
    assert rec.decision == "inconsistent"
    assert "tokens" in rec.evidence["binding"][0]


def test_windows_counting_prefilled_prompts_bind_but_not_beyond_them():
    """A server that counts its prefill (the testbed: 8 prompt + 24 sampled tokens a
    sequence) binds; prompts do not excuse a log short of what the windows claim."""
    ev = _served(tokens=750)
    ev.evidence["prompt_tokens"] = 250
    assert bind_served(ev, _claim(), 1000.0, None, "s").decision == "consistent"
    ev.evidence["prompt_tokens"] = 20
    assert bind_served(ev, _claim(), 1000.0, None, "s").decision == "inconsistent"


def test_served_log_on_a_training_claim_is_inconsistent_and_eval_needs_eval():
    assert bind_served(_served(), _claim("training"), 1000.0, None, "s").decision == "inconsistent"
    ev = _served(prop="eval_recompute")
    assert bind_served(ev, _claim("inference"), 1000.0, None, "s").decision == "inconsistent"
    assert bind_served(ev, _claim("eval"), 1000.0, None, "s").evidence["settles"] == ["p2_model_size"]


def test_unbound_legacy_finding_and_failures_pass_through():
    legacy = Finding("served_model_identity", 0.1, "consistent", {"tokens": 5}, basis=("difr",))
    assert bind_served(legacy, _claim(), 1000.0, None, "s") is legacy
    bad = Finding("served_model_identity", 1.0, "inconsistent", {"n_params": 1}, basis=("difr",))
    assert bind_served(bad, _claim(), 1000.0, None, "s") is bad


def test_handed_over_weights_count_as_checkpoint_bytes_only_when_named(tmp_path):
    import json

    from inspectorate.verify._evidence import _checkpoint_bytes

    folder = tmp_path / "claims" / "serve"
    folder.mkdir(parents=True)
    (folder / "weights.pt").write_bytes(b"x" * 1000)
    assert _checkpoint_bytes(tmp_path, "serve") == 0.0  # no log names it
    (folder / "served.jsonl").write_text(json.dumps({"server": {"weights": "weights.pt"}}) + "\n")
    assert _checkpoint_bytes(tmp_path, "serve") == 1000.0
    (folder / "served.jsonl").write_text(json.dumps({"server": {"weights": "../other.pt"}}) + "\n")
    assert _checkpoint_bytes(tmp_path, "serve") == 0.0  # no path out of the folder


def test_outputs_of_the_declared_model_do_not_settle_p2_beside_room_for_a_second_one():
    """The competent twin: a larger model does the work while the declared one produces
    the log. The log re-computes, but a footprint with room for a second model at least
    the declared size beside it leaves P2 open."""
    rec = bind_served(_served(seed=derive_seed("n1", "serve:s")), _claim(), 1000.0, "n1", "s")
    roomy = Finding("p2_model_size", 0.0, "unverifiable", {"footprint_room_for_a_second_model": True})
    out = settle([roomy], [rec])
    assert out[0].decision == "unverifiable" and "second model" in out[0].evidence["settled"]
    tight = Finding("p2_model_size", 0.0, "unverifiable", {"footprint_room_for_a_second_model": False})
    assert settle([tight], [rec])[0].decision == "consistent"


def test_room_for_a_second_model_from_the_footprint():
    from inspectorate.verify._calibration import Calibration
    from inspectorate.verify._properties import _room_for_second

    cal = Calibration()

    class Ev:
        def __init__(self, fp: float, op: str = "inference") -> None:
            self.sensor = {"footprint_b": fp, "mem_procs": 2}
            self.claim = _claim(op, 124_000_000)

    one_copy = 2 * 124e6 * 4 + 300e6  # two ranks serving 124M, 300 MB of residue
    assert _room_for_second(Ev(one_copy), cal) is False  # type: ignore[arg-type]
    twin = one_copy + 2 * 186e6 * 4  # a 1.5x model beside the declared one on each rank
    assert _room_for_second(Ev(twin), cal) is True  # type: ignore[arg-type]
    assert _room_for_second(Ev(twin, "idle"), cal) is None  # type: ignore[arg-type]
