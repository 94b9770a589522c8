"""inspectorate.bench (in progress)."""
