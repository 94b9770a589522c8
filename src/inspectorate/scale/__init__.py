"""Verification at scale: the Dask engine for ``check`` and the partitioned layout
(per-chip chains, a Merkle root per window)."""

from inspectorate.scale._dask import check_distributed, plan
from inspectorate.scale._layout import (
    LAYOUT,
    convert,
    merkle_root,
    read_partitioned,
    verify_partitioned,
    write_partitioned,
)

__all__ = [
    "LAYOUT",
    "check_distributed",
    "convert",
    "merkle_root",
    "plan",
    "read_partitioned",
    "verify_partitioned",
    "write_partitioned",
]
