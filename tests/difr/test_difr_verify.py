"""Token- and Activation-DiFR end to end on tiny trained models."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from inspectorate.difr import (
    Checkpoint,
    HonestVariant,
    calibrate,
    generate,
    load_checkpoint,
    model_hash,
    read_log,
    save_checkpoint,
    serve,
    verify_log,
)
from inspectorate.difr._attacks import mix_records, quantize_int8
from inspectorate.difr._finding import difr_finding
from inspectorate.difr._log import LogHeader, write_log
from inspectorate.errors import InputError

# Threads stay at 1 here (two shared cores); thread-count variation is in the benchmark.
FAST_VARIANTS = [
    HonestVariant(1, 8, None, 1000),
    HonestVariant(1, 1, None, 1001),
    HonestVariant(1, 4, 1, 1002),
]


def _verify(path, ckpt, **kw):
    return verify_log(read_log(path), ckpt, variants=FAST_VARIANTS, **kw)


def _served_by(model, ref: Checkpoint, prompts, options, path):
    """What a lying server writes: another model's outputs under the reference's hash."""
    return serve(model, prompts, options, path, vocab=ref.vocab, claimed_hash=ref.model_hash)


def test_checkpoint_round_trip_and_hash(reference, ref_ckpt, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    assert ck.model_hash == model_hash(reference)
    x = torch.randint(0, 10, (1, 12))
    assert torch.equal(ck.model(x)[0], reference.eval()(x)[0])
    torch.save({"format": "inspectorate.checkpoint", "version": 1, "evil": object()}, tmp_path / "p.pt")
    with pytest.raises(InputError, match="not a loadable"):
        load_checkpoint(tmp_path / "p.pt")


def test_honest_log_matches(ref_ckpt, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    serve(ck.model, prompts, replace(options, batch_size=3), tmp_path / "h.jsonl", vocab=ck.vocab)
    report = _verify(tmp_path / "h.jsonl", ck)
    d = report.to_dict()
    assert report.decision == "consistent" and report.exit_code == 0, d["reasons"]
    assert d["token_difr"]["exact_match_rate"] >= 0.98
    assert d["activation_difr"]["max_score"] <= d["activation_difr"]["threshold"]
    finding = difr_finding(report)
    assert finding["decision"] == "consistent" and finding["grade"] == "sensor" and finding["score"] < 0.5


def test_other_seed_model_is_caught_by_both_variants(ref_ckpt, other_seed, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    _served_by(other_seed, ck, prompts, options, tmp_path / "o.jsonl")
    report = _verify(tmp_path / "o.jsonl", ck)
    assert report.decision == "inconsistent"
    assert sorted(report.flagged_token) == list(range(len(prompts)))
    assert sorted(report.flagged_activation) == list(range(len(prompts)))
    assert difr_finding(report)["decision"] == "inconsistent"


def test_int8_quantized_model_is_caught(ref_ckpt, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    _served_by(quantize_int8(ck.model), ck, prompts, options, tmp_path / "q.jsonl")
    report = _verify(tmp_path / "q.jsonl", ck)
    assert report.decision == "inconsistent"
    assert len(report.flagged_activation) == len(prompts)  # every sequence's activations moved


def test_mix_flags_exactly_the_substituted_sequences(ref_ckpt, other_seed, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    honest = [g.record for g in generate(ck.model, prompts, options)]
    other = [g.record for g in generate(other_seed, prompts, options)]
    mixed, replaced = mix_records(honest, other, 0.25, seed=0)
    header = LogHeader(
        ck.model_hash,
        ck.vocab,
        options.sampling,
        projection=options.projection,
        vocab_size=ck.config.vocab_size,
    )
    report = _verify(write_log(tmp_path / "m.jsonl", header, mixed), ck)
    assert report.decision == "inconsistent"
    assert sorted(report.flagged_token) == replaced and sorted(report.flagged_activation) == replaced


def test_claimed_hash_must_be_the_reference(ref_ckpt, other_seed, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    serve(
        ck.model, prompts, options, tmp_path / "h.jsonl", vocab=ck.vocab, claimed_hash=model_hash(other_seed)
    )
    report = _verify(tmp_path / "h.jsonl", ck)
    assert report.decision == "inconsistent" and "claims model" in report.reasons[0]


def test_no_seed_and_no_projection_is_indeterminate(ref_ckpt, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    opts = replace(options, sampling=replace(options.sampling, seed=None), projection=None)
    serve(ck.model, prompts, opts, tmp_path / "n.jsonl", vocab=ck.vocab)
    report = _verify(tmp_path / "n.jsonl", ck)
    assert report.decision == "unverifiable" and report.exit_code == 1
    assert difr_finding(report)["decision"] == "unverifiable"


def test_activations_alone_catch_a_substitute_without_a_seed(
    ref_ckpt, other_seed, prompts, options, tmp_path
):
    ck = load_checkpoint(ref_ckpt)
    opts = replace(options, sampling=replace(options.sampling, seed=None))
    serve(ck.model, prompts, opts, tmp_path / "h.jsonl", vocab=ck.vocab)
    _served_by(other_seed, ck, prompts, opts, tmp_path / "o.jsonl")
    assert _verify(tmp_path / "h.jsonl", ck).decision == "consistent"
    bad = _verify(tmp_path / "o.jsonl", ck)
    assert bad.decision == "inconsistent" and not bad.flagged_token and bad.flagged_activation


def test_forged_projections_from_the_right_model_but_tokens_from_another(
    ref_ckpt, other_seed, prompts, options, tmp_path
):
    """The strongest cheap forgery: activations copied from an honest run, tokens from a
    substitute. Activations are re-computed on the served tokens, so the copies no longer
    fit; Token-DiFR catches the tokens themselves."""
    ck = load_checkpoint(ref_ckpt)
    honest = {g.record.index: g.record for g in generate(ck.model, prompts, options)}
    other = [g.record for g in generate(other_seed, prompts, options)]
    forged = [replace(r, projections=honest[r.index].projections) for r in other]
    header = LogHeader(
        ck.model_hash,
        ck.vocab,
        options.sampling,
        projection=options.projection,
        vocab_size=ck.config.vocab_size,
    )
    report = _verify(write_log(tmp_path / "f.jsonl", header, forged), ck)
    assert len(report.flagged_token) == len(prompts) and report.flagged_activation


def test_calibration_file_must_fit_the_log(ref_ckpt, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    cal = calibrate(ck.model, prompts, options, FAST_VARIANTS, vocab=ck.vocab)
    serve(ck.model, prompts, replace(options, max_new=20), tmp_path / "s.jsonl", vocab=ck.vocab)
    with pytest.raises(InputError, match="24-token"):
        verify_log(read_log(tmp_path / "s.jsonl"), ck, cal)
    serve(ck.model, prompts, options, tmp_path / "ok.jsonl", vocab=ck.vocab)
    report = verify_log(read_log(tmp_path / "ok.jsonl"), ck, cal)
    assert report.decision == "consistent" and report.calibration == "file"


def test_bf16_serving_is_calibrated_separately(ref_ckpt, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    opts = replace(options, precision="bfloat16")
    serve(ck.model, prompts, opts, tmp_path / "b.jsonl", vocab=ck.vocab)
    report = _verify(tmp_path / "b.jsonl", ck)
    assert report.decision == "consistent", report.reasons
    assert read_log(tmp_path / "b.jsonl").header.precision == "bfloat16"


def test_save_checkpoint_is_weights_only_loadable(reference, corpus, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", reference, corpus.vocab.chars, {"step": 3})
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "inspectorate.checkpoint" and load_checkpoint(path).meta == {"step": 3}


def test_honest_logs_under_fresh_seeds_and_batchings_all_pass_one_calibration(
    ref_ckpt, prompts, options, tmp_path
):
    """False positives: one calibration, honest logs it never saw (other seeds, batch sizes)."""
    ck = load_checkpoint(ref_ckpt)
    cal = calibrate(ck.model, prompts, options, FAST_VARIANTS, vocab=ck.vocab)
    for k, batch in enumerate([2, 3, 5, 8, 1]):
        opts = replace(options, batch_size=batch, sampling=replace(options.sampling, seed=50 + k))
        serve(ck.model, prompts, opts, tmp_path / f"h{k}.jsonl", vocab=ck.vocab)
        report = verify_log(read_log(tmp_path / f"h{k}.jsonl"), ck, cal)
        assert report.decision == "consistent", (batch, report.reasons)


def test_log_for_another_vocabulary_is_inconsistent_without_scoring(ref_ckpt, prompts, options, tmp_path):
    ck = load_checkpoint(ref_ckpt)
    records = [g.record for g in generate(ck.model, prompts, options)]
    header = LogHeader(
        ck.model_hash,
        ck.vocab[::-1],
        options.sampling,
        projection=options.projection,
        vocab_size=ck.config.vocab_size,
    )
    report = verify_log(read_log(write_log(tmp_path / "v.jsonl", header, records)), ck)
    assert report.decision == "inconsistent" and "vocabulary" in report.reasons[-1] and not report.sequences
