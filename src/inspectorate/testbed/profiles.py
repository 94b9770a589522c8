"""Run profiles: which preset plays each size role, batch shapes, durations, window length.

- ``laptop``: 2 CPU ranks (gloo), the seed's 3.2M laptop model as ``tiny`` and GPT-2 124M
  as ``small``; all 15 phases in about 10 minutes. A 124M training step takes seconds on
  one core (4-5 steps per phase on a loaded 2-core box, tens unloaded), so those phases are
  short in steps but long enough for the memory and FLOP footprint the verifiers need.
  5 s windows, sensors at 2 Hz.
- ``gpu``: the seed's H100 schedule (30 min pretraining etc.), ``tiny`` = 10M, ``small`` =
  124M, bf16 autocast on CUDA, 60 s windows, sensors at 1 Hz.
- ``test``: ``micro`` as tiny and ``laptop`` as small at sequence 32, 2.5 s phases,
  0.5 s windows, sensors at 5 Hz: the whole schedule in well under a minute of work.

``scale`` multiplies every phase duration (``--scale 0.1`` for a quick look).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from inspectorate.errors import InputError
from inspectorate.testbed.phases import PhaseSpec


@dataclass(frozen=True)
class RoleSpec:
    """How one size role runs: preset, training batch/sequence, inference batch, peak lr."""

    preset: str
    batch_size: int
    seq_len: int
    infer_batch: int
    lr: float
    prompt_len: int = 8


@dataclass(frozen=True)
class Profile:
    name: str
    device: str  # "cpu" or "cuda"
    roles: dict[str, RoleSpec]
    window_s: float
    sensor_hz: float
    fingerprint_every: int
    durations: dict[str, float] = field(default_factory=dict)  # overrides per phase name
    world_size: int = 2
    burst_s: float = 0.2  # adv_interleaved_train_infer burst length
    fake_period_s: float = 0.5  # adv_infer_with_fake_nccl: one fake gradient sync per period
    finetune_lr: float = 3e-5

    def duration(self, phase: PhaseSpec, scale: float = 1.0) -> float:
        """Seconds this profile gives ``phase`` (override, else the laptop/gpu column)."""
        base = self.durations.get(phase.name)
        if base is None:
            base = phase.gpu_s if self.device == "cuda" else phase.laptop_s
        return base * scale

    def role(self, size: str) -> RoleSpec:
        return self.roles[size]

    def with_batch_size(self, batch_size: int | None) -> Profile:
        """The same profile with every role's training batch set (None keeps it)."""
        if batch_size is None:
            return self
        if batch_size < 1:
            raise InputError("batch size must be >= 1")
        return replace(self, roles={k: replace(v, batch_size=batch_size) for k, v in self.roles.items()})


PROFILES: dict[str, Profile] = {
    "laptop": Profile(
        name="laptop",
        device="cpu",
        window_s=5.0,
        sensor_hz=2.0,
        fingerprint_every=50,
        roles={
            "tiny": RoleSpec("laptop", batch_size=8, seq_len=128, infer_batch=4, lr=1e-3),
            "small": RoleSpec("small", batch_size=2, seq_len=64, infer_batch=2, lr=6e-4),
        },
    ),
    "gpu": Profile(
        name="gpu",
        device="cuda",
        window_s=60.0,
        sensor_hz=1.0,
        fingerprint_every=200,
        roles={
            "tiny": RoleSpec("tiny", batch_size=64, seq_len=256, infer_batch=16, lr=1e-3),
            "small": RoleSpec("small", batch_size=16, seq_len=1024, infer_batch=8, lr=6e-4),
        },
        fake_period_s=0.1,
    ),
    "test": Profile(
        name="test",
        device="cpu",
        window_s=0.5,
        sensor_hz=5.0,
        fingerprint_every=10,
        roles={
            "tiny": RoleSpec("micro", batch_size=4, seq_len=32, infer_batch=2, lr=1e-3),
            "small": RoleSpec("laptop", batch_size=2, seq_len=32, infer_batch=2, lr=6e-4),
        },
        durations={},
        burst_s=0.1,
        fake_period_s=0.1,
    ),
}
TEST_PHASE_S = 2.5


def get_profile(name: str) -> Profile:
    """The named profile; the test profile gives every phase ``TEST_PHASE_S`` seconds."""
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if name == "test":
        from inspectorate.testbed.phases import PHASES

        profile = replace(profile, durations={p: TEST_PHASE_S for p in PHASES})
    return profile
