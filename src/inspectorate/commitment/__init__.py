"""inspectorate.commitment (in progress)."""
