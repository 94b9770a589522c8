"""inspectorate.attacks (in progress)."""
