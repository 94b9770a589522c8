"""Verification at scale: the Dask engine for ``check`` and the partitioned layout
(per-chip chains, a Merkle root per window)."""

from inspectorate.scale._dask import check_distributed
from inspectorate.scale._layout import (
    LAYOUT,
    convert,
    merkle_root,
    read_partitioned,
    verify_partitioned,
    write_partitioned,
)
from inspectorate.scale._writer import PartitionedWriter, generate_partitioned

__all__ = [
    "LAYOUT",
    "PartitionedWriter",
    "check_distributed",
    "convert",
    "generate_partitioned",
    "merkle_root",
    "read_partitioned",
    "verify_partitioned",
    "write_partitioned",
]
