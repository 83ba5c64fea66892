"""``glasscity alerts tail`` and ``glasscity alerts open``: the alert topics for people and tools.

``tail`` prints alert events as they arrive (``--from-beginning`` for history,
``--until-end`` to stop at the current end); ``open`` reads the history to the end and
lists the episodes raised and not yet cleared, with their age. Both take the same filters
(:class:`streams.control.book.AlertFilter`) and print a table, JSON lines (the events as
published) or CSV. Welfare alerts are read only with ``--welfare`` and the welfare role's
token. Unreadable records are reported on stderr with topic, partition and offset and
counted; they never stop the command.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import signal
import sys
import time
from typing import TextIO

import orjson

from streams.config import SettingsError
from streams.control.book import AGE_BANDS, AlertBook, AlertFilter, Folded, MalformedAlert
from streams.control.feed import AlertTopicsMissing, follow_alerts
from streams import timeparse
from streams.alerts import iso_time
from streams.timeparse import InstantError

__all__ = ["add_alerts_parser", "run_alerts", "parse_since", "format_duration", "CSV_COLUMNS"]

FORMATS = ("table", "jsonl", "csv")
DOMAINS = ("water", "traffic", "waste", "lighting")
SEVERITIES = ("info", "warning", "critical")
STATES = ("raised", "updated", "cleared")
CSV_COLUMNS = ("time", "state", "severity", "domain", "detector", "subject", "episode_start", "id", "topic")


def parse_since(text: str) -> float:
    """Epoch s of ``--since`` (:func:`streams.timeparse.parse_since`), or a SettingsError saying why not."""
    try:
        return timeparse.parse_since(text)
    except InstantError as error:
        raise SettingsError(f"--since {text!r}: {error}") from None


def format_duration(seconds: float) -> str:
    """A short human duration: 45s, 12m, 3h05m, 2d04h."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{(seconds % 3600) // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{(seconds % 86400) // 3600:02.0f}h"


def _values(texts: list[str] | None, allowed: tuple[str, ...] | None, option: str) -> list[str]:
    found = [v.strip() for text in texts or () for v in text.split(",") if v.strip()]
    if allowed is not None:
        unknown = [v for v in found if v not in allowed]
        if unknown:
            raise SettingsError(f"{option}: unknown value {', '.join(unknown)} (one of {', '.join(allowed)})")
    return found


def add_alerts_parser(sub, add_settings) -> None:
    p = sub.add_parser("alerts", help="Follow, filter and list alerts (tail, open).",
                       description="Read the alert topics: `tail` prints events as they arrive, `open` lists "
                                   "alerts raised and not yet cleared, with their age.")
    actions = p.add_subparsers(dest="alerts_action", metavar="ACTION")
    actions.required = True
    for name, text in (("tail", "Print alert events as they arrive (--from-beginning for history)."),
                       ("open", "List open alerts (raised, not cleared) with their age, oldest first.")):
        q = actions.add_parser(name, help=text, description=text)
        q.add_argument("--domain", action="append", help=f"Only these domains ({', '.join(DOMAINS)}); repeat or "
                                                         "comma-separate.")
        q.add_argument("--detector", action="append", help="Only these detectors: names or patterns (water.*).")
        q.add_argument("--severity", action="append", help=f"Only these severities ({', '.join(SEVERITIES)}).")
        q.add_argument("--subject", action="append", help="Only these subjects: ids, pseudonyms or patterns.")
        q.add_argument("--since", help="Only events at or after this event time: ISO 8601 with offset, epoch s, "
                                       "or an age (30m, 2h, 1d).")
        q.add_argument("--format", default="table", choices=FORMATS, help="table (default), jsonl or csv.")
        q.add_argument("--welfare", action="store_true",
                       help="Include the restricted welfare alerts; needs the welfare role's token (--token).")
        q.add_argument("--token", default=None, help="The welfare role's token, to compare with the configured "
                                                     "one (better: env GLASSCITY_ALERTS_TOKEN).")
        if name == "tail":
            q.add_argument("--state", action="append", help=f"Only these states ({', '.join(STATES)}).")
            q.add_argument("--from-beginning", action="store_true", help="Start at the oldest retained alert "
                                                                         "(default: only new ones).")
            q.add_argument("--until-end", action="store_true", help="Stop at the current end instead of following.")
        else:
            q.add_argument("--by-domain", action="store_true", help="Counts per domain and age band instead of a list.")
        add_settings(q)


