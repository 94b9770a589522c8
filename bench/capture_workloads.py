"""Independent workloads under ``inspectorate capture``: per-phase outcomes of honest
claims and of lies, naive and competent, under the strict and lenient policies; and the
sensor's CPU against the workload's.

The workloads (tests/workloads/) share no code with the testbed: a character-level GRU
trained in one process, a sampling loop from an MLP language model, a loop of matrix
products, an MLP trained data-parallel by 2 gloo processes, and a sampling loop with a
policy-gradient update every k samples; and ``mlp_wide``, the MLP LM at 31.8M
parameters, above the memory-separation size (~22M). Each workload hands over a
description of the model it runs (``models:`` in the claims file; matmul and the ddp
classifier have no LM family and claim a parameter count only). Each run is one capture holding every phase of
one workload: honest phases, then the lies (what it does vs what it claims).
``naive``: its step records tell what it really does; ``competent``: every file it
writes agrees with its claim.

    python bench/capture_workloads.py                 # all six, 6 s a phase
    python bench/capture_workloads.py --set stranger  # the ones written from scratch (tests/workloads/stranger/)
    python bench/capture_workloads.py --lean          # mlp_lm competent only, short (CI's slow test)
    python bench/capture_workloads.py --table out.json  # re-print saved rows
    python bench/capture_workloads.py --json out.json
    python bench/capture_workloads.py --order script  # honest_train first, then honest_eval
        # and honest_serve with the optimizer alive, as a training script runs them
    python bench/capture_workloads.py --replay CORPUS   # honest_train (and the 20x lie) hand
        # over replay claims; verify replays them (segment 0 + 1 drawn), certification reported

With ``--replay``, the LM workloads with a described family (chargru, mlp_lm, mlp_wide)
hand over a replay claim for ``honest_train`` and, as a competent liar would try, for
``lie_big_as_small`` (its real run: the claim cannot be made to describe the 20x
smaller model, whose tensors the weights do not fit); verify runs as ``verify --replay
--corpus CORPUS``, the replays computed once per run and attached under both policies.

Needs root (cgroups, network namespaces). Figures on a loaded machine are timings of
that machine: say so when you quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workloads"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

import stranger_workloads

LIES = (
    "train_as_infer",
    "train_as_eval",
    "big_as_small",
    "hidden_under_idle",
    "tokens_inflated",
    "updates_as_serving",
)


def description(name: str, config: dict[str, Any], shrink: float = 1.0) -> dict[str, Any] | None:
    """The ``inspectorate.model`` description of what each workload really runs (None
    where no family describes it). ``shrink``: a model with about ``shrink`` times the
    parameters (widths scaled by its square root), what the 20x lie declares instead."""
    if name in stranger_workloads.WORKLOADS:
        return stranger_workloads.description(name, config, shrink)
    from corpus import chars

    def w(x: int) -> int:
        return max(int(round(x * shrink**0.5)), 1)

    vocab = chars()[1]
    if name == "chargru":  # embedding of width hidden, stacked GRU, linear head
        h = w(config.get("hidden", 192))
        cfg = {
            "cell": "gru",
            "vocab_size": vocab,
            "d_embed": h,
            "hidden": h,
            "n_layers": config.get("layers", 2),
        }
        return {"family": "rnn", "config": cfg}
    if name == "pg_sampler":  # an LSTMCell over a 32-token vocabulary: one LSTM layer
        h = w(config.get("hidden", 256))
        return {
            "family": "rnn",
            "config": {"cell": "lstm", "vocab_size": 32, "d_embed": h, "hidden": h, "n_layers": 1},
        }
    if name in ("mlp_lm", "mlp_wide"):  # Bengio's fixed-context MLP LM
        d = config.get("depth", 2)
        hidden = [w(config.get("hidden", 512))] * d
        cfg = {
            "vocab_size": vocab,
            "context_len": config.get("context", 16),
            "d_embed": config.get("embed", 24),
            "activation": "gelu",  # the workload's nn.GELU layers
        }
        return {"family": "mlp", "config": {**cfg, "hidden": hidden}}
    return None  # matmul (no LM family: a parameter count only), ddp_mlp (a classifier)


def n_params(name: str, config: dict[str, Any], shrink: float = 1.0) -> int:
    """Parameters of each workload's model: the verifier's closed form for a described
    model, the workload's own formula otherwise (no model is built)."""
    if name in stranger_workloads.WORKLOADS:
        return stranger_workloads.n_params(name, config, shrink)
    desc = description(name, config, shrink)
    if desc is not None:
        from inspectorate.models import spec_from_dict

        return spec_from_dict({"format": "inspectorate.model", "version": 1, **desc}).n_params()
    if name == "matmul":
        return int(config.get("width", 384) ** 2 * config.get("depth", 4) * shrink)
    if name == "ddp_mlp":
        w, d = config.get("width", 512), config.get("depth", 3)
        return int((256 * w + w + (d - 1) * (w * w + w) + w * 10 + 10) * shrink)
    raise ValueError(name)


