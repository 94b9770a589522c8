"""Evidence formats: window records, canonical JSON + hash chain, trace IO, run dirs."""

from inspectorate.trace._canonical import (
    GENESIS,
    ChainBreak,
    canonical_json,
    chain_head,
    rechain,
    record_hash,
    verify_chain,
)
from inspectorate.trace._generate import SCENARIOS, GenSpec, generate_trace, iter_generated, write_generated
from inspectorate.trace._io import read_head, read_trace, write_trace
from inspectorate.trace._rundir import Phase, RunDir, load_run
from inspectorate.trace._schema import (
    FIELDS,
    SCHEMA_VERSION,
    format_time,
    json_schema,
    parse_time,
    validate_record,
)
from inspectorate.trace._trace import Trace
from inspectorate.trace.streams import (
    NcclLog,
    StepLog,
    read_chain_file,
    read_collectives,
    read_cpu,
    read_dcgm,
    read_labels,
    read_nccl_log,
    read_netdev,
    read_nvsmi,
    read_steps,
)

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