def _filter(args) -> AlertFilter:
    return AlertFilter.of(domains=_values(args.domain, DOMAINS, "--domain"),
                          detectors=_values(args.detector, None, "--detector"),
                          severities=_values(args.severity, SEVERITIES, "--severity"),
                          states=_values(getattr(args, "state", None), STATES, "--state"),
                          subjects=_values(args.subject, None, "--subject"),
                          since_s=parse_since(args.since) if args.since else None)


def _check_welfare(args, settings) -> None:
    if not args.welfare:
        return
    import os

    given = args.token if args.token is not None else os.environ.get("GLASSCITY_ALERTS_TOKEN", "")
    if not settings.welfare_token:
        raise SettingsError("--welfare: no welfare role is configured (set GLASSCITY_WELFARE_TOKEN on this "
                            "machine); welfare alerts stay hidden")
    if not hmac.compare_digest(given.encode(), settings.welfare_token.encode()):
        raise SettingsError("--welfare: the token given (--token or GLASSCITY_ALERTS_TOKEN) is not the welfare "
                            "role's; welfare alerts stay hidden")


class _Printer:
    """Writes events (tail) in the chosen format; the table's columns are fixed widths."""

    def __init__(self, out: TextIO, form: str, book: AlertBook | None = None) -> None:
        self.out, self.form, self.book = out, form, book
        self.csv = csv.writer(out) if form == "csv" else None
        self.started = False

    def header(self) -> None:
        if self.form == "csv":
            self.csv.writerow(CSV_COLUMNS)
        elif self.form == "table":
            self.out.write(f"{'TIME (UTC)':20} {'STATE':8} {'SEVERITY':9} {'DOMAIN':9} {'DETECTOR':28} "
                           f"{'SUBJECT':36} NOTE\n")
        self.out.flush()

    def event(self, event: dict, topic: str, note: str = "") -> None:
        data = event["data"]
        if self.form == "jsonl":
            self.out.write(orjson.dumps(event).decode() + "\n")
        elif self.form == "csv":
            self.csv.writerow((event.get("time"), data.get("state"), data.get("severity"), data.get("domain"),
                               data.get("detector"), event.get("subject"), data.get("episodeStart"),
                               event.get("id"), topic))
        else:
            when = str(event.get("time", "")).replace("T", " ").rstrip("Z")
            self.out.write(f"{when:20} {data.get('state', ''):8} {data.get('severity', ''):9} "
                           f"{data.get('domain', ''):9} {data.get('detector', ''):28} "
                           f"{str(event.get('subject', '')):36} {note}\n")
        self.out.flush()


def _fold(book: AlertBook, item) -> Folded | None:
    """Fold one feed record; an unreadable one is reported on stderr (topic, partition, offset, why) -> None."""
    try:
        if item.event is None:
            raise MalformedAlert(item.error)
        return book.fold(item.event, item.topic)
    except MalformedAlert as error:
        print(f"glasscity alerts: warning: unreadable record {item.topic}[{item.partition}]@{item.offset}: "
              f"{error}", file=sys.stderr)
        return None


async def _tail(args, settings, where: AlertFilter, stop: asyncio.Event) -> tuple[int, int]:
    printer = _Printer(sys.stdout, args.format)
    printer.header()
    book = AlertBook()         # for the episode duration of a clear
    shown = unreadable = 0
    async for item in follow_alerts(settings, welfare=args.welfare, from_beginning=args.from_beginning,
                                    until_end=args.until_end, stop=stop):
        folded = _fold(book, item)
        if folded is None:
            unreadable += 1
            continue
        if not where.matches(item.event):
            continue
        note = "WELFARE" if item.topic.endswith(".alerts.welfare.v1") else ""
        if folded.delay_s is not None:
            note = f"{note} after {format_duration(folded.delay_s)}".strip()
        printer.event(item.event, item.topic, note)
        shown += 1
    return shown, unreadable


