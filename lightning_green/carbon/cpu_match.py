"""Fuzzy matching of an OS-reported CPU model string to the names in a TDP table."""

from __future__ import annotations

import re
from collections.abc import Mapping


def tokens(text: str) -> frozenset[str]:
    """Lower-case alphanumeric tokens: ``"Core i7-8700"`` -> ``{"core", "i7", "8700"}``."""
    return frozenset(t for t in re.split(r"[^0-9a-z]+", text.lower()) if t)


def clean_cpu_model(model: str) -> str:
    """Drop what OSes add to a model name: "(R)", "(TM)", "CPU @ 2.50GHz", "32-Core Processor".

    codecarbon's clean-up (``core/cpu.py``, ``_get_matching_cpu``) plus "(TM)" and core counts.
    """
    model = re.sub(r"\((R|TM)\)", "", model, flags=re.IGNORECASE)
    model = re.split(r" CPU @ ", model, maxsplit=1)[0]
    model = re.sub(r"\s*@\s*\d+(\.\d+)?\s*GHz", "", model, flags=re.IGNORECASE)
    model = re.sub(r"\b\d+-Core Processor\b|\bProcessor\b|\bCPU\b", "", model, flags=re.IGNORECASE)
    return " ".join(model.split())


class CpuMatcher:
    """Finds a CPU model in a ``name -> TDP W`` table the way codecarbon does, a little stricter.

    Steps, first hit wins:

    1. exact name, case-insensitive;
    2. exact name after :func:`clean_cpu_model`;
    3. token sets: entries whose tokens all appear in the cleaned model string; the entry
       with the most tokens wins (``"AMD EPYC 7543 32-Core Processor"`` -> ``"AMD EPYC 7543"``);
    4. the reverse, entries that contain every token of the model, fewest tokens first, only
       when the model has a digit: a bare family ("AMD EPYC") never picks one model.

    Ties between entries count only when they share one TDP; otherwise no match, as in
    codecarbon's non-greedy mode.
    """

    def __init__(self, table: Mapping[str, float]) -> None:
        self._table = dict(table)
        self._lower: dict[str, str] = {}
        for name in self._table:
            self._lower.setdefault(name.lower(), name)
        self._index = [(tokens(name), name) for name in self._table]

    def match(self, cpu_model: str) -> str | None:
        """The table name matching ``cpu_model``, or None."""
        if not isinstance(cpu_model, str) or not cpu_model.strip():
            return None
        cleaned = clean_cpu_model(cpu_model)
        for candidate in (cpu_model.strip().lower(), cleaned.lower()):
            if candidate in self._lower:
                return self._lower[candidate]
        raw = tokens(cleaned)
        if not raw:
            return None
        hits = [(len(toks), name) for toks, name in self._index if toks and toks <= raw]
        if not hits and any(ch.isdigit() for token in raw for ch in token):
            hits = [(-len(toks), name) for toks, name in self._index if raw <= toks]
        if not hits:
            return None
        best = max(size for size, _ in hits)
        names = sorted(name for size, name in hits if size == best)
        return names[0] if len({self._table[n] for n in names}) == 1 else None
