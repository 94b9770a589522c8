"""Parsers for telemetry streams, one module per format: nvidia-smi, DCGM, NCCL INFO logs, /proc/net/dev, CPU,
collectives, phase labels and step records.

CSV tools (nvidia-smi, DCGM CSV, cpu.csv) are parsed column-wise with Polars; unit
suffixes and ``[N/A]`` cells are handled per column, and a bad cell is reported with its
line (``InputError(reason, path, line)``). Line formats with free text interleaved
(``dcgmi dmon``, NCCL INFO, /proc/net/dev snapshots) are read line by line.
Each parser returns a Polars DataFrame with typed columns; times are float epoch
seconds in ``t``. Wall-clock strings without a zone are read as UTC (our samplers
write UTC); ``tz_offset_s`` shifts them when a capture used local time.
Accepted formats are listed in docs/capture.md.
"""

from __future__ import annotations

from inspectorate.trace.streams._text import parse_wallclock
from inspectorate.trace.streams.collectives import COLLECTIVE_SCHEMA, read_collectives
from inspectorate.trace.streams.cpu import read_cpu
from inspectorate.trace.streams.dcgm import DCGM_COLUMNS, DCGM_FIELDS, read_dcgm
from inspectorate.trace.streams.labels import LABEL_SCHEMA, read_labels
from inspectorate.trace.streams.nccl import NCCL_DATATYPES, NCCL_REDOPS, NcclLog, read_nccl_log
from inspectorate.trace.streams.netdev import NETDEV_FIELDS, netdev_rates, read_netdev
from inspectorate.trace.streams.nvsmi import NVSMI_ALIASES, read_nvsmi
from inspectorate.trace.streams.sensor import SensorLog, per_process_cpu, read_sensor
from inspectorate.trace.streams.steps import (
    ChainTail,
    StepLog,
    flatten_record,
    has_records,
    is_complete_line,
    iter_chain,
    read_chain_file,
    read_steps,
    scan_chain,
)

__all__ = [
    "COLLECTIVE_SCHEMA",
    "DCGM_COLUMNS",
    "ChainTail",
    "DCGM_FIELDS",
    "LABEL_SCHEMA",
    "NCCL_DATATYPES",
    "NCCL_REDOPS",
    "NETDEV_FIELDS",
    "NVSMI_ALIASES",
    "NcclLog",
    "SensorLog",
    "StepLog",
    "flatten_record",
    "has_records",
    "is_complete_line",
    "iter_chain",
    "netdev_rates",
    "parse_wallclock",
    "per_process_cpu",
    "read_chain_file",
    "read_collectives",
    "read_cpu",
    "read_dcgm",
    "read_labels",
    "read_nccl_log",
    "read_netdev",
    "read_nvsmi",
    "read_sensor",
    "read_steps",
    "scan_chain",
]