async def _open(args, settings, where: AlertFilter) -> tuple[AlertBook, int]:
    from streams.progress import progress

    book = AlertBook()
    unreadable = 0
    with progress(desc="reading alerts", unit="records") as bar:
        async for item in follow_alerts(settings, welfare=args.welfare, from_beginning=True, until_end=True):
            bar.update(1)
            if _fold(book, item) is None:
                unreadable += 1
    return book, unreadable


def _print_open(args, book: AlertBook, where: AlertFilter) -> int:
    now = book.clock()
    alerts = book.open_alerts(where)
    out = sys.stdout
    if args.by_domain:
        counts = book.open_counts(now, DOMAINS)
        bands = [label for _bound, label in AGE_BANDS]
        if args.format == "jsonl":
            for domain in DOMAINS:
                out.write(orjson.dumps({"domain": domain, **{b: counts[(domain, b)] for b in bands}}).decode() + "\n")
        else:
            writer = csv.writer(out) if args.format == "csv" else None
            row = ["domain", *bands]
            writer.writerow(row) if writer else out.write(" ".join(f"{c:>8}" for c in row) + "\n")
            for domain in DOMAINS:
                row = [domain, *(counts[(domain, b)] for b in bands)]
                writer.writerow(row) if writer else out.write(" ".join(f"{c:>8}" for c in row) + "\n")
        return len(alerts)
    if args.format == "table":
        clock = "" if abs(now - time.time()) < 60 else f" (ages against the feed's own clock, {iso_time(now)})"
        out.write(f"{len(alerts)} open alert(s){clock}\n")
        out.write(f"{'RAISED (UTC)':20} {'AGE':8} {'SEVERITY':9} {'DOMAIN':9} {'DETECTOR':28} SUBJECT\n")
        for a in alerts:
            out.write(f"{iso_time(a.raised_s).replace('T', ' ').rstrip('Z'):20} {format_duration(a.age_s(now)):8} "
                      f"{a.severity:9} {a.domain:9} {a.detector:28} {a.subject}\n")
    elif args.format == "jsonl":
        for a in alerts:
            out.write(orjson.dumps({"episodeId": a.episode_id, "detector": a.detector, "domain": a.domain,
                                    "severity": a.severity, "subject": a.subject, "raised": iso_time(a.raised_s),
                                    "episodeStart": iso_time(a.episode_start_s), "age_s": round(a.age_s(now), 3),
                                    "topic": a.topic}).decode() + "\n")
    else:
        writer = csv.writer(out)
        writer.writerow(("raised", "age_s", "severity", "domain", "detector", "subject", "episode_id", "topic"))
        for a in alerts:
            writer.writerow((iso_time(a.raised_s), round(a.age_s(now), 3), a.severity, a.domain, a.detector, a.subject,
                             a.episode_id, a.topic))
    return len(alerts)


def run_alerts(args, settings) -> int:
    """The ``alerts`` command; exit 0, or 1 when the broker or the topics are not there."""
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)   # an unreachable broker is said once, below
    where = _filter(args)
    _check_welfare(args, settings)
    try:
        if args.alerts_action == "open":
            book, unreadable = asyncio.run(_open(args, settings, where))
            shown = _print_open(args, book, where)
        else:
            shown, unreadable = asyncio.run(_run_tail(args, settings, where))
    except AlertTopicsMissing as error:
        print(f"glasscity: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:    # OSError, or aiokafka's connection errors (not OSErrors)
        if not isinstance(error, OSError) and not type(error).__module__.startswith(("aiokafka", "kafka")):
            raise
        print(f"glasscity: error: cannot read the alert topics at {settings.bootstrap}: {error}", file=sys.stderr)
        return 1
    print(f"glasscity alerts: {shown} shown, {unreadable} unreadable", file=sys.stderr)
    return 0


async def _run_tail(args, settings, where: AlertFilter) -> tuple[int, int]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await _tail(args, settings, where, stop)
