"""Offline validators for the FIWARE Smart Data Models schemas, read by path, never copied.

The bundle (each model's ``schema.json`` plus ``_refs/`` with every schema they ``$ref`` by URL and
``_refs/index.json`` mapping URL -> file) lives outside the repository: ``GLASSCITY_SDM_DIR``, else
``shared/sdm`` beside the repository. Each ``$ref`` URL resolves to its local file through a
``referencing`` registry; the registry has no retrieval function, so an unknown URL raises
``referencing.exceptions.Unresolvable`` instead of going to the network (docs/ngsi-ld.md).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["SDM_BUNDLE", "validator", "errors"]

ROOT = Path(__file__).resolve().parents[3]
SDM_BUNDLE = Path(os.environ.get("GLASSCITY_SDM_DIR") or ROOT.parent / "shared" / "sdm")


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def registry() -> Registry:
    refs = SDM_BUNDLE / "_refs"
    assert (refs / "index.json").is_file(), (
        f"the Smart Data Models bundle is not at {SDM_BUNDLE} (set GLASSCITY_SDM_DIR to its folder)")
    return Registry().with_resources(
        (url, Resource.from_contents(_load(refs / name), default_specification=DRAFT202012))
        for url, name in _load(refs / "index.json").items())


@cache
def validator(model: str) -> Draft202012Validator:
    """The model's validator, formats (date-time, uri) asserted."""
    return Draft202012Validator(_load(SDM_BUNDLE / model / "schema.json"), registry=registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(entity: dict) -> list[str]:
    """Every schema error of a key-values entity against its type's model (empty = valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(entity)'}: {e.message}"
            for e in validator(entity["type"]).iter_errors(entity)]
