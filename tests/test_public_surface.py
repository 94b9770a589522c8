"""The public surface, pinned (cf. httpx's test_exported_members): the exact names each
package exports. A name added or dropped here is an API change made on purpose; a
helper a bench script or a test needs is imported from its private module instead."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import inspectorate

SRC = Path(inspectorate.__file__).parent
TORCH = importlib.util.find_spec("torch") is not None
NEEDS_TORCH = {"inspectorate.difr", "inspectorate.replay", "inspectorate.testbed"}

PUBLIC = {
    "inspectorate": [
        "Commitment",
        "InputError",
        "RunVerdict",
        "Trace",
        "Verdict",
        "__version__",
        "check",
        "load_commitment",
        "read_trace",
        "verify_run",
    ],
    "inspectorate.agent": [
        "AgentReport",
        "AgentSettings",
        "BackendError",
        "CallRecord",
        "CompileOutcome",
        "Ledger",
        "PRICE_TABLE_VERSION",
        "Price",
        "PriceTable",
        "RuleJudgement",
        "build_digest",
        "check_with_agent",
        "compile_commitment",
        "load_prices",
        "make_backend",
        "verify_with_agent",
    ],
    "inspectorate.attacks": [
        "ATTACKS",
        "Attack",
        "Attacker",
        "Compound",
        "Limits",
        "OfflineAttacker",
        "Proposal",
        "RUNDIR_ATTACKS",
        "RedteamReport",
        "RundirAttack",
        "RundirCompound",
        "SandboxError",
        "SandboxResult",
        "SandboxUnavailable",
        "Step",
        "attack",
        "attack_names",
        "check_attack",
        "compose",
        "compose_rundir",
        "conserves_work",
        "defend",
        "get_attack",
        "get_rundir_attack",
        "llm_defend",
        "make_attacker",
        "redteam",
        "run_mutation",
        "run_sandboxed",
        "rundir_attack",
        "violate",
    ],
    "inspectorate.bench": [
        "Answer",
        "BenchVerdict",
        "Case",
        "CaseView",
        "Suite",
        "TRACKS",
        "Track",
        "Trainable",
        "VERIFIERS",
        "Verifier",
        "auroc",
        "build_suite",
        "check_verifier",
        "compare",
        "get_track",
        "load_suite",
        "make_verifier",
        "public_suite",
        "run_bench",
        "tpr_at_fpr",
        "verifier",
        "views_for",
        "with_intervals",
    ],
    "inspectorate.capture": [
        "ChainWriter",
        "CollectiveLog",
        "CpuSampler",
        "LabelWriter",
        "NetdevSampler",
        "NvmlSampler",
        "ProcSensor",
        "SENSOR_FILE",
        "Sensors",
        "StepRecorder",
        "active",
        "allreduce_logging_hook",
        "gpu_available",
        "hf_callback",
        "lightning_callback",
        "phase",
        "run_sensor",
        "tokens",
    ],
    "inspectorate.handover": [
        "EvalLog",
        "ServedLog",
        "TrainingHandover",
        "challenge_seed",
        "declared_optimizer",
        "evaluated",
        "keyed_noise",
        "run_dir",
        "served",
        "training",
        "write_weights",
    ],
    "inspectorate.commitment": [
        "Commitment",
        "RULES",
        "RuleKind",
        "RuleSpec",
        "Verdict",
        "Violation",
        "by_param",
        "check",
        "check_rule",
        "describe_kind",
        "known_kinds",
        "load_commitment",
        "rule",
        "violation",
    ],
    "inspectorate.data": [
        "SEED_TRACES",
        "commitment_path",
        "seed_path",
    ],
    "inspectorate.difr": [
        "Calibration",
        "Checkpoint",
        "CodePlan",
        "CovertPlan",
        "CovertSequence",
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
        "TieCalibration",
        "TieReport",
        "calibrate",
        "check_ties",
        "code_decode",
        "code_serve",
        "commit_seed",
        "covert_decode",
        "covert_serve",
        "default_variants",
        "generate",
        "load_checkpoint",
        "model_hash",
        "nonce_seed",
        "read_log",
        "save_checkpoint",
        "score_log",
        "serve",
        "serve_and_calibrate_ties",
        "verify_log",
        "write_log",
    ],
    "inspectorate.ledger": [
        "Cosigned",
        "HeadSigner",
        "Keyring",
        "LogOperator",
        "LogView",
        "Problem",
        "ProofError",
        "SignedReport",
        "SigningKey",
        "Witness",
        "audit_log",
        "check_stream",
        "encode_proof",
        "enrol",
        "generate_key",
        "init_log",
        "leaf_hash",
        "load_key",
        "load_keyring",
        "machine_identity",
        "merkle_root",
        "node_hash",
        "open_log",
        "open_signer",
        "parse_proof",
        "save_key",
        "sign_file",
        "verify_consistency",
        "verify_inclusion",
        "verify_signed",
        "verify_signed_trace",
    ],
    "inspectorate.models": [
        "ARCHITECTURES",
        "BatchSampler",
        "CharVocab",
        "Checkpoint",
        "Corpus",
        "ExportedSpec",
        "GPT",
        "GPTConfig",
        "GPTSpec",
        "LlamaSpec",
        "MLPSpec",
        "ModelSpec",
        "PRESETS",
        "RNNSpec",
        "SPLITS",
        "Weights",
        "architecture",
        "config_of",
        "count_params",
        "dataset_fingerprint",
        "file_sha256",
        "flops_per_token",
        "kv_cache_bytes",
        "load_checkpoint",
        "load_corpus",
        "load_weights",
        "map_state_dict",
        "model_hash",
        "named_spec",
        "preset",
        "read_model_file",
        "resolve_model",
        "sample_next",
        "save_checkpoint",
        "save_weights",
        "spec_from_dict",
        "split_range",
        "weights_sha256",
        "write_model_file",
    ],
    "inspectorate.plugins": [
        "AttackFunction",
        "ConformanceError",
        "Finding",
        "PluginError",
        "PropertyFunction",
        "RuleFunction",
        "RundirAttackFunction",
        "Violation",
        "attack",
        "by_param",
        "check_attack",
        "check_property",
        "check_rule",
        "finding",
        "prop",
        "rule",
        "rundir_attack",
        "unverifiable",
        "violation",
    ],
    "inspectorate.replay": [
        "CheckpointRef",
        "FAMILY_MODULES",
        "ReplayResult",
        "SegmentResult",
        "Tolerance",
        "TrainSpec",
        "TrainingClaim",
        "calibrate_tolerance",
        "choose_segments",
        "code_fingerprint",
        "derive_seed",
        "quick_train",
        "read_claim",
        "record_run",
        "replay_claim",
        "replay_finding",
    ],
    "inspectorate.report": [
        "progress",
        "render_run_text",
        "report_check",
        "report_path",
        "report_run",
        "verdict_text",
        "write_report",
    ],
    "inspectorate.scale": [
        "LAYOUT",
        "PartitionedWriter",
        "check_distributed",
        "convert",
        "generate_partitioned",
        "merkle_root",
        "read_partitioned",
        "verify_partitioned",
        "write_partitioned",
    ],
    "inspectorate.testbed": [
        "BatchSampler",
        "CharVocab",
        "Corpus",
        "DEFAULT_PHASES",
        "GPT",
        "GPTConfig",
        "Label",
        "PHASES",
        "PRESETS",
        "PROFILES",
        "PhaseSpec",
        "Profile",
        "SPLITS",
        "count_params",
        "dataset_fingerprint",
        "flops_per_token",
        "format_summary",
        "get_profile",
        "load_corpus",
        "preset",
        "run_testbed",
        "select_phases",
        "split_range",
        "summarize_run",
        "sweep",
    ],
    "inspectorate.trace": [
        "ChainBreak",
        "FIELDS",
        "GENESIS",
        "GenSpec",
        "NcclLog",
        "Phase",
        "RunDir",
        "SCENARIOS",
        "SCHEMA_VERSION",
        "StepLog",
        "Trace",
        "canonical_json",
        "chain_head",
        "format_time",
        "generate_trace",
        "iter_generated",
        "json_schema",
        "load_run",
        "parse_time",
        "read_chain_file",
        "read_collectives",
        "read_cpu",
        "read_dcgm",
        "read_head",
        "read_labels",
        "read_nccl_log",
        "read_netdev",
        "read_nvsmi",
        "read_steps",
        "read_trace",
        "rechain",
        "record_hash",
        "validate_record",
        "verify_chain",
        "write_generated",
        "write_trace",
    ],
    "inspectorate.verify": [
        "CONSISTENT",
        "Calibration",
        "Claim",
        "Context",
        "Finding",
        "INCONSISTENT",
        "Inspector",
        "POLICIES",
        "PROPERTIES",
        "PhaseEvidence",
        "PhaseVerdict",
        "RunVerdict",
        "SUBSETS",
        "UNVERIFIABLE",
        "check_property",
        "finding",
        "known_properties",
        "prop",
        "unverifiable",
        "verify_run",
    ],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_each_package_exports_exactly_its_public_names(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PUBLIC[package]
    if package in NEEDS_TORCH and not TORCH:
        pytest.skip("resolving these names imports torch")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_every_package_pins_its_surface():
    """A new package (or public module) gets its exact list here too."""
    packages = {"inspectorate", "inspectorate.plugins"} | {
        f"inspectorate.{p.parent.name}"
        for p in SRC.glob("*/__init__.py")
        if not p.parent.name.startswith("_")
    }
    unpinned = sorted(packages - set(PUBLIC))
    assert unpinned == [], f"pin the public names of {unpinned} in PUBLIC"


def _lazy_modules() -> list[Path]:
    return sorted(
        p
        for p in [*SRC.glob("*/__init__.py"), SRC / "__init__.py", SRC / "plugins.py"]
        if "lazy_exports(" in p.read_text(encoding="utf-8")
    )


@pytest.mark.parametrize("path", _lazy_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_lazy_exports_are_visible_to_type_checkers(path):
    """Every lazily exported name is also imported under ``if TYPE_CHECKING:`` from the
    module it loads from, so mypy and editors resolve it without running the import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = "inspectorate" if path.parent == SRC else f"inspectorate.{path.parent.name}"
    exports: dict[str, str] = {}
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_EXPORTS":
            for key, value in zip(node.value.keys, node.value.values):  # type: ignore[attr-defined]
                mod = value.value
                exports[key.value] = mod if mod.split(".")[0] == "inspectorate" else f"{package}.{mod}"
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    typed.update({a.asname or a.name: imp.module for a in imp.names})
    assert exports and {k: v for k, v in typed.items() if k in exports} == exports
    assert set(exports) <= set(typed)


def test_the_front_door_is_lazy_and_complete():
    """``import inspectorate`` loads no engine (nor polars: the allocator setting must
    come first); the names a user needs resolve on first use."""
    code = (
        "import sys, inspectorate\n"
        "assert 'polars' not in sys.modules and 'inspectorate.commitment' not in sys.modules\n"
        "from inspectorate import check, load_commitment, read_trace, verify_run, Verdict, RunVerdict\n"
        "from inspectorate.data import seed_path\n"
        "v = check(read_trace(seed_path('legit_finetune')), load_commitment(seed_path('no_frontier_training.yml')))\n"
        "assert isinstance(v, Verdict) and v.verdict == 1\n"
        "assert isinstance(inspectorate.__version__, str)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
