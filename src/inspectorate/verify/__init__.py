"""inspectorate.verify (in progress)."""
