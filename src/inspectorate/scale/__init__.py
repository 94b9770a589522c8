"""Verification at scale: the Dask engine for ``check``."""

from inspectorate.scale._dask import check_distributed, plan

__all__ = ["check_distributed", "plan"]