WORKLOADS: dict[str, dict[str, Any]] = {
    "chargru": {"script": "chargru.py", "config": {}},
    "mlp_lm": {"script": "mlp_lm.py", "config": {}},
    "matmul": {"script": "matmul.py", "config": {}},
    "ddp_mlp": {"script": "ddp_mlp.py", "config": {"world_size": 2}},
    "pg_sampler": {"script": "pg_sampler.py", "config": {"k": 4}},
    # Above the memory-separation size (~22M params): a wide MLP LM, 31.8M parameters
    # but only ~64 MFLOP a token, so it runs on a loaded core; training holds >= 16 B a
    # parameter (~0.5 GB) against serving's 4 B.
    "mlp_wide": {
        "script": "mlp_lm.py",
        "config": {"hidden": 5120, "embed": 64, "context": 16, "batch_size": 4, "seq_len": 8},
    },
}
WORKLOADS.update(stranger_workloads.WORKLOADS)  # --set stranger: written from scratch, see there
SETS = {
    "own": [n for n in WORKLOADS if n not in stranger_workloads.WORKLOADS],
    "stranger": list(stranger_workloads.WORKLOADS),
}
SHRINK = 1 / 20  # the lie big_as_small declares a model with 1/20 of the parameters


def model_files(name: str, root: Path) -> dict[str, str]:
    """Write the workload's description (and the small one the 20x lie declares) under
    ``root``; model name -> file, for the claims file's ``models:``."""
    out = {}
    for tag, shrink in (("", 1.0), ("-small", SHRINK)):
        desc = description(name, WORKLOADS[name]["config"], shrink)
        if desc is None:
            continue
        path = root / f"{name}{tag}.model.json"
        path.write_text(json.dumps({"format": "inspectorate.model", "version": 1, **desc}, indent=2))
        out[f"{name}{tag}"] = str(path)
    return out


HANDOVER = ("honest_train", "lie_big_as_small")  # phases that hand over a replay claim (--replay)


DEFAULT_HIDDEN = {"chargru": 192, "pg_sampler": 256, "mlp_lm": 512, "mlp_wide": 512}


def shrunk_config(name: str, config: dict[str, Any], shrink: float) -> dict[str, Any]:
    """The workload config of the model ``description(name, config, shrink)`` describes."""
    if name in stranger_workloads.WORKLOADS:
        return stranger_workloads.shrunk_config(name, config, shrink)
    h = config.get("hidden", DEFAULT_HIDDEN[name])
    return {
        **{k: v for k, v in config.items() if k != "world_size"},
        "hidden": max(int(round(h * shrink**0.5)), 1),
    }


def handover_lies(name: str, records: str) -> list[dict[str, Any]]:
    """``--recomputed``: a 20x larger model serves (and evaluates) while the small one is
    declared. Naive: it hands over what it ran (the large weights and their outputs);
    competent: it keeps a declared-size twin and hands over the twin's weights and
    outputs on every step, its CPU paying for both."""
    config = WORKLOADS[name]["config"]
    out = []
    for phase, do, op in (
        ("lie_big_as_small_serve", "serve", "inference"),
        ("lie_big_as_small_eval", "eval", "eval"),
    ):
        extra: dict[str, Any] = {"handover_model": name}
        if records == "competent":
            extra = {"shadow_config": shrunk_config(name, config, SHRINK)}
        out.append({"row": (phase, do, op, SHRINK, 1), **extra})
    return out


ORDERS = ("bench", "script")


def honest_rows(lean: bool, order: str) -> list[tuple[str, str, str, float, float]]:
    """The honest phases. ``bench``: serve and eval before any training (no optimizer
    state yet: kind to the verifier); ``script``: training first, then eval and serve in
    the same process with the optimizer alive, as a training script with periodic eval
    and a sample at the end runs them."""
    idle, serve = ("honest_idle", "idle", "idle", 1, 1), ("honest_serve", "serve", "inference", 1, 1)
    if lean:
        return [idle, serve]
    evaluate, train = ("honest_eval", "eval", "eval", 1, 1), ("honest_train", "train", "training", 1, 1)
    if order == "script":
        return [idle, train, evaluate, serve]
    if order != "bench":
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    return [idle, serve, evaluate, train]


