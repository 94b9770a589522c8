"""Who writes each stream: the one table the verifier's trust decisions come from.

A *sensor* stream is written by a process the verifier controls, outside the workload's
process tree (host and per-process counters, NIC counters, NVML/DCGM); *verifier*
evidence is what the verifier computes itself (its spot-check re-run of the claimed
work); a *prover* stream is written by the prover's own processes (window and step
records, collective/NCCL logs, labels, provenance), which a competent prover rewrites
to agree with its claim and re-chains. Rule: a prover stream can make a claim fail
(self-inconsistency) but never pass on its own, so every ``consistent`` finding names
the sensor or verifier evidence it rests on (its ``basis``); a finding with none is
``unverifiable``. docs/trust.md renders this table.
"""

from __future__ import annotations

from dataclasses import dataclass

SENSOR, VERIFIER, PROVER = "sensor", "verifier", "prover"


@dataclass(frozen=True)
class StreamOwner:
    stream: str
    owner: str
    files: str
    note: str


STREAMS: dict[str, StreamOwner] = {
    s.stream: s
    for s in (
        StreamOwner(
            "sensor",
            SENSOR,
            "sensor.jsonl",
            "inspectorate sensor: process-tree CPU time, RSS/PSS, faults, context switches, "
            "threads; host CPU; NIC counters; NVML. Separate process, own hash chain",
        ),
        StreamOwner(
            "ckpt_watch",
            SENSOR,
            "sensor_ckpt.jsonl",
            "inspectorate sensor --watch: checkpoint files the workload wrote (inotify), file and "
            "tensor hashes, own hash chain",
        ),
        StreamOwner("netdev", SENSOR, "netdev.log", "/proc/net/dev snapshots (host NIC and loopback)"),
        StreamOwner("cpu", SENSOR, "cpu.csv", "host CPU and memory (psutil)"),
        StreamOwner("nvsmi", SENSOR, "nvsmi.csv", "NVML / nvidia-smi GPU counters"),
        StreamOwner("dcgm", SENSOR, "dcgm.csv", "DCGM profiling counters (incl. NVLink bytes)"),
        StreamOwner("spot_check", VERIFIER, "(none)", "the verifier's own re-run of the claimed work"),
        StreamOwner(
            "host_rate", VERIFIER, "(cache)", "the verifier's own fp32 matrix-product rate of the host"
        ),
        StreamOwner(
            "difr",
            VERIFIER,
            "(difr verify --finding-out)",
            "served outputs re-computed with the reference model",
        ),
        StreamOwner(
            "replay",
            VERIFIER,
            "(replay --finding-out)",
            "claimed training segments re-run from committed checkpoints",
        ),
        StreamOwner("labels", PROVER, "workload_labels.jsonl", "the claim itself: phases, labels, sizes"),
        StreamOwner("provenance", PROVER, "provenance.json", "hardware, software, settings"),
        StreamOwner("windows", PROVER, "windows.jsonl", "window records: op type, flops, tokens"),
        StreamOwner("steps", PROVER, "steps*.jsonl", "step records: loss, grads, lr, fingerprints"),
        StreamOwner("collectives", PROVER, "collectives*.jsonl", "the workload's collective log"),
        StreamOwner(
            "claims",
            PROVER,
            "claims/<phase>/claim.json",
            "replay claims: checkpoints, seed, lr per step (input to replay)",
        ),
        StreamOwner("nccl", PROVER, "nccl_*.log", "NCCL_DEBUG output of the workload"),
    )
}

# Which stream each gradient-sync byte source comes from (PhaseEvidence.sync_bytes keys).
SYNC_SOURCE_STREAM = {
    "sensor_net": "sensor",
    "netdev": "netdev",
    "dcgm_nvlink": "dcgm",
    "collectives_log": "collectives",
    "nccl_log": "nccl",
}

# Evidence subsets the benchmark scores (labels, the claim, are kept in every subset).
SUBSETS: dict[str, tuple[str, ...]] = {
    "full": tuple(STREAMS),
    "sensor": tuple(s for s, o in STREAMS.items() if o.owner != PROVER) + ("labels",),
    "prover": tuple(s for s, o in STREAMS.items() if o.owner == PROVER)
    + ("netdev", "cpu", "nvsmi", "dcgm"),  # today's view: everything but the new sensor
}


def owner(stream: str) -> str:
    """``sensor``, ``verifier`` or ``prover``; an unknown stream is the prover's."""
    entry = STREAMS.get(stream)
    return entry.owner if entry is not None else PROVER


def trusted(stream: str) -> bool:
    """Can this stream make a claim pass (sensor or verifier evidence)?"""
    return owner(stream) in (SENSOR, VERIFIER)


def trusted_only(streams: list[str] | tuple[str, ...]) -> list[str]:
    """The sensor/verifier streams among ``streams``, in order, without repeats."""
    return [s for s in dict.fromkeys(streams) if trusted(s)]


# What each built-in property reads, by owner (rendered in docs/trust.md).
PROPERTY_EVIDENCE: dict[str, dict[str, tuple[str, ...]]] = {
    "p1_op_type": {
        "sensor": ("sensor", "netdev", "nvsmi", "dcgm"),
        "prover": ("collectives", "nccl", "steps"),
    },
    "p2_model_size": {"sensor": ("sensor", "netdev"), "prover": ("collectives", "nccl", "windows")},
    "p3_finetune": {"sensor": (), "prover": ("collectives", "steps")},
    "flops": {"sensor": (), "prover": ("windows", "steps")},
    "consistency": {"sensor": ("netdev", "sensor"), "prover": ("collectives", "steps", "windows")},
    "compute": {"sensor": ("sensor", "spot_check", "host_rate"), "prover": ("labels", "windows")},
    "integrity": {"sensor": ("sensor",), "prover": ("steps", "windows")},
}
