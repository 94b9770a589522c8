"""Served-model identity by re-computation: Token-DiFR and Activation-DiFR.

    from inspectorate.difr import load_checkpoint, read_log, verify_log
    report = verify_log(read_log("served.jsonl"), load_checkpoint("model.pt"))
    report.decision, report.to_dict()["token_difr"]

A server writes its log with :class:`LogWriter` (or :func:`serve` for a testbed GPT);
the verifier re-computes every token under the shared Gumbel-max sampler and the
committed activation projections, and judges each sequence against thresholds
calibrated on honest non-determinism (:func:`calibrate`). Needs torch (``[testbed]``).
"""

from inspectorate.difr._calibrate import (
    Calibration,
    HonestVariant,
    Thresholds,
    calibrate,
    covert_bits,
    default_variants,
    fit_threshold,
)
from inspectorate.difr._checkpoint import (
    Checkpoint,
    file_sha256,
    load_checkpoint,
    model_hash,
    save_checkpoint,
    weights_sha256,
)
from inspectorate.difr._finding import difr_finding
from inspectorate.difr._log import (
    LogHeader,
    LogWriter,
    ProjectionSpec,
    SamplingConfig,
    SequenceRecord,
    ServingLog,
    commit_seed,
    read_log,
    write_log,
)
from inspectorate.difr._sampling import choose, gumbel_noise, shortfall
from inspectorate.difr._score import SequenceScore, score_log
from inspectorate.difr._serve import ServeOptions, corpus_prompts, generate, read_prompts, serve
from inspectorate.difr._verify import DifrReport, verify_log

__all__ = [
    "Calibration",
    "Checkpoint",
    "DifrReport",
    "HonestVariant",
    "LogHeader",
    "LogWriter",
    "ProjectionSpec",
    "SamplingConfig",
    "SequenceRecord",
    "SequenceScore",
    "ServeOptions",
    "ServingLog",
    "Thresholds",
    "calibrate",
    "choose",
    "commit_seed",
    "corpus_prompts",
    "covert_bits",
    "default_variants",
    "difr_finding",
    "file_sha256",
    "fit_threshold",
    "generate",
    "gumbel_noise",
    "load_checkpoint",
    "model_hash",
    "read_log",
    "read_prompts",
    "save_checkpoint",
    "score_log",
    "serve",
    "shortfall",
    "verify_log",
    "weights_sha256",
    "write_log",
]
