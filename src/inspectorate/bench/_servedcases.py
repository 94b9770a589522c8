"""Served-model identity cases (track f): DiFR serving logs, honest and attacked.

The builder trains a tiny reference GPT and a second one from another seed (same
architecture, seconds on a CPU), ships the reference checkpoint as the declaration
(``served/reference.pt``, the case's ``commitment``) and writes serving logs: honest ones
(different prompts each), and four dishonest servers that all write the reference's hash
in their header, as a competent attacker does: another model of the same shape, an
int8-quantised copy, a log where a quarter of the sequences come from the other model,
and one served at a higher temperature than the header declares. Truth is by
construction. Needs torch (``testbed`` extra); files are "computed" (training is seeded
but bit-identical results across machines and torch builds are not promised).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from inspectorate.bench._case import CONSISTENT, INCONSISTENT, Answer, Case

PROMPTS, PROMPT_LEN = 8, 8


def served_cases(
    suite: Path, seed: int, size: str, corpus: Path | None = None
) -> tuple[list[Case], list[Answer]]:
    import torch

    from inspectorate.bench._corpus import demo_corpus
    from inspectorate.difr import (
        ProjectionSpec,
        SamplingConfig,
        ServeOptions,
        corpus_prompts,
        load_checkpoint,
        read_log,
        save_checkpoint,
        serve,
    )
    from inspectorate.difr._attacks import mix_records, quantize_int8
    from inspectorate.difr._log import write_log
    from inspectorate.replay import TrainSpec, quick_train
    from inspectorate.testbed.data import load_corpus
    from inspectorate.testbed.model import GPTConfig

    torch.set_num_threads(1)
    folder = suite / "served"
    folder.mkdir(parents=True, exist_ok=True)
    text = load_corpus(corpus if corpus is not None else demo_corpus(folder.parent))
    if corpus is None:
        (folder.parent / "demo_corpus.txt").unlink()  # the corpus is not evidence
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=len(text.vocab))
    spec = TrainSpec(model=cfg.to_dict(), steps=80, batch_size=8, seq_len=32, lr=1e-2, seed=seed)
    ref = quick_train(text.split("pretrain"), spec)
    other = quick_train(text.split("pretrain"), replace(spec, seed=seed + 1))
    ck = load_checkpoint(save_checkpoint(folder / "reference.pt", ref, text.vocab.chars))
    options = ServeOptions(
        SamplingConfig(temperature=0.8, top_k=40, seed=seed * 7 + 1),
        max_new=24,
        batch_size=4,
        projection=ProjectionSpec(seed=77, layer=1, dim=4),
    )
    cases: list[Case] = []
    answers: list[Answer] = []

    def add(name: str, truth: str, family: str) -> None:
        cid = f"served_identity/{name}"
        claim = {"declared_model_hash": ck.model_hash}
        cases.append(
            Case(cid, "served_identity", f"served/{name}.jsonl", claim, commitment="served/reference.pt")
        )
        liar = truth == INCONSISTENT
        answers.append(Answer(cid, truth, family, "server" if liar else "honest", {}))

    val = text.split("val")
    for i in range(2 if size == "small" else 6):
        prompts = corpus_prompts(val, PROMPTS, PROMPT_LEN, seed=seed * 100 + i)
        serve(ck.model, prompts, options, folder / f"honest-{i}.jsonl", vocab=ck.vocab)
        add(f"honest-{i}", CONSISTENT, "honest")
    prompts = corpus_prompts(val, PROMPTS, PROMPT_LEN, seed=seed * 100 + 99)
    liars = {
        "other-seed": other,
        "int8": quantize_int8(ck.model),
    }
    for name, model in liars.items():
        serve(model, prompts, options, folder / f"{name}.jsonl", vocab=ck.vocab, claimed_hash=ck.model_hash)
        add(name, INCONSISTENT, name)
    hot = replace(options, sampling=replace(options.sampling, temperature=1.3))
    serve(ck.model, prompts, hot, folder / "hot.tmp.jsonl", vocab=ck.vocab)
    hot_log = read_log(folder / "hot.tmp.jsonl")
    header = replace(hot_log.header, sampling=options.sampling)  # declares the 0.8 it did not use
    write_log(folder / "hotter-than-declared.jsonl", header, list(hot_log.sequences))
    (folder / "hot.tmp.jsonl").unlink()
    add("hotter-than-declared", INCONSISTENT, "temperature")
    serve(ck.model, prompts, options, folder / "mix.honest.tmp.jsonl", vocab=ck.vocab)
    honest = read_log(folder / "mix.honest.tmp.jsonl")
    mixed, _ = mix_records(honest.sequences, read_log(folder / "other-seed.jsonl").sequences, 0.25, seed)
    write_log(folder / "mixed-quarter.jsonl", honest.header, mixed)
    (folder / "mix.honest.tmp.jsonl").unlink()
    add("mixed-quarter", INCONSISTENT, "mix_0.25")
    return cases, answers
