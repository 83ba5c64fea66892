"""Detector thresholds: one place for their values, units and reasons.

Defaults live on each detector's ``Thresholds`` dataclass (made with
:func:`streams.detectors.base.threshold`). A JSON file named by
``GLASSCITY_THRESHOLDS`` (``--thresholds``) overrides any of them::

    {"water.no_use_24h": {"no_use_after_s": 43200}}

``glasscity thresholds`` prints the full table (Markdown) generated from the code.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from streams.config import SettingsError
from streams.detectors.base import threshold_range

__all__ = ["load_thresholds", "thresholds_document", "thresholds_table"]


def load_thresholds(path: str | None, registry: dict) -> dict:
    """{detector name: Thresholds instance} with the file's overrides applied."""
    overrides = {}
    if path:
        try:
            overrides = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SettingsError(f"cannot read thresholds file {path}: {error}") from None
        if not isinstance(overrides, dict):
            raise SettingsError(f"thresholds file {path} must hold a JSON object of detector names")
    unknown = set(overrides) - set(registry)
    if unknown:
        raise SettingsError(f"thresholds file {path} names unknown detectors: {', '.join(sorted(unknown))}")
    result = {}
    for name, cls in registry.items():
        values = overrides.get(name, {})
        fields = {f.name: f for f in dataclasses.fields(cls.Thresholds)}
        bad = set(values) - set(fields)
        if bad:
            raise SettingsError(f"thresholds file {path}: {name} has no threshold {', '.join(sorted(bad))}; "
                                f"known: {', '.join(fields)}")
        converted = {}
        for key, value in values.items():
            kind = type(fields[key].default)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SettingsError(f"thresholds file {path}: {name}.{key} must be a number, got {value!r}")
            converted[key] = kind(value)
            minimum, above, maximum = (fields[key].metadata.get(k) for k in ("minimum", "above", "maximum"))
            if not math.isfinite(value) or (minimum is not None and not value >= minimum) or \
                    (above is not None and not value > above) or (maximum is not None and not value <= maximum):
                finite = "" if math.isfinite(value) else "a finite number "
                raise SettingsError(f"thresholds file {path}: {name}.{key} must be {finite}"
                                    f"{threshold_range(fields[key])} ({fields[key].metadata['unit']}), got {value!r}")
        result[name] = cls.Thresholds(**converted)
    return result


def thresholds_document(registry: dict) -> str:
    """The thresholds page (docs/thresholds.md): a heading, how to override, the table."""
    return "\n".join([
        "# Detector thresholds",
        "",
        "Generated from the code by `glasscity thresholds` (regenerate: `glasscity thresholds > docs/thresholds.md`).",
        "Override any value with a JSON file passed as `--thresholds FILE` or `GLASSCITY_THRESHOLDS`, e.g.",
        '`{"water.no_use_24h": {"no_use_after_s": 43200}}`. Times are event time.',
        "",
        thresholds_table(registry),
        "",
    ])


def thresholds_table(registry: dict) -> str:
    """Every threshold of every detector as a Markdown table: name, default, unit, allowed range, why."""
    lines = ["| detector | threshold | default | unit | range | why |", "|---|---|---|---|---|---|"]
    for name in sorted(registry):
        for f in dataclasses.fields(registry[name].Thresholds):
            lines.append(f"| `{name}` | `{f.name}` | {f.default:g} | {f.metadata['unit']} | "
                         f"{threshold_range(f)} | {f.metadata['why']} |")
    return "\n".join(lines)
