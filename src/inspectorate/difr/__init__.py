"""Served-model identity by re-computation: Token-DiFR and Activation-DiFR.

    from inspectorate.difr import load_checkpoint, read_log, verify_log
    report = verify_log(read_log("served.jsonl"), load_checkpoint("model.pt"))
    report.decision, report.to_dict()["token_difr"]

A server writes its log with :class:`LogWriter` (or :func:`serve` for a testbed GPT);
the verifier re-computes every token under the shared Gumbel-max sampler and the
committed activation projections, and judges each sequence against thresholds
calibrated on honest non-determinism (:func:`calibrate`). Needs torch (``[testbed]``).

Names are imported lazily (PEP 562): the CLI mounts this package's commands
without importing torch; touching a name imports it.
"""

from __future__ import annotations

from inspectorate._lazy import lazy_exports

_EXPORTS = {
    "Calibration": "_calibrate",
    "Checkpoint": "inspectorate.models._checkpoint",
    "CovertPlan": "_covert",
    "CovertSequence": "_covert",
    "DifrReport": "_verify",
    "HonestVariant": "_calibrate",
    "LogHeader": "_log",
    "LogWriter": "_log",
    "ProjectionSpec": "_log",
    "SamplingConfig": "_log",
    "SequenceRecord": "_log",
    "SequenceScore": "_score",
    "ServeOptions": "_serve",
    "ServingLog": "_log",
    "Thresholds": "_calibrate",
    "calibrate": "_calibrate",
    "choose": "_sampling",
    "commit_seed": "_log",
    "corpus_prompts": "_serve",
    "covert_bits": "_calibrate",
    "covert_decode": "_covert",
    "covert_serve": "_covert",
    "default_variants": "_calibrate",
    "difr_finding": "_finding",
    "file_sha256": "inspectorate.models._checkpoint",
    "fit_threshold": "_calibrate",
    "generate": "_serve",
    "gumbel_noise": "_sampling",
    "load_checkpoint": "inspectorate.models._checkpoint",
    "model_hash": "inspectorate.models._checkpoint",
    "read_log": "_log",
    "read_prompts": "_serve",
    "save_checkpoint": "inspectorate.models._checkpoint",
    "score_log": "_score",
    "serve": "_serve",
    "shortfall": "_sampling",
    "verify_log": "_verify",
    "weights_sha256": "inspectorate.models._checkpoint",
    "write_log": "_log",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
