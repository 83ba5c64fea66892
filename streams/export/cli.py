"""``glasscity export``: readings and alerts as NGSI-LD entities, to a file, stdout or a broker.

Exit codes: 0 done; 1 something could not be read or some entity was not upserted
(each one reported); 2 a usage mistake (bad format, missing input file, unwritable
output, no source, a bad number). One line on stderr says what went wrong, never a
traceback; the token is never printed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson

__all__ = ["add_export_parser", "run_export", "FORMATS", "REPRESENTATIONS"]

FORMATS = ("ngsi-ld",)
REPRESENTATIONS = ("normalized", "key-values")
#: Refused items named one per line before the rest are only counted.
SHOWN_REFUSALS = 20
NAME = "glasscity export"


def add_export_parser(sub, add_settings) -> None:
    from streams.cli import env_flag, env_option

    p = sub.add_parser("export", help="Export readings and alerts as NGSI-LD entities (Smart Data Models).",
                       description="Turn readings (WaterConsumptionObserved, TrafficFlowObserved, WasteContainer, "
                                   "Streetlight) and alert events (Alert) into NGSI-LD entities of the FIWARE "
                                   "Smart Data Models, from a file of JSON lines (--input: wire-format messages "
                                   "and/or alert events as `glasscity alerts tail --format jsonl` writes) and/or "
                                   "from the readings topics (--from-topics --until-end) and the general alert "
                                   "topic (--alerts). Readings are validated as the worker does; refused ones "
                                   "are reported, not exported. Meter ids become their pseudonyms (the worker's "
                                   "key is needed for water readings); welfare alerts are never exported. "
                                   "Writes JSON lines (or a JSON array) to --output or stdout, or upserts the "
                                   "entities in batches to an NGSI-LD broker (--post). See docs/ngsi-ld.md.",
                       epilog="Exit codes: 0 done; 1 an input could not be read or an entity was not upserted; "
                              "2 usage mistake.")
    env_option(p, "--format", "GLASSCITY_EXPORT_FORMAT", str, "ngsi-ld", "Export format: ngsi-ld.")
    env_option(p, "--input", "GLASSCITY_EXPORT_INPUT", str, "", "File of JSON lines to export (readings of any "
               "domain, one message or envelope per line, and/or alert events).")
    env_flag(p, "--from-topics", "GLASSCITY_EXPORT_FROM_TOPICS", "Read the readings topics of --domains from "
             "their beginning (needs --until-end).")
    env_flag(p, "--until-end", "GLASSCITY_EXPORT_UNTIL_END", "Stop at the topics' current end (a live export is "
             "not offered).")
    env_flag(p, "--alerts", "GLASSCITY_EXPORT_ALERTS", "Also export the general alert topic's events, from its "
             "beginning to its end.")
    env_option(p, "--output", "GLASSCITY_EXPORT_OUTPUT", str, "", "File to write the entities to (default: "
               "standard output, unless --post is given).")
    env_flag(p, "--json-array", "GLASSCITY_EXPORT_JSON_ARRAY", "Write one JSON array instead of JSON lines.")
    env_option(p, "--representation", "GLASSCITY_EXPORT_REPRESENTATION", str, "normalized",
               "normalized (NGSI-LD Property/Relationship/GeoProperty, what brokers accept) or key-values (the "
               "Smart Data Models' JSON Schema form).")
    env_option(p, "--post", "GLASSCITY_EXPORT_POST", str, "", "Base URL of an NGSI-LD broker (e.g. "
               "http://127.0.0.1:1026): entities are upserted to <URL>/ngsi-ld/v1/entityOperations/upsert.")
    env_option(p, "--post-batch-size", "GLASSCITY_EXPORT_POST_BATCH_SIZE", int, 100, "Entities per upsert request.")
    env_option(p, "--post-retries", "GLASSCITY_EXPORT_POST_RETRIES", int, 5, "Retries of a batch after a 5xx "
               "answer, a connection error or a timeout.")
    env_option(p, "--post-backoff", "GLASSCITY_EXPORT_POST_BACKOFF", float, 0.5, "Wait before the first retry, "
               "doubled for each next one (at most 30 s). Unit: s.")
    env_option(p, "--post-timeout", "GLASSCITY_EXPORT_POST_TIMEOUT", float, 30.0, "Longest wait for one upsert "
               "answer. Unit: s.")
    add_settings(p)


class _Usage(Exception):
    """A usage mistake: exit 2."""


def _check(args) -> None:
    if args.format not in FORMATS:
        raise _Usage(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    if args.representation not in REPRESENTATIONS:
        raise _Usage(f"--representation must be one of {', '.join(REPRESENTATIONS)}, got {args.representation!r}")
    if not (args.input or args.from_topics or args.alerts):
        raise _Usage("nothing to export: give --input FILE, --from-topics --until-end and/or --alerts")
    if (args.from_topics or args.alerts) and not args.until_end:
        raise _Usage("--from-topics and --alerts read the topics up to their end: add --until-end")
    if args.input and not Path(args.input).is_file():
        raise _Usage(f"the input file {args.input} does not exist" if not Path(args.input).exists()
                     else f"the input {args.input} is not a file")
    if args.post and not args.post.startswith(("http://", "https://")):
        raise _Usage(f"--post must be an http:// or https:// URL, got {args.post!r}")
    for flag, value, least in (("--post-batch-size", args.post_batch_size, 1), ("--post-retries", args.post_retries, 0)):
        if value < least:
            raise _Usage(f"{flag} must be >= {least}, got {value}")
    if not (args.post_backoff >= 0 and args.post_timeout > 0):
        raise _Usage("--post-backoff must be >= 0 and --post-timeout > 0")
    if args.output:
        folder = Path(args.output).resolve().parent
        if not folder.is_dir():
            raise _Usage(f"cannot write {args.output}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK) or (Path(args.output).exists() and not os.access(args.output, os.W_OK)):
            raise _Usage(f"cannot write {args.output}: permission denied")


class _Writer:
    """JSON lines or one JSON array, to a file or stdout."""

    def __init__(self, handle, array: bool):
        self.handle, self.array, self.count = handle, array, 0

    def write(self, entity: dict) -> None:
        if self.array:
            self.handle.write(b"[\n" if self.count == 0 else b",\n")
        self.handle.write(orjson.dumps(entity))
        if not self.array:
            self.handle.write(b"\n")
        self.count += 1

    def close(self) -> None:
        if self.array:
            self.handle.write(b"[]\n" if self.count == 0 else b"\n]\n")
        self.handle.flush()


def _display(url: str) -> str:
    """The URL without any user:password part (never printed)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))) \
        if parts.hostname else url


