"""Logging for every glasscity command: bounded, optionally JSON, secrets redacted.

Formats (the ``log_format`` setting, ``--log-format`` / ``GLASSCITY_LOG_FORMAT``): ``text``,
human-readable lines; ``json``, one JSON object per line with ``time`` (ISO 8601, UTC,
milliseconds), ``level``, ``logger``, ``message``, any ``extra=`` fields of the record and,
for an exception, ``exc_info`` (the traceback as text). :func:`format_handlers` gives
handlers that format; :func:`setup_logging` installs one on stderr for the commands Faust does
not set up. Either way every known secret value (pseudonym key, SASL password, welfare token)
is replaced by ``<secret>`` in the formatted line, whatever logged it.

Bounded: the same complaint at most once per window.

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

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Callable

from pythonjsonlogger.json import JsonFormatter

__all__ = ["RepeatFilter", "install_repeat_filter", "JsonLineFormatter", "RedactingFormatter", "LOG_FORMATS",
           "format_handlers", "setup_logging", "secret_values"]

LOG_FORMATS = ("text", "json")
#: The text format of the commands glasscity sets up itself (the worker keeps Faust's).
TEXT_FORMAT = "[%(asctime)s] [%(levelname)s] %(name)s: %(message)s"
SECRET_SHOWN_AS = "<secret>"


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


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: time (UTC, ISO 8601 with milliseconds), level, logger, message, extras."""

    def __init__(self) -> None:
        super().__init__("{asctime}{levelname}{name}{message}", style="{",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then replaces each secret value (and its JSON-escaped form) by <secret>."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.inner = inner
        forms = set()
        for secret in secrets:
            if secret:
                forms.add(secret)
                forms.add(json.dumps(secret)[1:-1])   # as it appears inside a JSON string
        # longest first: a secret containing another is replaced whole
        self.secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, SECRET_SHOWN_AS)
        return text


def secret_values(settings) -> list[str]:
    """The secret values a process holds (settings marked secret, and the files' contents)."""
    import dataclasses

    values = [getattr(settings, f.name) for f in dataclasses.fields(settings) if f.metadata.get("secret")]
    for path in (settings.pseudonym_key_file, settings.sasl_password_file):
        if path:
            try:
                with open(path, encoding="utf-8", errors="replace") as file:
                    values.append(file.read().rstrip("\r\n"))
            except OSError:
                pass    # an unreadable file is reported where it is used; nothing of it can leak
    return [v for v in values if v]


def format_handlers(handlers: Iterable[logging.Handler], log_format: str, secrets: Iterable[str] = ()) -> None:
    """Give each handler the chosen format (json, or text keeping its own), with secrets redacted."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    secrets = list(secrets)
    for handler in handlers:
        current = handler.formatter
        if isinstance(current, RedactingFormatter):
            current = current.inner
        inner = JsonLineFormatter() if log_format == "json" else current or logging.Formatter(TEXT_FORMAT)
        handler.setFormatter(RedactingFormatter(inner, secrets))


def setup_logging(level: str = "warning", log_format: str = "text", secrets: Iterable[str] = ()) -> logging.Handler:
    """One stderr handler on the root logger (replacing a previous one of ours); returns it."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_glasscity", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler._glasscity = True
    format_handlers([handler], log_format, secrets)
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
