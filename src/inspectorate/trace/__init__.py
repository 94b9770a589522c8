"""Evidence formats: window records, canonical JSON + hash chain, trace IO, run dirs.

Every name is imported on first use (PEP 562): ``inspectorate.cli`` lists the
generator's scenarios without loading polars, numpy or pyarrow."""

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names below, for type checkers and editors
    from inspectorate.trace._canonical import GENESIS as GENESIS
    from inspectorate.trace._canonical import ChainBreak as ChainBreak
    from inspectorate.trace._canonical import canonical_json as canonical_json
    from inspectorate.trace._canonical import chain_head as chain_head
    from inspectorate.trace._canonical import rechain as rechain
    from inspectorate.trace._canonical import record_hash as record_hash
    from inspectorate.trace._canonical import verify_chain as verify_chain
    from inspectorate.trace._generate import GenSpec as GenSpec
    from inspectorate.trace._generate import generate_trace as generate_trace
    from inspectorate.trace._generate import iter_generated as iter_generated
    from inspectorate.trace._generate import write_generated as write_generated
    from inspectorate.trace._io import read_head as read_head
    from inspectorate.trace._io import read_trace as read_trace
    from inspectorate.trace._io import write_trace as write_trace
    from inspectorate.trace._rundir import Phase as Phase
    from inspectorate.trace._rundir import RunDir as RunDir
    from inspectorate.trace._rundir import load_run as load_run
    from inspectorate.trace._scenarios import SCENARIOS as SCENARIOS
    from inspectorate.trace._schema import FIELDS as FIELDS
    from inspectorate.trace._schema import SCHEMA_VERSION as SCHEMA_VERSION
    from inspectorate.trace._schema import format_time as format_time
    from inspectorate.trace._schema import json_schema as json_schema
    from inspectorate.trace._schema import parse_time as parse_time
    from inspectorate.trace._schema import validate_record as validate_record
    from inspectorate.trace._trace import Trace as Trace
    from inspectorate.trace.streams import NcclLog as NcclLog
    from inspectorate.trace.streams import StepLog as StepLog
    from inspectorate.trace.streams import read_chain_file as read_chain_file
    from inspectorate.trace.streams import read_collectives as read_collectives
    from inspectorate.trace.streams import read_cpu as read_cpu
    from inspectorate.trace.streams import read_dcgm as read_dcgm
    from inspectorate.trace.streams import read_labels as read_labels
    from inspectorate.trace.streams import read_nccl_log as read_nccl_log
    from inspectorate.trace.streams import read_netdev as read_netdev
    from inspectorate.trace.streams import read_nvsmi as read_nvsmi
    from inspectorate.trace.streams import read_steps as read_steps

_EXPORTS = {
    "GENESIS": "_canonical",
    "ChainBreak": "_canonical",
    "canonical_json": "_canonical",
    "chain_head": "_canonical",
    "rechain": "_canonical",
    "record_hash": "_canonical",
    "verify_chain": "_canonical",
    "SCENARIOS": "_scenarios",
    "GenSpec": "_generate",
    "generate_trace": "_generate",
    "iter_generated": "_generate",
    "write_generated": "_generate",
    "read_head": "_io",
    "read_trace": "_io",
    "write_trace": "_io",
    "Phase": "_rundir",
    "RunDir": "_rundir",
    "load_run": "_rundir",
    "FIELDS": "_schema",
    "SCHEMA_VERSION": "_schema",
    "format_time": "_schema",
    "json_schema": "_schema",
    "parse_time": "_schema",
    "validate_record": "_schema",
    "Trace": "_trace",
    "NcclLog": "streams",
    "StepLog": "streams",
    "read_chain_file": "streams",
    "read_collectives": "streams",
    "read_cpu": "streams",
    "read_dcgm": "streams",
    "read_labels": "streams",
    "read_nccl_log": "streams",
    "read_netdev": "streams",
    "read_nvsmi": "streams",
    "read_steps": "streams",
}

__all__ = [
    "FIELDS",
    "GENESIS",
    "GenSpec",
    "SCENARIOS",
    "generate_trace",
    "iter_generated",
    "write_generated",
    "SCHEMA_VERSION",
    "Trace",
    "json_schema",
    "format_time",
    "parse_time",
    "read_head",
    "read_trace",
    "validate_record",
    "write_trace",
    "ChainBreak",
    "canonical_json",
    "chain_head",
    "rechain",
    "record_hash",
    "verify_chain",
    "NcclLog",
    "Phase",
    "RunDir",
    "StepLog",
    "load_run",
    "read_chain_file",
    "read_collectives",
    "read_cpu",
    "read_dcgm",
    "read_labels",
    "read_nccl_log",
    "read_netdev",
    "read_nvsmi",
    "read_steps",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
