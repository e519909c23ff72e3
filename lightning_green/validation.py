"""Argument checks shared by the callback and the recipe.

Every error names the argument, the allowed values and the value given, and is raised
before any training starts.
"""

from __future__ import annotations

import math
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
    optional: bool = False,
    integer: bool = False,
) -> float | int | None:
    """Return ``value`` if it is a finite number within the bounds, else raise ValueError.

    Example: ``check_number("pue", 0.9, minimum=1.0)`` raises
    ``ValueError: pue must be a number >= 1.0, got 0.9``.
    """
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if exclusive_minimum is not None:
        bounds.append(f"> {exclusive_minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    if exclusive_maximum is not None:
        bounds.append(f"< {exclusive_maximum:g}")
    kind = "an integer" if integer else "a number"
    allowed = f"{kind} {' and '.join(bounds)}".strip() + (" or None" if optional else "")
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} must be {allowed}, got None")
    ok = _is_number(value) and math.isfinite(value)
    if ok and integer and not float(value).is_integer():
        ok = False
    if ok:
        ok = (
            (minimum is None or value >= minimum)
            and (exclusive_minimum is None or value > exclusive_minimum)
            and (maximum is None or value <= maximum)
            and (exclusive_maximum is None or value < exclusive_maximum)
        )
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value) if integer else value


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise ValueError listing them."""
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {shown}, got {value!r}")
    return value


def check_optional_str(name: str, value: Any) -> str | None:
    """Return ``value`` if it is None or a non-empty str, else raise TypeError."""
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False, else raise ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_str(name: str, value: Any) -> str:
    """Return ``value`` if it is a non-empty str, else raise ValueError naming it.

    Example: ``check_str("job", "")`` raises ``ValueError: job must be a non-empty string, got ''``.
    """
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError(f"{name} must be a non-empty string, got {value!r}")
