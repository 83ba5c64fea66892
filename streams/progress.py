"""Progress bars for long commands (simulate, replay, export, bench), drawn by tqdm.

Contract: :func:`progress` wraps an iterable (or, with ``iterable=None``, returns a bar
to ``update(n)`` by hand) and draws on stderr **only when stdout is a terminal** —
piped or redirected output (CI logs, ``| jq``) stays clean, and stdout itself never
carries a bar. ``enabled`` overrides the terminal check (tests, ``--no-progress``).
The bar is a context manager; closing it twice is harmless.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

__all__ = ["progress", "wanted"]


def wanted(enabled: bool | None = None) -> bool:
    """Whether to draw: ``enabled`` if given, else whether stdout is a terminal."""
    if enabled is not None:
        return enabled
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):      # stdout replaced or closed
        return False


def progress(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
             unit: str = "it", enabled: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr, disabled unless :func:`wanted`; ``unit`` names what is counted
    (readings, days, entities), ``total`` its expected count (None = unknown: a counter)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not wanted(enabled),
                dynamic_ncols=True, leave=False, **kwargs)
