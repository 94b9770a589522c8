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

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names, for type checkers and editors
    from inspectorate.difr._calibrate import Calibration as Calibration
    from inspectorate.difr._calibrate import HonestVariant as HonestVariant
    from inspectorate.difr._calibrate import Thresholds as Thresholds
    from inspectorate.difr._calibrate import calibrate as calibrate
    from inspectorate.difr._calibrate import default_variants as default_variants
    from inspectorate.difr._covert import CovertPlan as CovertPlan
    from inspectorate.difr._covert import CovertSequence as CovertSequence
    from inspectorate.difr._covert import covert_decode as covert_decode
    from inspectorate.difr._covert import covert_serve as covert_serve
    from inspectorate.difr._covert_code import CodePlan as CodePlan
    from inspectorate.difr._covert_code import code_decode as code_decode
    from inspectorate.difr._covert_code import code_serve as code_serve
    from inspectorate.difr._log import LogHeader as LogHeader
    from inspectorate.difr._log import LogWriter as LogWriter
    from inspectorate.difr._log import ProjectionSpec as ProjectionSpec
    from inspectorate.difr._log import SamplingConfig as SamplingConfig
    from inspectorate.difr._log import SequenceRecord as SequenceRecord
    from inspectorate.difr._log import ServingLog as ServingLog
    from inspectorate.difr._log import commit_seed as commit_seed
    from inspectorate.difr._log import read_log as read_log
    from inspectorate.difr._log import write_log as write_log
    from inspectorate.difr._score import SequenceScore as SequenceScore
    from inspectorate.difr._score import score_log as score_log
    from inspectorate.difr._serve import ServeOptions as ServeOptions
    from inspectorate.difr._serve import generate as generate
    from inspectorate.difr._serve import serve as serve
    from inspectorate.difr._ties import TieCalibration as TieCalibration
    from inspectorate.difr._ties import TieReport as TieReport
    from inspectorate.difr._ties import check_ties as check_ties
    from inspectorate.difr._ties import nonce_seed as nonce_seed
    from inspectorate.difr._ties import serve_and_calibrate_ties as serve_and_calibrate_ties
    from inspectorate.difr._verify import DifrReport as DifrReport
    from inspectorate.difr._verify import verify_log as verify_log
    from inspectorate.models._checkpoint import Checkpoint as Checkpoint
    from inspectorate.models._checkpoint import load_checkpoint as load_checkpoint
    from inspectorate.models._checkpoint import model_hash as model_hash
    from inspectorate.models._checkpoint import save_checkpoint as save_checkpoint


_EXPORTS = {
    "Calibration": "_calibrate",
    "Checkpoint": "inspectorate.models._checkpoint",
    "CodePlan": "_covert_code",
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
    "TieCalibration": "_ties",
    "TieReport": "_ties",
    "check_ties": "_ties",
    "code_decode": "_covert_code",
    "code_serve": "_covert_code",
    "nonce_seed": "_ties",
    "serve_and_calibrate_ties": "_ties",
    "calibrate": "_calibrate",
    "commit_seed": "_log",
    "covert_decode": "_covert",
    "covert_serve": "_covert",
    "default_variants": "_calibrate",
    "generate": "_serve",
    "load_checkpoint": "inspectorate.models._checkpoint",
    "model_hash": "inspectorate.models._checkpoint",
    "read_log": "_log",
    "save_checkpoint": "inspectorate.models._checkpoint",
    "score_log": "_score",
    "serve": "_serve",
    "verify_log": "_verify",
    "write_log": "_log",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