def plan(
    name: str,
    seconds: float,
    records: str,
    lean: bool,
    recomputed: bool = False,
    replay: bool = False,
    order: str = "bench",
) -> dict[str, Any]:
    """Honest phases (in ``order``, see ``honest_rows``), then lies; each phase: (name, do,
    claimed op, n_params factor, token factor). ``recomputed``: serve and eval phases hand
    over weights and outputs (see tests/workloads/_served_handover.py) and the
    serving-size lies join. ``replay``: the training phases in ``HANDOVER`` hand over
    replay claims (tests/workloads/_replay_handover.py)."""
    config = WORKLOADS[name]["config"]
    described = description(name, config) is not None
    rows = honest_rows(lean, order)
    extras: dict[str, dict[str, Any]] = {}  # phase name -> fields added to its plan entry
    rows += [
        ("lie_hidden_under_idle", "hidden", "idle", 1, 1),
        ("lie_train_as_infer", "train", "inference", 1, 1),
        ("lie_big_as_small", "train", "training", SHRINK, 1),
    ]
    if not lean:
        rows += [
            ("lie_train_as_eval", "train", "eval", 1, 1),
            ("lie_tokens_inflated", "train", "inference", 1, 3),
        ]
        if name == "pg_sampler" or WORKLOADS[name].get("updates"):
            rows.append(("lie_updates_as_serving", "serve_updates", "inference", 1, 1))
        if WORKLOADS[name].get("decoy"):  # training beside a frozen weights copy it reads
            rows.append(("lie_train_as_eval_decoy", "train_decoy", "eval", 1, 1))
        for k in WORKLOADS[name].get("frozen_every", ()):  # serving a frozen copy, SGD on another
            rows.append((f"lie_updates_frozen_k{k}_as_serving", "serve_updates_frozen", "inference", 1, 1))
            extras[rows[-1][0]] = {"every": k}
    world = config.get("world_size", 1)
    # the own set hands over through tests/workloads/_*_handover.py; a stranger only
    # where its own code does (``"handover": True`` in stranger_workloads)
    hands_over = WORKLOADS[name].get("handover", name not in stranger_workloads.WORKLOADS)
    recomputed, replay = recomputed and hands_over, replay and hands_over
    if recomputed and described and name != "ddp_mlp":
        for lie in handover_lies(name, records):
            rows.append(lie.pop("row"))
            extras[rows[-1][0]] = lie
    phases = []
    for phase, do, op, size, tokens in rows:
        claim: dict[str, Any] = {"op": op, "label": op}
        if op != "idle":
            small = size != 1
            model = (f"{name}-small" if small else name) if described else f"bench-{name}"
            claim.update(model=model, n_params=n_params(name, config, size))
        if world > 1:
            claim["world_size"] = world
        handover = replay and described and phase in HANDOVER and name != "pg_sampler"
        phases.append(
            {
                "name": phase,
                "do": do,
                "seconds": seconds,
                "claim": claim,
                "token_factor": tokens,
                "handover": handover,
                **extras.get(phase, {}),
            }
        )
    return {"config": config, "records": records, "threads": 1, "phases": phases, "handover": recomputed}


def run_one(
    name: str,
    records: str,
    seconds: float,
    lean: bool,
    root: Path,
    corpus: Path | None = None,
    recomputed: bool = False,
    order: str = "bench",
    phases: tuple[str, ...] = (),
    tag: str = "",
) -> list[dict[str, Any]]:
    out = root / f"{name}-{records}{tag}"
    out.parent.mkdir(parents=True, exist_ok=True)
    claims = {"models": model_files(name, out.parent)}
    the_plan = plan(name, seconds, records, lean, recomputed, replay=corpus is not None, order=order)
    if phases:  # only the phases named (or starting with a prefix given)
        the_plan["phases"] = [p for p in the_plan["phases"] if p["name"].startswith(phases)]
    proc = harness.capture_run(WORKLOADS[name]["script"], the_plan, out, claims=claims, timeout_s=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}/{records}: capture exited {proc.returncode}: {proc.stderr[-1500:]}")
    if corpus is not None:
        strict, lenient = replayed_outcomes(out, corpus)
    else:
        strict, lenient = harness.outcomes(out, "strict"), harness.outcomes(out, "lenient")
    prov = json.loads((out / "provenance.json").read_text())
    rows = []
    for phase, res in strict.items():
        flagged = sorted(k for k, v in res["decisions"].items() if v == "inconsistent")
        rows.append(
            {
                "workload": name,
                "records": records,
                "phase": phase,
                "strict": res["outcome"],
                "lenient": lenient[phase]["outcome"],
                "lenient_certified": lenient[phase]["certified"],
                "flagged_by": flagged,
                "unverifiable": sorted(k for k, v in res["decisions"].items() if v == "unverifiable"),
                "tree_cores": res["tree_cores"],
                "cpu_wait_share": res.get("cpu_wait_share"),  # idle claims: PSI wait over the phase
                "load_1m": round(os.getloadavg()[0], 1),
                "replay": res.get("replay"),
            }
        )
    rows.append({"workload": name, "records": records, "phase": "_overhead", **overhead(out, prov)})
    return rows