def run_export(args, settings) -> int:
    from streams.domains import select_domains
    from streams.export.entities import normalized
    from streams.export.post import post_entities, upsert_url
    from streams.export.sources import (ExportError, ExportReport, file_messages, message_entities, topic_alerts,
                                        topic_messages)
    from streams.progress import progress

    try:
        _check(args)
    except _Usage as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 2
    report = ExportReport()
    pseudonymizer = _lazy_pseudonymizer(settings)
    try:
        sources = []
        if args.input:
            sources.append(file_messages(args.input))
        if args.from_topics:
            sources.append(topic_messages(settings, select_domains(settings.domains)))
        if args.alerts:
            sources.append(topic_alerts(settings))
    except ExportError as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 1

    def messages():
        for source in sources:
            yield from source

    shape = normalized if args.representation == "normalized" else (lambda entity: entity)
    out = None
    if args.output:
        out = open(args.output, "wb")
    elif not args.post:
        out = sys.stdout.buffer
    writer = _Writer(out, args.json_array) if out is not None else None
    bar = progress(total=None, desc="export", unit="entities")

    def entities():
        for entity in message_entities(messages(), pseudonymizer, report):
            entity = shape(entity)
            if writer is not None:
                writer.write(entity)
            if not args.post:
                bar.update(1)
            yield entity

    code = 0
    try:
        if args.post:
            post = asyncio.run(post_entities(entities(), args.post, batch_size=args.post_batch_size,
                                             retries=args.post_retries, backoff_s=args.post_backoff,
                                             timeout_s=args.post_timeout, token=settings.ngsi_token,
                                             on_batch=bar.update))
        else:
            for _ in entities():
                pass
            post = None
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if out is not None and out is not sys.stdout.buffer:
            out.close()
    for where, reason, detail in report.refused[:SHOWN_REFUSALS]:
        print(f"{NAME}: {where}: refused ({reason}): {detail}", file=sys.stderr)
    if len(report.refused) > SHOWN_REFUSALS:
        print(f"{NAME}: ... and {len(report.refused) - SHOWN_REFUSALS} more refused", file=sys.stderr)
    print(report.summary(), file=sys.stderr if out is sys.stdout.buffer else sys.stdout, flush=True)
    if post is not None:
        for failure in post.failures:
            print(f"{NAME}: {failure.line()}", file=sys.stderr)
        print(f"{post.summary()} to {_display(upsert_url(args.post))}", flush=True)
        if post.failures:
            code = 1
    return code


def _lazy_pseudonymizer(settings):
    """The worker's pseudonymizer, made on first use (water readings); SettingsError without a key."""
    made = []

    def get():
        if not made:
            from streams.config import SettingsError
            from streams.pseudonym import Pseudonymizer

            if not (settings.pseudonym_key or settings.pseudonym_key_file):
                raise SettingsError("water readings name households: give the worker's pseudonym key "
                                    "(GLASSCITY_PSEUDONYM_KEY or --pseudonym-key-file) so they are exported "
                                    "under their pseudonyms")
            made.append(Pseudonymizer(settings.require_pseudonym_key()))
        return made[0]

    return get
