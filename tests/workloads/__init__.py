"""Workloads written outside the testbed (they import nothing from ``inspectorate.testbed``):
each is a script that ``inspectorate capture`` runs, driven by a JSON plan of phases
(what it really does, what it claims). See ``_driver.py``."""