def replayed_outcomes(run: Path, corpus: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``verify RUN --replay --corpus CORPUS`` under both policies: the handed-over claims
    are replayed once (segment 0 plus one drawn, a fixed seed so both policies judge the
    same replays) and attached to each; per phase also the replay's decision and reasons."""
    from inspectorate.verify import verify_run
    from inspectorate.verify._replay_run import ReplayPlan, replay_run

    found = replay_run(harness_run(run), ReplayPlan(corpus=corpus, draws=1, seed=20261207))
    out = []
    for policy in ("strict", "lenient"):
        verdict = verify_run(run, policy=policy, recomputed=found)
        rows = {}
        for ph in verdict.phases:
            props = {f.property: f for f in ph.findings}
            rep = props.get("training_replay")
            rows[ph.phase] = {
                "outcome": ph.outcome,
                "certified": ph.verdict == 1,
                "decisions": {k: f.decision for k, f in props.items()},
                "tree_cores": (props["p1_op_type"].evidence if "p1_op_type" in props else {}).get(
                    "tree_cores"
                ),
                "replay": None
                if rep is None
                else {
                    "decision": rep.decision,
                    "settles": rep.evidence.get("settles"),
                    "why": (rep.evidence.get("binding") or rep.evidence.get("reasons") or [])[:2],
                    "distances": [s.get("distance") for s in rep.evidence.get("segments_replayed", [])],
                },
            }
        out.append(rows)
    return out[0], out[1]


def harness_run(run: Path) -> Any:
    from inspectorate.trace import load_run

    return load_run(run)


def overhead(run: Path, prov: dict[str, Any]) -> dict[str, Any]:
    from inspectorate.trace.streams import read_sensor

    frame = read_sensor(run / "sensor.jsonl").frame
    workload = float(frame["cpu_s"].max() or 0.0)
    sensor = (prov.get("overhead") or {}).get("sensor_cpu_s")
    return {
        "workload_cpu_s": workload,
        "sensor_cpu_s": sensor,
        "sensor_over_workload": sensor / workload if sensor is not None and workload > 0 else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | phase | naive: strict outcome | naive: lenient | naive: flagged by | competent: strict outcome | competent: lenient | competent: flagged by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["workload"], r["phase"], r["records"]): r for r in rows if r["phase"] != "_overhead"}
    for wl, phase in dict.fromkeys((r["workload"], r["phase"]) for r in rows if r["phase"] != "_overhead"):
        cells = []
        for mode in ("naive", "competent"):
            r = by.get((wl, phase, mode))
            lenient = "certified" if r and r["lenient_certified"] else "not certified"
            cells += [r["strict"], lenient, ", ".join(r["flagged_by"]) or "-"] if r else ["", "", ""]
        lines.append(f"| {wl} | {phase} | " + " | ".join(cells) + " |")
    replayed = [r for r in rows if r.get("replay")]
    if replayed:
        lines += ["", "| workload | records | phase | replay | settles | segment distances | why not |"]
        lines.append("|---|---|---|---|---|---|---|")
        for r in replayed:
            rp = r["replay"]
            dist = ", ".join(f"{d:.1e}" for d in rp["distances"] if d is not None) or "-"
            why = "; ".join(rp["why"]) or "-"
            lines.append(
                f"| {r['workload']} | {r['records']} | {r['phase']} | {rp['decision']} | "
                f"{', '.join(rp['settles'] or []) or '-'} | {dist} | {why} |"
            )
    idle = [r for r in rows if r.get("cpu_wait_share") is not None]
    if idle:  # what an idle claim's tree got (cores) and asked for (PSI wait share)
        lines += ["", "| workload | records | phase | strict | tree cores | wait share | load (1 min) |"]
        lines.append("|---|---|---|---|---|---|---|")
        for r in idle:
            lines.append(
                f"| {r['workload']} | {r['records']} | {r['phase']} | {r['strict']} | "
                f"{r['tree_cores'] or 0:.3f} | {r['cpu_wait_share']:.3f} | {r.get('load_1m', '-')} |"
            )
    lines.append("")
    lines.append("| workload | records | workload CPU-s | sensor CPU-s | sensor / workload |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        if r["phase"] == "_overhead":
            ratio = r["sensor_over_workload"]
            lines.append(
                f"| {r['workload']} | {r['records']} | {r['workload_cpu_s']:.1f} | {r['sensor_cpu_s'] or 0:.2f} | "
                + (f"{100 * ratio:.1f}% |" if ratio is not None else "- |")
            )
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    """Per mode: honest phases certified (strict), and every lie's outcome under both
    policies (a lie `consistent` or certified under either is a failure of the verifier)."""
    lines = []
    for mode in dict.fromkeys(r["records"] for r in rows):
        mine = [r for r in rows if r["records"] == mode and r["phase"] != "_overhead"]
        honest = [r for r in mine if r["phase"].startswith("honest_")]
        lies = [r for r in mine if r["phase"].startswith("lie_")]
        cert = sum(r["strict"] == "consistent" for r in honest)
        count = {
            o: sum(r["strict"] == o for r in lies) for o in ("inconsistent", "unverifiable", "consistent")
        }
        lenient = sum(r["lenient_certified"] for r in lies)
        trains = [r for r in honest if r["phase"] == "honest_train" and r.get("replay")]
        if trains:
            done = sum(r["strict"] == "consistent" for r in trains)
            lines.append(f"{mode}: honest_train certified with --replay (strict) {done}/{len(trains)}")
        lines.append(
            f"{mode}: honest certified (strict) {cert}/{len(honest)}; lies {len(lies)}: "
            + ", ".join(f"{v} {k}" for k, v in count.items())
            + f"; lies certified under lenient {lenient}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=sorted(SETS), default="own", help="stranger: tests/workloads/stranger/")
    ap.add_argument("--workloads", default=None, help="comma-separated; default: every workload of --set")
    ap.add_argument("--records", default="naive,competent")
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds a phase")
    ap.add_argument("--lean", action="store_true", help="mlp_lm only, competent, 5 phases")
    ap.add_argument(
        "--recomputed",
        action="store_true",
        help="serve/eval phases hand over weights and outputs; verify re-computes them (P2); adds the serving-size lies",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="keep the run dirs here (default: a temp dir, each run removed once read)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    ap.add_argument("--table", type=Path, default=None, help="only print the table of rows saved with --json")
    ap.add_argument(
        "--replay", type=Path, default=None, metavar="CORPUS", help="hand over replay claims; verify --replay"
    )
    ap.add_argument(
        "--order",
        choices=ORDERS,
        default="bench",
        help="script: honest_train first, then honest_eval and honest_serve (the optimizer alive)",
    )
    ap.add_argument(
        "--phases",
        default="",
        help="comma-separated phase names or prefixes to run (e.g. honest_serve,lie_updates_frozen); default all",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per workload and mode (for rates)")
    args = ap.parse_args(argv)
    if args.table:
        saved = json.loads(args.table.read_text())
        print(table(saved) + "\n\n" + summary(saved))
        return 0
    names = ["mlp_lm"] if args.lean else (args.workloads.split(",") if args.workloads else SETS[args.set])
    modes = ["competent"] if args.lean else args.records.split(",")
    root = args.out or Path(tempfile.mkdtemp(prefix="capture-workloads-"))
    rows: list[dict[str, Any]] = []
    phases = tuple(p for p in args.phases.split(",") if p)
    for name in names:
        for mode in modes:
            for rep in range(args.repeat):
                tag = f"-r{rep}" if args.repeat > 1 else ""
                got = run_one(
                    name, mode, args.seconds, args.lean, root, args.replay, args.recomputed, args.order,
                    phases, tag,
                )  # fmt: skip
                rows += [{**r, "repeat": rep} for r in got]
                print(f"done {name}/{mode}{tag}", file=sys.stderr, flush=True)
                if args.out is None:  # handed-over checkpoints: ~1.8 GB a run at 25M with --replay
                    shutil.rmtree(root / f"{name}-{mode}{tag}", ignore_errors=True)
            if args.json:  # as it goes: a later workload's failure keeps the rows so far
                args.json.write_text(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows) + "\n\n" + summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
