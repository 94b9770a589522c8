"""Per-chip passes in file order for the rules (``_ckernels``, compiled; issue 22).

Each returns None when the records do not rise per chip in file order, when a value is
null, or when the extension is not built (``INSPECTORATE_PURE_PYTHON=1`` forces that):
the caller then takes its general path, which gives the same answer more slowly.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np
import polars as pl

try:
    if os.environ.get("INSPECTORATE_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    _ext: Any = importlib.import_module("inspectorate.trace._ckernels")
except ImportError:  # no compiler at install time: the callers' general paths are exact
    _ext = None


def compiled() -> bool:
    return _ext is not None


def _codes(chips: pl.Series) -> tuple[np.ndarray, int] | None:
    """The chip codes as contiguous uint32 and the largest, or None (not categorical, nulls)."""
    if not isinstance(chips.dtype, pl.Categorical) or chips.null_count() or chips.len() == 0:
        return None
    codes = np.ascontiguousarray(chips.to_physical().to_numpy(), dtype=np.uint32)
    return codes, int(codes.max())


def _floats(values: pl.Series) -> np.ndarray | None:
    if values.null_count():
        return None
    return np.ascontiguousarray(values.to_numpy(), dtype=np.float64)


def chip_overlaps(frame: pl.DataFrame, tolerance: float) -> np.ndarray | None:
    """Per record, whether it starts before its chip's previous record (file order) ended
    less ``tolerance``; None unless every chip's starts and ends both rise in file order."""
    if _ext is None:
        return None
    coded, ws, we = _codes(frame["chip_id"]), _floats(frame["ws"]), _floats(frame["we"])
    if coded is None or ws is None or we is None:
        return None
    out = np.zeros(frame.height, dtype=np.uint8)
    if not _ext.chip_overlaps(coded[0], ws, we, coded[1], float(tolerance), out):
        return None
    return out.view(np.bool_)


def chip_slots(frame: pl.DataFrame, width: float, end: float) -> pl.DataFrame | None:
    """Per chip with a record starting before ``end`` (less 1e-6): its first slot
    ``floor(ws / width + 1e-9)`` and its number of distinct slots (``chip_id``, ``first``,
    ``have``, in code order); None unless every chip's slots rise in file order."""
    if _ext is None:
        return None
    coded, ws = _codes(frame["chip_id"]), _floats(frame["ws"])
    if coded is None or ws is None:
        return None
    first = np.empty(coded[1] + 1, dtype=np.int64)
    have = np.empty(coded[1] + 1, dtype=np.int64)
    at = np.empty(coded[1] + 1, dtype=np.int64)
    if not _ext.chip_slots(coded[0], ws, coded[1], float(width), float(end), first, have, at):
        return None
    present = np.flatnonzero(have > 0)
    chips = frame["chip_id"].gather(at[present])  # each chip's value, from its first row
    return pl.DataFrame({"chip_id": chips, "first": first[present], "have": have[present]})
