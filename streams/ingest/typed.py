"""Typed decoding of a domain's messages, derived from its JSON Schema.

``typed_decoder(schema_name)`` builds msgspec Structs from ``schemas/<name>.schema.json``
(one per reading definition, tagged by its ``type`` const, and the ``ReadingBatch``
envelope) so that one C call turns a message's bytes into validated readings:
types, required fields, string lengths, numeric bounds, enums and consts are checked
while parsing, with no Python dict walk. The schema stays the published wire contract
and the one source: nothing here is written by hand per domain.

The decoder is a fast path, not a second opinion: it accepts only what the schema
accepts, and whatever it refuses (a bad reading anywhere in an envelope, a non-JSON
number, a form it does not read, an integer written as ``1.0``) is decoded again by
the reference path in :mod:`streams.ingest.decode`, which gives each reading its own
precise dead letter. A differential test over a corpus of valid and invalid messages
holds the two to the same decisions for every domain.

Keywords understood per property: ``type`` string (``minLength``/``maxLength``),
number / integer (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``),
boolean, ``const``, ``enum`` of strings; annotations (``description``, ``format``, ...)
are ignored here (``dateObserved`` is parsed by :func:`streams.timeparse.reading_times`).
A field the message lacks reads as NaN (number, integer, boolean) or None (string).
A definition using anything else gets no typed decoder: its domain always takes the
reference path, correct and slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

import schemas

__all__ = ["TypedDecoder", "typed_decoder"]

_ANNOTATIONS = {"description", "title", "format", "$comment", "examples"}
_BOUNDS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}


class _Unsupported(Exception):
    """A schema construct the typed decoder does not express (the reference path handles it)."""


def _property_type(spec: dict) -> Any:
    keywords = set(spec) - _ANNOTATIONS
    kind = spec.get("type")
    if keywords == {"const"}:
        const = spec["const"]
        if type(const) is not str:
            raise _Unsupported(f"const {const!r}")
        return Literal[const]
    if "enum" in keywords and keywords <= {"enum", "type"} and kind in (None, "string"):
        members = spec["enum"]
        if not members or not all(type(m) is str for m in members):
            raise _Unsupported("enum of non-strings")
        return Literal[tuple(members)]
    if kind == "string" and keywords <= {"type", "minLength", "maxLength"}:
        return Annotated[str, Meta(min_length=spec.get("minLength"), max_length=spec.get("maxLength"))]
    if kind == "boolean" and keywords == {"type"}:
        return bool
    if kind in ("number", "integer") and keywords <= {"type", *_BOUNDS}:
        bounds = {_BOUNDS[k]: spec[k] for k in _BOUNDS if k in spec}
        if not all(type(b) in (int, float) for b in bounds.values()):   # draft-04 boolean exclusives
            raise _Unsupported("non-numeric bound")
        base = int if kind == "integer" else float
        return Annotated[base, Meta(**bounds)] if bounds else base
    raise _Unsupported(f"property keywords {sorted(keywords)}")


def _struct(name: str, definition: dict, tag_field: str = "type", readings_type=None) -> type:
    """A Struct for an object definition whose ``type`` property is a string const (the tag)."""
    if definition.get("type") != "object" or set(definition) - _ANNOTATIONS - {"type", "required", "properties"}:
        raise _Unsupported(f"definition {name}: only plain objects")
    properties = definition.get("properties", {})
    required = set(definition.get("required", ()))
    if not required <= set(properties):
        raise _Unsupported(f"definition {name}: a required field without a property")
    tag = properties.get(tag_field, {}).get("const")
    if type(tag) is not str or tag_field not in required:
        raise _Unsupported(f"definition {name}: no required string const {tag_field!r}")
    fields = []
    for field, spec in properties.items():
        if field == tag_field:
            continue
        if field == "readings" and readings_type is not None:
            if set(spec) - _ANNOTATIONS != {"type", "items", "minItems", "maxItems"} or spec["type"] != "array" \
                    or spec["items"] is not True:
                raise _Unsupported(f"definition {name}: readings")
            kind = Annotated[list[readings_type], Meta(min_length=spec["minItems"], max_length=spec["maxItems"])]
        else:
            kind = _property_type(spec)
        if field in required:
            fields.append((field, kind))
        else:   # absent: NaN for a number (a column's "not given"), None otherwise; an explicit null is refused
            fields.append((field, kind, math.nan if spec.get("type") in ("number", "integer", "boolean") else None))
    # required fields first (a Struct's positional order); names stay the JSON ones
    fields.sort(key=lambda f: len(f) == 3)
    return msgspec.defstruct(f"{name.title()}Reading" if readings_type is None else "ReadingBatch", fields,
                             tag_field=tag_field, tag=tag, gc=False, frozen=True)


@dataclass(frozen=True)
class TypedDecoder:
    """``decode(bytes)`` -> one reading Struct or an envelope Struct (``.gatewayId``, ``.readings``);
    raises ``msgspec.DecodeError`` (``ValidationError`` included) for anything it does not accept."""

    decode: Any
    envelope: type
    reading_types: tuple[type, ...]
    tags: dict        # reading Struct -> its ``type`` value
    kinds: dict       # reading Struct -> {field: "number" (number, integer, boolean) | "string" (string, enum, const)}


@cache
def typed_decoder(schema_name: str) -> TypedDecoder | None:
    """The typed decoder of a schema, or None when the schema uses what it cannot express."""
    schema = schemas.load(schema_name)
    definitions = schema["definitions"]
    reading = definitions["reading"]
    names = [ref["$ref"].removeprefix("#/definitions/") for ref in reading.get("oneOf", ())
             if isinstance(ref, dict) and ref.get("$ref", "").startswith("#/definitions/")]
    try:
        if "oneOf" in reading and (len(names) != len(reading["oneOf"]) or set(reading) - _ANNOTATIONS != {"oneOf"}):
            raise _Unsupported("reading: oneOf of anything but local references")
        readings = [_struct(name, definitions[name]) for name in names] if names else [_struct("reading", reading)]
        one = readings[0] if len(readings) == 1 else Union[tuple(readings)]
        envelope = _struct("envelope", definitions["envelope"], readings_type=one)
    except _Unsupported:
        return None
    decoder = msgspec.json.Decoder(Union[(*readings, envelope)])
    specs = [definitions[name] for name in names] if names else [reading]
    kinds = {struct: {field: "number" if spec.get("type") in ("number", "integer", "boolean") else "string"
                      for field, spec in definition["properties"].items() if field != "type"}
             for struct, definition in zip(readings, specs)}
    return TypedDecoder(decoder.decode, envelope, tuple(readings),
                        {r: r.__struct_config__.tag for r in readings}, kinds)
