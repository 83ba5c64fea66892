"""A fast structural check derived from a JSON Schema object definition.

Full JSON Schema validation costs microseconds per reading; in a batch of
thousands that is the hot path. ``fast_check(definition)`` derives, from the same
schema file, a check for the common shape (only properties whose keywords it
understands: type string/number/integer with length or range bounds, inclusive
or exclusive; type boolean; const; an enum of strings).
It answers ``True`` only when the object is certainly valid; on ``False`` the
caller runs the full validator, which also produces the precise error message.
The schema stays the single source of truth.
"""

from __future__ import annotations

import math
from typing import Any, Callable

__all__ = ["fast_check"]

_ANNOTATIONS = {"description", "title", "format", "$comment", "examples"}


_RANGE = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}


def _property_test(spec: dict) -> Callable[[Any], bool] | None:
    keywords = set(spec) - _ANNOTATIONS
    if keywords == {"const"}:
        const = spec["const"]
        return lambda v: type(v) is type(const) and v == const
    kind = spec.get("type")
    if "enum" in spec and keywords <= {"enum", "type"} and kind in (None, "string") and spec["enum"] \
            and all(type(member) is str for member in spec["enum"]):
        members = frozenset(spec["enum"])
        return lambda v: type(v) is str and v in members
    if kind == "string" and keywords <= {"type", "minLength", "maxLength"}:
        low, high = spec.get("minLength", 0), spec.get("maxLength", float("inf"))
        return lambda v: type(v) is str and low <= len(v) <= high
    if kind == "boolean" and keywords == {"type"}:
        return lambda v: type(v) is bool
    bounds = [spec[k] for k in _RANGE & keywords]
    # draft-04's boolean exclusiveMinimum is not understood (bool is an int in Python: refuse it here)
    if kind in ("number", "integer") and keywords <= {"type"} | _RANGE and \
            all(type(b) in (int, float) for b in bounds):
        low, high = spec.get("minimum", -math.inf), spec.get("maximum", math.inf)
        try:
            # v > x is v >= the next double above x (Python compares int and float exactly), so an
            # exclusive bound costs no extra comparison on the hot path
            if "exclusiveMinimum" in keywords:
                low = max(low, math.nextafter(float(spec["exclusiveMinimum"]), math.inf))
            if "exclusiveMaximum" in keywords:
                high = min(high, math.nextafter(float(spec["exclusiveMaximum"]), -math.inf))
        except OverflowError:   # a bound beyond any double: leave it to the full validator
            return None
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
