"""JSON Schema (draft-07) files: the single source of truth for the wire format.

``load(name)`` returns a schema as a dict; ``path(name)`` its file. Names:
``water-reading`` (one reading or a gateway batch envelope) and ``alert``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

__all__ = ["load", "path", "SCHEMA_DIR"]

SCHEMA_DIR = Path(__file__).resolve().parent


def path(name: str) -> Path:
    file = SCHEMA_DIR / f"{name}.schema.json"
    if not file.is_file():
        known = sorted(p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json"))
        raise KeyError(f"no schema named {name!r}; known: {', '.join(known)}")
    return file


@cache
def _load_text(name: str) -> str:
    return path(name).read_text(encoding="utf-8")


def load(name: str) -> dict:
    """A fresh copy of the schema ``name`` (callers may not share a mutable dict)."""
    return json.loads(_load_text(name))
