"""Bounded logging: the same complaint at most once per window.

With its broker gone, aiokafka and Faust log the same few errors dozens of times a
second ("Unable connect to node ...", "Failed fetch messages ..."). :class:`RepeatFilter`
lets the first record of each (logger, level, message template) through, drops the
repeats for ``window_s`` seconds, and appends to the next one that passes how many it
dropped. The template is the unformatted ``record.msg``, so records that differ only in
their arguments (a node id, an offset) count as repeats. glasscity's own records below
WARNING (restore progress, one line per domain and rebalance) always pass.

Install it on handlers, not loggers: a logger's filter does not see records that
propagate up from its children. One instance per handler: a shared one would count the
second handler's look at the same record as a repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable

__all__ = ["RepeatFilter", "install_repeat_filter"]


class RepeatFilter(logging.Filter):
    """At most one record per (logger, level, template) per ``window_s``; see the module docstring."""

    def __init__(self, window_s: float = 10.0, max_templates: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        # Bounded: messages built with f-strings give one template per message; the oldest are forgotten.
        self.max_templates = max_templates
        self._clock = clock
        self._lock = threading.Lock()   # handlers filter before taking their own lock
        self._windows: OrderedDict[tuple, list] = OrderedDict()   # key -> [window start, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and record.name.startswith("glasscity"):
            return True   # our own progress lines (one per rebalance and domain) are never floods
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window[0] < self.window_s:
                window[1] += 1
                return False
            suppressed = window[1] if window is not None else 0
            self._windows[key] = [now, 0]
            self._windows.move_to_end(key)
            while len(self._windows) > self.max_templates:
                self._windows.popitem(last=False)
        if suppressed:
            try:
                message = record.getMessage()
            except Exception:   # a malformed record is the handler's problem, as it would be without us
                return True
            record.msg = f"{message} [{suppressed} more like this suppressed in the last {now - window[0]:.0f} s]"
            record.args = ()   # a tuple: mode's formatter wraps anything else in one, then formats again
        return True


def install_repeat_filter(logger: logging.Logger | None = None, window_s: float = 10.0) -> list[RepeatFilter]:
    """Add a :class:`RepeatFilter` to every handler of ``logger`` (default: root); returns them."""
    filters = []
    for handler in (logger or logging.getLogger()).handlers:
        filters.append(RepeatFilter(window_s))
        handler.addFilter(filters[-1])
    return filters
