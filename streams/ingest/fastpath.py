"""A fast structural check derived from a JSON Schema object definition.

Full JSON Schema validation costs microseconds per reading; in a batch of
thousands that is the hot path. ``fast_check(definition)`` derives, from the same
schema file, a check for the common shape (only properties whose keywords it
understands: type string/number/integer with length or range bounds, const).
It answers ``True`` only when the object is certainly valid; on ``False`` the
caller runs the full validator, which also produces the precise error message.
The schema stays the single source of truth.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["fast_check"]

_ANNOTATIONS = {"description", "title", "format", "$comment", "examples"}


def _property_test(spec: dict) -> Callable[[Any], bool] | None:
    keywords = set(spec) - _ANNOTATIONS
    if keywords == {"const"}:
        const = spec["const"]
        return lambda v: type(v) is type(const) and v == const
    kind = spec.get("type")
    if kind == "string" and keywords <= {"type", "minLength", "maxLength"}:
        low, high = spec.get("minLength", 0), spec.get("maxLength", float("inf"))
        return lambda v: type(v) is str and low <= len(v) <= high
    if kind in ("number", "integer") and keywords <= {"type", "minimum", "maximum"}:
        low, high = spec.get("minimum", float("-inf")), spec.get("maximum", float("inf"))
        types = (int,) if kind == "integer" else (int, float)   # bool is not a JSON number
        return lambda v: type(v) in types and low <= v <= high
    return None


def fast_check(definition: dict) -> Callable[[Any], bool]:
    """A predicate that is ``True`` only for objects the definition certainly accepts."""
    if definition.get("type") != "object" or "additionalProperties" in definition:
        return lambda obj: False
    tests = {}
    for name, spec in definition.get("properties", {}).items():
        test = _property_test(spec)
        if test is not None:
            tests[name] = test
    required = frozenset(definition.get("required", ()))
    if not required <= tests.keys():
        return lambda obj: False

    def check(obj) -> bool:
        if type(obj) is not dict or not required <= obj.keys():
            return False
        for name, value in obj.items():
            test = tests.get(name)
            if test is None or not test(value):
                return False
        return True

    return check
