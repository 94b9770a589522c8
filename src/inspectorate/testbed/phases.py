"""The phase schedule: the seed's 8 phases plus 3 follow-up attacks, and the label vocabulary.

Label vocabulary (``claimed`` and ``truth`` in ``workload_labels.jsonl``):

    label    := "idle" | ACTIVITY ":" SIZE
    ACTIVITY := "pretrain" | "finetune" | "inference" | "eval"
    SIZE     := "tiny" | "small"          (a size *role*; the profile maps it to a preset)

The size is part of the label because one of the seed's lies is about size alone
(``adv_big_as_small``: "pretrain:small" labelled "pretrain:tiny"), so claimed != truth
holds for exactly the adversarial phases. The op-type classes a P1 verifier predicts
are derived by :func:`op_type`: pretrain and finetune are ``training``. Label events
also carry ``claimed_op``/``truth_op``, ``model``/``claimed_model`` (preset names) and
their parameter counts, so nobody has to parse the strings.

What each phase writes in its window records is what a lying prover would write: the
CLAIMED op type, FLOPs from the CLAIMED model's parameter count, the claimed model's
hash prefix and the claimed activity's dataset fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspectorate.errors import InputError

ACTIVITIES = ("pretrain", "finetune", "inference", "eval", "idle")
SIZES = ("tiny", "small")
OP_TYPES = {
    "pretrain": "training",
    "finetune": "training",
    "inference": "inference",
    "eval": "eval",
    "idle": "idle",
}
# Which corpus split each activity reads (an honest prover's dataset fingerprint).
ACTIVITY_SPLIT = {"pretrain": "pretrain", "finetune": "finetune", "inference": "val", "eval": "val"}


@dataclass(frozen=True)
class Label:
    """An activity on a model of some size role; ``str()`` is the vocabulary string."""

    activity: str
    size: str | None = None

    def __post_init__(self) -> None:
        if self.activity not in ACTIVITIES:
            raise InputError(f"unknown activity {self.activity!r}; known: {', '.join(ACTIVITIES)}")
        if (self.activity == "idle") != (self.size is None):
            raise InputError("idle has no size; every other activity needs one")
        if self.size is not None and self.size not in SIZES:
            raise InputError(f"unknown size {self.size!r}; known: {', '.join(SIZES)}")

    def __str__(self) -> str:
        return self.activity if self.size is None else f"{self.activity}:{self.size}"

    @property
    def op_type(self) -> str:
        return OP_TYPES[self.activity]

    @property
    def training(self) -> bool:
        return self.op_type == "training"


def parse_label(text: str) -> Label:
    """Inverse of ``str(Label)``: ``"pretrain:tiny"`` -> Label("pretrain", "tiny")."""
    activity, _, size = text.partition(":")
    return Label(activity, size or None)


def op_type(label: str) -> str:
    """The window op type (training, inference, eval, idle) of a label string."""
    return parse_label(label).op_type


@dataclass(frozen=True)
class PhaseSpec:
    """One scheduled phase: which workload really runs, and what the prover says it is.

    ``workload`` names a function in :mod:`inspectorate.testbed.workloads`.
    ``init_from``/``save_as`` name a size role whose checkpoint is loaded/saved.
    ``gpu_s`` is the seed's duration on the H100 hosts; ``laptop_s`` ours on 2 CPU cores.
    """

    name: str
    workload: str
    truth: Label
    claimed: Label
    gpu_s: float
    laptop_s: float
    init_from: str | None = None
    save_as: str | None = None
    collective_log: str = "full"  # "full" or "subsetted" (the log drops most all-reduces)
    note: str = ""
    params: tuple[tuple[str, str | int], ...] = ()  # workload options (post-training phases)

    @property
    def adversarial(self) -> bool:
        return self.truth != self.claimed

    @property
    def distributed(self) -> bool:
        """Phases whose workload issues gradient all-reduces (real or fake)."""
        return self.workload in {
            "pretrain",
            "finetune",
            "fake_nccl_inference",
            "interleaved",
            "full_finetune",
        }


def _p(
    name: str, workload: str, truth: str, claimed: str, gpu_s: float, laptop_s: float, **kw: Any
) -> PhaseSpec:
    """Shorthand for the tables below: labels as strings."""
    return PhaseSpec(name, workload, parse_label(truth), parse_label(claimed), gpu_s, laptop_s, **kw)


SEED_PHASES: tuple[PhaseSpec, ...] = (
    _p("honest_pretrain_tiny", "pretrain", "pretrain:tiny", "pretrain:tiny", 1800, 70, save_as="tiny"),
    _p("honest_pretrain_small", "pretrain", "pretrain:small", "pretrain:small", 1800, 60, save_as="small"),
    _p(
        "honest_inference_small",
        "inference",
        "inference:small",
        "inference:small",
        900,
        35,
        init_from="small",
    ),
    _p("honest_finetune_tiny", "finetune", "finetune:tiny", "finetune:tiny", 1200, 40, init_from="tiny"),
    _p("idle", "idle", "idle", "idle", 300, 25),
    _p(
        "adv_train_as_infer",
        "pretrain",
        "pretrain:tiny",
        "inference:tiny",
        900,
        35,
        note="training labelled inference: defeats a training-FLOP cap",
    ),
    _p(
        "adv_big_as_small",
        "pretrain",
        "pretrain:small",
        "pretrain:tiny",
        900,
        45,
        note="the larger model labelled as the smaller: defeats a model-size cap",
    ),
    _p(
        "adv_finetune_as_pretrain",
        "finetune",
        "finetune:tiny",
        "pretrain:tiny",
        900,
        35,
        init_from="tiny",
        note="fine-tune of a checkpoint labelled as a fresh pretraining run",
    ),
)

FOLLOWUP_PHASES: tuple[PhaseSpec, ...] = (
    _p(
        "adv_infer_with_fake_nccl",
        "fake_nccl_inference",
        "inference:tiny",
        "pretrain:tiny",
        600,
        30,
        init_from="tiny",
        note="inference issuing gradient-sized all-reduces on a training cadence (zero grads "
        "through a DDP shadow of the model) so collective logs look like training",
    ),
    _p(
        "adv_subsetted_nccl_log",
        "pretrain",
        "pretrain:tiny",
        "inference:tiny",
        600,
        35,
        collective_log="subsetted",
        note="training labelled inference whose collective log keeps 1 in 4 all-reduces in the "
        "first half of the phase and none in the second; the traffic still happens",
    ),
    _p(
        "adv_interleaved_train_infer",
        "interleaved",
        "pretrain:tiny",
        "inference:tiny",
        600,
        35,
        init_from="tiny",
        note="~200 ms bursts of training alternating with ~200 ms bursts of inference, labelled inference",
    ),
)

# Lies that stay hidden from today's prover-stream checks even when the prover does
# nothing more than run them (issue 11); their competent variants forge the rest.
TRUST_PHASES: tuple[PhaseSpec, ...] = (
    _p(
        "adv_single_rank_train_as_infer",
        "single_rank_train",
        "pretrain:tiny",
        "inference:tiny",
        600,
        25,
        note="one rank trains without DDP (no traffic at all), the other sleeps; labelled inference",
    ),
    _p(
        "adv_fullft_as_pretrain",
        "full_finetune",
        "finetune:tiny",
        "pretrain:tiny",
        600,
        25,
        init_from="tiny",
        note="every parameter fine-tuned from the checkpoint with a pretraining-like lr schedule",
    ),
    _p(
        "adv_work_as_idle",
        "eval",
        "eval:tiny",
        "idle",
        300,
        15,
        init_from="tiny",
        note="real evaluation work labelled idle",
    ),
    _p(
        "adv_undeclared_job",
        "undeclared_beside_inference",
        "pretrain:tiny",
        "inference:tiny",
        600,
        25,
        init_from="tiny",
        note="honest serving plus an undeclared training job in the same process tree",
    ),
)

EXTRA_PHASES: tuple[PhaseSpec, ...] = (
    _p("honest_eval_tiny", "eval", "eval:tiny", "eval:tiny", 300, 20, init_from="tiny"),
)

# Post-training disguised as serving (issue 21 item 1; docs/posttrain.md). Not in the
# default schedule: ``bench/posttrain.py`` and ``--phases`` select them. Every one claims
# serving and writes a served-output log (``served/<phase>/``) as real serving does.
POSTTRAIN_KS = (1, 10, 100, 1000)
HONEST_REPLICAS = 8  # honest logged-serving phases per size (distinct names: one served/ dir each)
POSTTRAIN_MODES = {"rl": "REINFORCE on served rollouts", "ft": "fine-tuning bursts between serving batches"}
POSTTRAIN_VARIANTS = {
    # naive: AdamW, serves the live (updated) policy, writes it to disk, step records say "train"
    "naive": (("optimizer", "adamw"), ("serve", "live"), ("save", 1), ("records", "train")),
    # competent: SGD without momentum (no optimizer state), serves the declared weights
    # (a frozen copy, or the adapter switched off), keeps the update in memory, and its
    # step records are serving-shaped (make_competent then forges the rest)
    "competent": (("optimizer", "sgd"), ("serve", "frozen"), ("save", 0), ("records", "serving")),
}


def _posttrain_phases() -> tuple[PhaseSpec, ...]:
    out = []
    for size in SIZES:
        for rep in ("", *(f"_r{i}" for i in range(1, HONEST_REPLICAS))):  # the bench's honest pool
            label = f"inference:{size}"
            out.append(_p(f"honest_serve_logged_{size}{rep}", "logged_serving", label, label, 600, 20))
        for mode, what in POSTTRAIN_MODES.items():
            for update in ("full", "lora"):
                for variant, opts in POSTTRAIN_VARIANTS.items():
                    for k in POSTTRAIN_KS:
                        out.append(
                            PhaseSpec(
                                f"pt_{mode}_{update}_{variant}_k{k}_{size}",
                                "posttrain_serving",
                                parse_label(f"finetune:{size}"),
                                parse_label(f"inference:{size}"),
                                600,
                                20,
                                note=f"{what}, {update} update every {k} rollouts ({variant}), claimed as serving",
                                params=(("mode", mode), ("update", update), ("k", k), *opts),
                            )
                        )
    return tuple(out)


POSTTRAIN_PHASES: tuple[PhaseSpec, ...] = _posttrain_phases()

PHASES: dict[str, PhaseSpec] = {
    p.name: p for p in SEED_PHASES + FOLLOWUP_PHASES + TRUST_PHASES + EXTRA_PHASES + POSTTRAIN_PHASES
}
DEFAULT_PHASES: tuple[str, ...] = tuple(p.name for p in SEED_PHASES + FOLLOWUP_PHASES + TRUST_PHASES)


def select_phases(names: str | list[str] | tuple[str, ...] | None) -> list[PhaseSpec]:
    """Phases by name in the given order (comma-separated string allowed); None = the default 15."""
    if names is None:
        names = DEFAULT_PHASES
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in PHASES]
    if unknown:
        raise InputError(f"unknown phase(s) {', '.join(unknown)}; known: {', '.join(PHASES)}")
    if not names:
        raise InputError("no phases selected")
    return [PHASES[n] for n in names]
