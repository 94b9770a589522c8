"""The one verdict vocabulary of every re-computation and property: :class:`Decision`.

``verify`` (properties), ``replay`` (training replay), ``difr`` (served-model
re-computation) and the ``agent`` (a semantic rule it could not settle) all answer with
one of three words:

* ``consistent``: the evidence agrees with the claim;
* ``inconsistent``: it contradicts the claim;
* ``unverifiable``: the check could not decide (a stream missing, the verifier's data or
  code differs from the claim's, the model could not tell). Never read as a pass.

A ``str`` enum, so a decision compares equal to its word and JSON output stays the same
strings. Older files said ``indeterminate`` (replay, difr, verify findings) and
``undetermined`` (the agent's judgements); :meth:`Decision.parse` reads those as
``unverifiable``, and nothing writes them any more.
"""

from __future__ import annotations

from enum import StrEnum

from inspectorate.errors import InputError


class Decision(StrEnum):
    CONSISTENT = "consistent"
    INCONSISTENT = "inconsistent"
    UNVERIFIABLE = "unverifiable"

    @classmethod
    def parse(cls, word: object, where: str | None = None) -> Decision:
        """The decision a word names (old words included); InputError naming ``where``
        (a file, a field) for anything else."""
        if isinstance(word, str) and LEGACY.get(word, word) in cls._value2member_map_:
            return cls(LEGACY.get(word, word))
        known = "|".join(d.value for d in cls)
        raise InputError(f"decision must be one of {known}, got {word!r}", where)


# Words older versions wrote for the third outcome; readers accept them.
LEGACY = {"indeterminate": Decision.UNVERIFIABLE, "undetermined": Decision.UNVERIFIABLE}


__all__ = ["LEGACY", "Decision"]
