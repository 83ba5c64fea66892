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
boolean, ``const``, ``enum`` of strings, an array of numbers (``items`` one of those
number types, ``minItems``/``maxItems``; decoded as a tuple), a plain object
(``required``, ``properties``: a nested Struct, e.g. ``location``'s GeoJSON Point) and a
local ``$ref`` to one; annotations (``description``, ``format``, ...) are ignored here
(``dateObserved`` is parsed by :func:`streams.timeparse.reading_times`). A field the message
lacks reads as NaN (number, integer, boolean) or None (string, array, object).
A definition using anything else gets no typed decoder: its domain always takes the
reference path, correct and slower.

Every reading of an envelope must name its ``type``, as the schema requires: the envelope's
readings are a tagged union also where a domain has one kind of reading (msgspec does not
insist on the tag of a Struct that is the only one that can stand), its other member a
Struct whose tag no typed message can carry (``"\\u0000"``: :func:`streams.ingest.decode`
sends any message with a ``\\u`` escape to the reference path).
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


#: The tag of the Struct that makes a domain's one kind of reading a tagged union in an envelope; no message
#: the typed path reads carries it (see the module docstring).
_NO_READING_TAG = "\x00"


def _property_type(spec: dict, definitions: dict) -> Any:
    keywords = set(spec) - _ANNOTATIONS
    kind = spec.get("type")
    if keywords == {"$ref"}:
        name = spec["$ref"].removeprefix("#/definitions/")
        if name == spec["$ref"] or name not in definitions:
            raise _Unsupported(f"$ref {spec['$ref']!r}")
        return _object_struct(name, definitions[name], definitions)
    if kind == "object" and keywords <= {"type", "required", "properties"}:
        return _object_struct("object", spec, definitions)
    if kind == "array" and keywords <= {"type", "items", "minItems", "maxItems"} and isinstance(spec.get("items"), dict) \
            and spec["items"].get("type") in ("number", "integer"):
        item = _property_type(spec["items"], definitions)
        return Annotated[tuple[item, ...], Meta(min_length=spec.get("minItems"), max_length=spec.get("maxItems"))]
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


def _fields(name: str, definition: dict, definitions: dict, skip: str | None = None, readings_type=None) -> list:
    """The Struct fields of an object definition: required ones first (a Struct's positional order), names
    as in JSON; an absent optional field is NaN for a number (a column's "not given"), None otherwise; an
    explicit null is refused."""
    properties = definition.get("properties", {})
    required = set(definition.get("required", ()))
    if not required <= set(properties):
        raise _Unsupported(f"definition {name}: a required field without a property")
    fields = []
    for field, spec in properties.items():
        if field == skip:
            continue
        if field == "readings" and readings_type is not None:
            if set(spec) - _ANNOTATIONS != {"type", "items", "minItems", "maxItems"} or spec["type"] != "array" \
                    or spec["items"] is not True:
                raise _Unsupported(f"definition {name}: readings")
            kind = Annotated[list[readings_type], Meta(min_length=spec["minItems"], max_length=spec["maxItems"])]
        else:
            kind = _property_type(spec, definitions)
        if field in required:
            fields.append((field, kind))
        else:
            fields.append((field, kind, math.nan if spec.get("type") in ("number", "integer", "boolean") else None))
    fields.sort(key=lambda f: len(f) == 3)
    return fields


def _object_struct(name: str, definition: dict, definitions: dict) -> type:
    """An untagged Struct for a nested object (``location``: its ``type`` is an ordinary required field)."""
    if definition.get("type") != "object" or set(definition) - _ANNOTATIONS - {"type", "required", "properties"}:
        raise _Unsupported(f"definition {name}: only plain objects")
    return msgspec.defstruct(name.title().replace("_", ""), _fields(name, definition, definitions), gc=False,
                             frozen=True)


def _struct(name: str, definition: dict, definitions: dict, tag_field: str = "type", readings_type=None) -> type:
    """A Struct for an object definition whose ``type`` property is a string const (the tag)."""
    if definition.get("type") != "object" or set(definition) - _ANNOTATIONS - {"type", "required", "properties"}:
        raise _Unsupported(f"definition {name}: only plain objects")
    properties = definition.get("properties", {})
    tag = properties.get(tag_field, {}).get("const")
    if type(tag) is not str or tag_field not in set(definition.get("required", ())):
        raise _Unsupported(f"definition {name}: no required string const {tag_field!r}")
    fields = _fields(name, definition, definitions, skip=tag_field, readings_type=readings_type)
    return msgspec.defstruct(f"{name.title()}Reading" if readings_type is None else "ReadingBatch", fields,
                             tag_field=tag_field, tag=tag, gc=False, frozen=True)


def _field_kind(spec: dict) -> str:
    if spec.get("type") in ("number", "integer", "boolean"):
        return "number"
    return "object" if "$ref" in spec or spec.get("type") in ("object", "array") else "string"


@dataclass(frozen=True)
class TypedDecoder:
    """``decode(bytes)`` -> one reading Struct or an envelope Struct (``.gatewayId``, ``.readings``);
    raises ``msgspec.DecodeError`` (``ValidationError`` included) for anything it does not accept."""

    decode: Any
    envelope: type
    reading_types: tuple[type, ...]
    tags: dict        # reading Struct -> its ``type`` value
    kinds: dict       # reading Struct -> {field: "number" (number, integer, boolean) | "string" (string, enum,
    #                   const) | "object" (object, array, $ref)}


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
        readings = [_struct(name, definitions[name], definitions) for name in names] if names \
            else [_struct("reading", reading, definitions)]
        # a union even for one kind of reading, so that each reading of an envelope must carry its tag
        no_reading = msgspec.defstruct("NoReading", [], tag_field="type", tag=_NO_READING_TAG, gc=False, frozen=True)
        envelope = _struct("envelope", definitions["envelope"], definitions,
                           readings_type=Union[(*readings, no_reading)])
    except _Unsupported:
        return None
    decoder = msgspec.json.Decoder(Union[(*readings, envelope)])
    specs = [definitions[name] for name in names] if names else [reading]
    kinds = {struct: {field: _field_kind(spec) for field, spec in definition["properties"].items() if field != "type"}
             for struct, definition in zip(readings, specs)}
    return TypedDecoder(decoder.decode, envelope, tuple(readings),
                        {r: r.__struct_config__.tag for r in readings}, kinds)
