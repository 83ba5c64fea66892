"""The ``glasscity`` command line: broker, topics, simulate, worker, replay, thresholds, demo, dlq replay.

Every flag falls back to a ``GLASSCITY_*`` environment variable, named in
``--help`` with the default. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from typing import Callable

from streams.config import SETTING_FIELDS, SettingsError, add_arguments, settings_from

__all__ = ["main", "build_parser"]

#: How every command that talks to Kafka authenticates and encrypts (streams/kafka_security.py).
SECURITY = ["security_protocol", "sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file",
            "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"]
KAFKA = ["bootstrap", "topic_prefix", "partitions", "domains", "raw_retention_s", "log_format"] + SECURITY
WORKER = KAFKA + ["app_id", "rebalance_timeout_s", "pseudonym_key", "pseudonym_key_file", "metrics_host", "metrics_port", "batch_size",
                  "batch_within_s", "log_level", "shutdown_timeout_s", "broker_unreachable_exit_s", "audit_log", "thresholds_file", "sweep_interval_s", "allowed_lateness_s", "idle_partition_after_s", "max_future_skew_s"]
WORKER += ["page", "page_host", "page_port"]
WORKER += ["replication_factor", "welfare_token"]   # its Faust app's topic_replication_factor
WORKER += ["ngsi_token"]   # only `glasscity export --post` uses it; listed so the check below holds
assert set(WORKER) == set(SETTING_FIELDS), "every setting must reach the worker's flags"


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the mistake and where to read more, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def number(kind: type, *, minimum: float | None = None, above: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` (int or float) at or above ``minimum`` / strictly above ``above``."""
    bound = f">= {minimum:g}" if minimum is not None else f"> {above:g}" if above is not None else ""
    wanted = f"a finite {'whole ' if kind is int else ''}number {bound}".rstrip()

    def convert(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        if not math.isfinite(value) or (minimum is not None and not value >= minimum) or \
                (above is not None and not value > above):
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
        return value

    convert.__name__ = kind.__name__
    return convert


def env_option(parser, flag: str, env: str, type, default, help: str, **kwargs):
    """A command-specific flag whose default comes from ``env`` when set."""
    raw = os.environ.get(env)
    value = default
    if raw is not None:
        try:
            value = type(raw)
        except argparse.ArgumentTypeError as error:
            raise SettingsError(f"{env}: {error}") from None
        except ValueError:
            raise SettingsError(f"{env}={raw!r} is not a valid {type.__name__}") from None
    parser.add_argument(flag, type=type, default=value, help=f"{help} Env: {env}. Default: {default!r}.", **kwargs)


def add_simulation_options(parser, households: int, days: float, hour_seconds: float):
    group = parser.add_argument_group("simulated city")
    count = number(int, minimum=0)
    env_option(group, "--households", "GLASSCITY_SIM_HOUSEHOLDS", number(int, minimum=1), households,
               "Households (water meters), >= 1.")
    env_option(group, "--days", "GLASSCITY_SIM_DAYS", number(float, above=0), days, "City-days to simulate, > 0.")
    env_option(group, "--households-per-gateway", "GLASSCITY_SIM_HOUSEHOLDS_PER_GATEWAY", number(int, minimum=1),
               50, "Meters behind each gateway, >= 1.")
    env_option(group, "--seed", "GLASSCITY_SIM_SEED", int, 42, "Random seed; the same seed gives the same city.")
    env_option(group, "--no-use", "GLASSCITY_SIM_NO_USE", count, 5, "Injected no-use (welfare) incidents.")
    env_option(group, "--meter-silent", "GLASSCITY_SIM_METER_SILENT", count, 3, "Injected silent meters.")
    env_option(group, "--gateway-outage", "GLASSCITY_SIM_GATEWAY_OUTAGE", count, 1, "Injected gateway outages.")
    env_option(group, "--malformed", "GLASSCITY_SIM_MALFORMED", count, 20, "Malformed items mixed into the feed.")
    env_option(group, "--hour-seconds", "GLASSCITY_SIM_HOUR_SECONDS", number(float, minimum=0), hour_seconds,
               "Wall-clock seconds per city-hour (the pacing; 0 = as fast as possible), >= 0. Unit: s.")


def env_flag(parser, flag: str, env: str, help: str):
    """An on/off flag, on when given or when ``env`` is 1/true/yes (0/false/no/empty = off)."""
    raw = os.environ.get(env, "").strip().lower()
    if raw not in {"", "0", "false", "no", "1", "true", "yes"}:
        raise SettingsError(f"{env}={raw!r} is not a valid on/off value (1/true/yes or 0/false/no)")
    parser.add_argument(flag, action="store_true", default=raw in {"1", "true", "yes"},
                        help=f"{help} Env: {env} (1 = on). Default: off.")


def _version() -> str:
    from streams.metrics import installed_version

    found = installed_version("glasscity")
    return "glasscity (not installed)" if found == "unknown" else f"glasscity {found}"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="glasscity",
        description="Real-time urban data pipeline: sensors -> Kafka -> Faust agents with Numba kernels -> alerts. "
                    "Every option can also be set with the GLASSCITY_* environment variable named in its help.",
        epilog="Start with `glasscity demo`. Each command has its own --help.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    parser.add_argument("--version", action="version", version=_version())

    p = sub.add_parser("broker", help="Run the embedded Kafka-protocol broker (Tansu, in memory) until Ctrl-C.",
                       description="Run the embedded Kafka-protocol broker (Tansu, memory storage: a restart "
                                   "loses all topics) on a loopback port until Ctrl-C.")
    env_option(p, "--port", "GLASSCITY_BROKER_PORT", number(int, minimum=1), 9092, "Port to listen on (127.0.0.1).")
    env_option(p, "--host", "GLASSCITY_BROKER_HOST", str, "127.0.0.1", "Address to listen on.")

    p = sub.add_parser("topics", help="Manage topics (create).",
                       description="Create the water, dead-letter and alert topics that are missing.")
    p.add_argument("action", choices=["create", "list"], help="create: create missing topics; list: show names.")
    add_arguments(p, KAFKA + ["replication_factor"])

    p = sub.add_parser("simulate", help="Produce a synthetic city's water feed, with ground truth.",
                       description="Produce a synthetic city's hourly water readings (rhythms from real DAIAD "
                                   "households) with injected incidents and malformed input; writes the ground "
                                   "truth as JSON. Given the pseudonym key, it first enrols every simulated "
                                   "household in the welfare check (the consent register); without it, nobody "
                                   "is enrolled and no welfare alert is raised.")
    add_simulation_options(p, households=1000, days=3.0, hour_seconds=0.5)
    env_option(p, "--ground-truth", "GLASSCITY_SIM_GROUND_TRUTH", str, "ground-truth.json",
               "Where to write the injected incidents (JSON).")
    add_arguments(p, KAFKA + ["pseudonym_key", "pseudonym_key_file"])

    p = sub.add_parser("worker", help="Run a stream worker (Faust): readings in, alerts and dead letters out.",
                       description="Run a stream worker: consumes the readings topic in batches, validates, "
                                   "routes invalid items to the dead-letter topic, runs the detectors and "
                                   "publishes alerts; serves Prometheus metrics on /metrics, liveness on /healthz "
                                   "and readiness (partitions assigned, state restored) on /readyz. Stop with "
                                   "Ctrl-C or SIGTERM.",
                       epilog="Exit codes: 0 stopped cleanly; 1 could not start or crashed; 2 invalid settings; "
                              "3 no broker reachable for --broker-unreachable-exit seconds; 4 shutdown cut short "
                              "(--shutdown-timeout passed, or a second signal).")
    add_arguments(p, WORKER)

    p = sub.add_parser("replay", help="Backtest a detector on a historical export (CSV or JSON lines), no broker.",
                       description="Run one detector over a historical export with the same kernels as the worker "
                                   "and no broker. A score detector takes a plain two-column timestamp,value CSV "
                                   "and writes timestamp,value,anomaly_score (one row per input row): an anomaly "
                                   "likelihood in [0, 1] on a log scale, s = about one reading in 10^(6 s) under "
                                   "the series' own learnt distribution (0.5: one in a thousand), with the "
                                   "worker's kernel and episode rule. Any detector takes its domain's readings as JSON lines (wire format) or "
                                   "a CSV whose header names the reading fields, and writes per reading whether "
                                   "an episode is open. Alerts are printed.")
    env_option(p, "--detector", "GLASSCITY_REPLAY_DETECTOR", str, "", "Detector name, e.g. water.no_use_24h "
               "(`glasscity thresholds` lists them).")
    env_option(p, "--input", "GLASSCITY_REPLAY_INPUT", str, "", "The export to replay (CSV or JSON lines).")
    env_option(p, "--output", "GLASSCITY_REPLAY_OUTPUT", str, "",
               "Where to write the per-row results (default: beside the input).")
    add_arguments(p, ["thresholds_file", "pseudonym_key", "pseudonym_key_file", "sweep_interval_s", "allowed_lateness_s", "audit_log"])

    from streams.control.cli import add_alerts_parser

    add_alerts_parser(sub, lambda q: add_arguments(q, KAFKA + ["welfare_token"]))

    from streams.export.cli import add_export_parser

    add_export_parser(sub, lambda q: add_arguments(q, KAFKA + ["pseudonym_key", "pseudonym_key_file", "ngsi_token"]))

    p = sub.add_parser("thresholds", help="Print every detector threshold: default, unit and why (Markdown).",
                       description="Print every detector threshold with its default, unit and the reason for it, "
                                   "as a Markdown table generated from the code. Override any of them with a JSON "
                                   "file given to the worker as --thresholds / GLASSCITY_THRESHOLDS.")
    add_arguments(p, ["thresholds_file"])

    p = sub.add_parser("demo", help="Run the embedded demo city end to end and print a summary.",
                       description="Start the embedded broker, create topics, run the simulator and a worker, "
                                   "print alerts live, and end with a summary of incidents injected vs alerted. "
                                   "Exits 1 if an injected welfare incident was missed.")
    add_simulation_options(p, households=1000, days=3.0, hour_seconds=0.5)
    add_arguments(p, ["domains", "thresholds_file", "log_format"])
    env_option(p, "--output", "GLASSCITY_DEMO_OUTPUT", str, "demo-output",
               "Directory for the ground truth, alerts, worker and broker logs.")
    env_option(p, "--timeout", "GLASSCITY_DEMO_TIMEOUT", number(float, above=0), 240.0,
               "Give up (and stop everything) after this long, > 0. Unit: s.")
    env_option(p, "--quiet-alerts", "GLASSCITY_DEMO_QUIET_ALERTS", int, 0, "1 = do not print alerts live.",
               choices=[0, 1])

    p = sub.add_parser("dlq", help="Dead-letter topics: re-inject refused items (replay).",
                       description="Work with a domain's dead-letter topic (<prefix>.<domain>.dlq.v1).")
    dlq = p.add_subparsers(dest="dlq_action", metavar="ACTION")
    dlq.required = True
    p = dlq.add_parser("replay", help="Re-inject dead letters into the domain's readings topic.",
                       description="Read the domain's dead-letter topic from the beginning to its end (no consumer "
                                   "group), select records by reason and time, and produce each one's original "
                                   "value with its original key to <prefix>.<domain>.readings.v1, checking every "
                                   "delivery. Records marked truncated (their value was cut to bound the record) "
                                   "are skipped and counted. Records written after the replay starts are left "
                                   "alone, so items the worker refuses again are not replayed in a loop. Prints "
                                   "how many were read, selected, re-injected, skipped and failed; exits 1 if any "
                                   "re-injection failed or the topic cannot be read, 2 on a bad argument.")
    env_option(p, "--domain", "GLASSCITY_DLQ_DOMAIN", str, "", "Domain whose dead letters to replay: water, "
               "traffic, waste or lighting (required).")
    env_option(p, "--reason", "GLASSCITY_DLQ_REASON", str, "", "Only records with this reason header, e.g. "
               "schema or invalid_json (empty = any reason).")
    env_option(p, "--since", "GLASSCITY_DLQ_SINCE", str, "", "Only records written at or after this moment: ISO "
               "8601 with a UTC offset (2026-01-31T08:00:00+01:00) or epoch seconds (empty = all).")
    env_flag(p, "--dry-run", "GLASSCITY_DLQ_DRY_RUN", "Only count what would be re-injected; produce nothing.")
    add_arguments(p, ["bootstrap", "topic_prefix"] + SECURITY)
    p = sub.add_parser("detectors", help="List detectors; activate or deactivate a dormant one (audited).",
                       description="Every detector declares whether it ships active or dormant. A dormant one "
                                   "(an analysis more intrusive than its purpose needs by default) runs only "
                                   "while its activation is the newest entry about it in the hash-chained audit "
                                   "log (--audit-log / GLASSCITY_AUDIT_LOG) and that log verifies. Workers read "
                                   "the log when they start.")
    det = p.add_subparsers(dest="detectors_action", metavar="ACTION")
    det.required = True
    q = det.add_parser("list", help="Every detector with its declared status and whether the audit log activates it.")
    add_arguments(q, ["audit_log"])
    for action, verb in (("activate", "Switch a dormant detector on"), ("deactivate", "Switch it off again")):
        q = det.add_parser(action, help=f"{verb}: appends a signed-off entry to the audit log.",
                           description=f"{verb}. Appends an entry (who, why, when, chained to the one before by "
                                       f"its SHA-256) to the audit log and copies it to the audit topic; refuses a "
                                       f"log that does not verify. Running workers pick it up when they restart.")
        q.add_argument("name", metavar="NAME", help="Detector name, e.g. water.no_use_24h (`glasscity detectors list`).")
        q.add_argument("--by", required=True, help="Who decides (a name or role; recorded).")
        q.add_argument("--reason", required=True, help="Why (recorded; e.g. the decision or ticket it follows).")
        add_arguments(q, ["audit_log", "bootstrap", "topic_prefix"])

    p = sub.add_parser("acls", help="Print (or apply) the least-privilege Kafka ACLs, derived from the declarations.",
                       description="Print the ACL bindings of a least-privilege deployment: raw readings, dead "
                                   "letters, late readings and detector state readable only by the workers; each "
                                   "alert topic readable only by the audience its detectors declare (welfare alerts "
                                   "by the welfare principal alone, general alerts by operations); producers may "
                                   "only write the readings topics. As a table, a kafka-acls.sh script or JSON; "
                                   "--apply creates them with the admin client (the broker needs an authorizer; "
                                   "the embedded Tansu broker has none).")
    env_option(p, "--format", "GLASSCITY_ACL_FORMAT", str, "table", "table, script (kafka-acls.sh --add lines) "
               "or json.", choices=["table", "script", "json"])
    env_option(p, "--output", "GLASSCITY_ACL_OUTPUT", str, "", "Write to this file instead of stdout.")
    for role, who in (("worker", "the stream workers (and dlq replay)"), ("ingress", "gateways and the simulator"),
                      ("topics", "`glasscity topics create`"), ("operations", "readers of the general alerts"),
                      ("welfare", "readers of the welfare alerts")):
        env_option(p, f"--{role}-principal", f"GLASSCITY_ACL_{role.upper()}_PRINCIPAL", str,
                   f"User:glasscity-{role}", f"Kafka principal of {who}.")
    env_option(p, "--audience-principals", "GLASSCITY_ACL_AUDIENCE_PRINCIPALS", str, "",
               "Principals of further audiences, AUDIENCE=PRINCIPAL[,...], for detectors declaring "
               "alerts.<audience>.v1 (default User:glasscity-<audience>).")
    env_option(p, "--acl-command", "GLASSCITY_ACL_COMMAND", str, "kafka-acls.sh",
               "The kafka-acls.sh the script runs (its KAFKA_ACLS variable overrides it).")
    env_option(p, "--acl-command-config", "GLASSCITY_ACL_COMMAND_CONFIG", str, "",
               "Client properties file for kafka-acls.sh --command-config (the admin's SASL/TLS settings).")
    env_flag(p, "--apply", "GLASSCITY_ACL_APPLY", "Create the ACLs on the broker at --bootstrap with the admin "
             "client (connect as a super user) instead of printing them.")
    add_arguments(p, ["bootstrap", "topic_prefix", "domains", "app_id"] + SECURITY)

    p = sub.add_parser("audit", help="Check the audit log (verify).",
                       description="Work with the hash-chained audit log of detector activations.")
    aud = p.add_subparsers(dest="audit_action", metavar="ACTION")
    aud.required = True
    q = aud.add_parser("verify", help="Report every edited, removed or reordered entry by its position; exit 1 if any.",
                       description="Recompute each entry's SHA-256 and its links to the entry before it. Prints "
                                   "'ok' with the number of entries, or one line per broken entry (1-based "
                                   "position and what is wrong) and exits 1. With --against-topic, also compares "
                                   "the file with its copy on <prefix>.audit.v1 (entries missing, added or "
                                   "different on either side; this finds the newest entries removed from the "
                                   "file, which the chain alone cannot).")
    q.add_argument("--against-topic", action="store_true", help="Also compare with the audit topic's copy.")
    add_arguments(q, ["audit_log", "bootstrap", "topic_prefix"])
    q = aud.add_parser("sync", help="Copy entries missing from the audit topic to it (after a failed copy).",
                       description="Verify the file, then write every entry the audit topic lacks to it.")
    add_arguments(q, ["audit_log", "bootstrap", "topic_prefix"])

    p = sub.add_parser("register", help="Generate the public algorithm register (Markdown, JSON or HTML).",
                       description="Generate the public register of every detector from what workers load: the "
                                   "detector declarations (purpose, legal basis, data read and written, logic in "
                                   "plain words, recipients, retention, human oversight, owner, consent, objection), "
                                   "the thresholds in force (--thresholds, with unit, default and whether "
                                   "overridden) and the audit log (--audit-log: status and activation history). "
                                   "md is the Markdown of docs/register.md, json is machine-readable (keys "
                                   "documented in streams/register.py), html is one self-contained page for "
                                   "residents. Exits 1 if the audit log does not verify (the register is still "
                                   "written and says so), 2 on a bad argument or thresholds file.")
    env_option(p, "--format", "GLASSCITY_REGISTER_FORMAT", str, "md", "Output format: md, json or html.",
               choices=["md", "json", "html"])
    env_option(p, "--output", "GLASSCITY_REGISTER_OUTPUT", str, "", "File to write (default: standard output).")
    add_arguments(p, ["thresholds_file", "audit_log"])
    consent_commands(sub)

    p = sub.add_parser("doctor", help="Check broker, topics, settings, pseudonym key and metrics port; say what to fix.",
                       description="Check, in order: the settings (and thresholds file) validate; every bootstrap "
                                   "server accepts a TCP connection and answers a Kafka ApiVersions request (so it "
                                   "is a Kafka broker, not another server); every topic of the selected domains "
                                   "exists with its expected partition count and configs; the pseudonym key is set, "
                                   "long enough and not a placeholder; the metrics port is free or already serves "
                                   "glasscity's /metrics. One line per check: ok, warn or FAIL, and what to fix.",
                       epilog="Exit codes: 0 nothing failed (warnings are advice); 1 a check failed; 2 a bad "
                              "argument. Takes the worker's flags and GLASSCITY_* variables.")
    env_option(p, "--timeout", "GLASSCITY_DOCTOR_TIMEOUT", number(float, above=0), 5.0,
               "Longest wait for each broker answer, > 0. Unit: s.")
    add_arguments(p, WORKER)

    p = sub.add_parser("config", help="The configuration reference (every setting, generated from the code).",
                       description="Work with the settings object: `reference` prints docs/configuration.md "
                                   "(every setting with flag, environment variable, type, default, range, unit "
                                   "and help; secrets without a value).")
    p.add_argument("config_action", choices=["reference"], metavar="ACTION", help="reference: print the Markdown page.")
    return parser


CONSENT_SETTINGS = ["bootstrap", "topic_prefix", "pseudonym_key", "pseudonym_key_file", "audit_log"]


def _who_and_why(parser) -> None:
    parser.add_argument("--by", required=True, help="Who records this (a name or role; written to the audit log).")
    parser.add_argument("--reason", required=True, help="Why (written to the audit log; e.g. the consent form, "
                                                        "request or ticket it follows).")


def consent_commands(sub) -> None:
    """enrol, unenrol, absence, object, reidentify: the consent registers and re-identification (audited)."""
    registers = ("The household is named by its meter id; only its pseudonym (keyed HMAC, the worker's key: "
                 "--pseudonym-key or --pseudonym-key-file) is written, to a compacted register topic, and the "
                 "change is recorded in the audit log (--audit-log, required) and its topic copy. Running "
                 "workers apply it within a batch.")
    for name, verb in (("enrol", "Enrol a household in the welfare check (its consent)"),
                       ("unenrol", "Un-enrol a household: its welfare alerts stop and the welfare check's state "
                                   "for it is deleted")):
        p = sub.add_parser(name, help=verb + ".", description=f"{verb}. {registers}")
        p.add_argument("--meter", required=True, help="The household's meter id.")
        _who_and_why(p)
        add_arguments(p, CONSENT_SETTINGS)

    p = sub.add_parser("absence", help="Declare or cancel a household's absence (welfare alerts held meanwhile).",
                       description="A resident or carer declares an absence: no welfare alert is raised for the "
                                   "household from --from until --until; the checks keep running, so if there "
                                   f"is still no use when the absence ends, the alert follows then. {registers}")
    act = p.add_subparsers(dest="absence_action", metavar="ACTION")
    act.required = True
    for name, verb in (("declare", "Declare an absence."), ("cancel", "Cancel a declared absence (named by its --from).")):
        q = act.add_parser(name, help=verb, description=f"{verb} {registers}")
        q.add_argument("--meter", required=True, help="The household's meter id.")
        q.add_argument("--from", dest="start", required=True,
                       help="Start: ISO 8601 with a UTC offset (2026-12-24T08:00:00+01:00) or epoch seconds.")
        if name == "declare":
            q.add_argument("--until", required=True, help="End (exclusive), same forms as --from.")
        _who_and_why(q)
        add_arguments(q, CONSENT_SETTINGS)

    p = sub.add_parser("object", help="Record a household's objection to detectors that allow it.",
                       description="The household objects to the processing of its meter by one detector "
                                   "(--detector) or by every detector whose legal basis allows objection (none "
                                   "given): those detectors skip the meter from then on and delete their state "
                                   "for it. `glasscity register` says, per detector, whether objection is "
                                   f"possible. --withdraw takes an objection back. {registers}")
    p.add_argument("--meter", required=True, help="The household's meter id.")
    p.add_argument("--detector", default="", help="One detector's name (empty = every detector that allows "
                                                 "objection).")
    p.add_argument("--withdraw", action="store_true", help="Withdraw the objection instead.")
    _who_and_why(p)
    add_arguments(p, CONSENT_SETTINGS)

    p = sub.add_parser("reidentify", help="Map a pseudonym back to a meter id (needs the key and a reason; audited).",
                       description="Find the meter id behind a pseudonym (e.g. of a welfare alert) by computing "
                                   "the pseudonym of every meter id in a registry file the operator supplies (one "
                                   "id per line, or a CSV with an id, meter_id or meter column). Needs the "
                                   "pseudonym key and a reason; the audit log records who asked, why and the "
                                   "pseudonym (never the meter id). Prints the meter id; exits 1 if none matches.")
    p.add_argument("pseudonym", metavar="PSEUDONYM", help="The pseudonym, e.g. wm-3f2a... (32 hex digits).")
    p.add_argument("--registry", required=True, help="File of meter ids (text, one per line, or CSV).")
    _who_and_why(p)
    add_arguments(p, CONSENT_SETTINGS)

    p = sub.add_parser("rekey", help="Move the consent registers to a new pseudonym key (key rotation).",
                       description="Key rotation in two phases (docs/privacy.md). Without --finish: every "
                                   "enrolment, absence and objection is copied under the household's pseudonym "
                                   "with the new key (--new-key-file); the old records stay, so workers still on "
                                   "the old key keep honouring them. With --finish, once every worker runs on the "
                                   "new key: the old records are deleted (tombstones). The old key is the usual "
                                   "--pseudonym-key / --pseudonym-key-file; the registry file of meter ids maps "
                                   "old pseudonyms to new ones. Audited. Idempotent: run it again after a "
                                   "failure. Exits 1 if a pseudonym is not in the registry (it is left alone).")
    p.add_argument("--new-key-file", required=True, help="File holding the new pseudonym key (>= 16 bytes).")
    p.add_argument("--finish", action="store_true", help="Phase 2: delete the old-key records whose copy exists.")
    p.add_argument("--registry", required=True, help="File of meter ids (text, one per line, or CSV).")
    _who_and_why(p)
    add_arguments(p, CONSENT_SETTINGS)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command != "worker":    # the worker's logging is Faust's, formatted alike (streams/worker.py)
            _setup_logging(args)
        return COMMANDS[args.command](args)
    except SettingsError as error:
        print(f"glasscity: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _setup_logging(args) -> None:
    """Library warnings (kafka-python's, Faust's) on stderr, as text or JSON; our own messages are print()."""
    from streams.logs import secret_values, setup_logging

    try:
        settings = settings_from(args)
    except SettingsError:     # the command reports it (the doctor as a check); log plainly meanwhile
        setup_logging()
        return
    level = "debug" if settings.log_level.lower() == "debug" else "warning"
    setup_logging(level, settings.log_format, secret_values(settings))
    if level != "debug":
        # the Kafka clients log every refused connection and retry; the command says once what failed
        for name in ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def cmd_config(args) -> int:
    from streams.config import reference_document

    sys.stdout.write(reference_document())
    return 0


def cmd_doctor(args) -> int:
    from streams.doctor import run_doctor

    return run_doctor(args, timeout_s=args.timeout)


def cmd_broker(args) -> int:
    from streams.broker import BrokerError, EmbeddedBroker

    stop = []
    # both set explicitly: a process started in the background by a shell without job control
    # inherits SIGINT ignored, and Ctrl-C must still stop the broker
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        broker = EmbeddedBroker(port=args.port, host=args.host).start()
    except BrokerError as error:
        print(f"glasscity broker: {error}", file=sys.stderr)
        return 1
    print(f"broker ready on {broker.bootstrap} (memory storage; Ctrl-C to stop)", flush=True)
    try:
        while not stop and broker.process.poll() is None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        code = broker.process.poll()
        broker.stop()
    if code is not None and not stop:
        print(f"glasscity broker: the broker exited on its own with code {code}", file=sys.stderr)
        return 1
    print("broker stopped", flush=True)
    return 0


def cmd_topics(args) -> int:
    from streams.topics import create_topics, topic_names, topic_specs

    settings = settings_from(args)
    if args.action == "list":
        print("\n".join(topic_names(settings)))
        return 0
    try:
        outcome = create_topics(settings)
    except Exception as error:
        print(f"glasscity topics: {error}", file=sys.stderr)
        return 1
    partitions = {settings.topic(spec.short): spec.partitions for spec in topic_specs(settings)}
    for name, what in outcome.items():
        print(f"{what:8} {name} ({partitions[name]} partitions, {settings.replication_factor} replicas)"
              if what == "created" else f"{what:8} {name} (left as it is: partitions and configs such as "
                                         f"retention.ms are not changed)")
    return 0


def cmd_simulate(args) -> int:
    import orjson
    from kafka.errors import KafkaError

    from streams.demo import city_clock_start, city_simulations
    from streams.domains import select_domains
    from streams.simulate.produce import ProduceError, produce

    settings = settings_from(args)
    domains = select_domains(settings.domains)
    start = city_clock_start(args.days)
    try:
        simulations = city_simulations(domains, args, start)
    except ValueError as error:
        print(f"glasscity simulate: {error}", file=sys.stderr)
        return 2
    try:
        with open(args.ground_truth, "wb") as out:
            out.write(orjson.dumps({s.domain: s.ground_truth() for s in simulations}, option=orjson.OPT_INDENT_2))
    except OSError as error:
        print(f"glasscity simulate: cannot write the ground truth to {args.ground_truth}: {error.strerror}",
              file=sys.stderr)
        return 2
    incidents = sum(len(s.incidents) for s in simulations)
    malformed = sum(len(s.malformed) for s in simulations)
    print(f"ground truth: {args.ground_truth} ({incidents} incidents, {malformed} malformed items)", flush=True)
    if not (settings.pseudonym_key or settings.pseudonym_key_file) and any(d.name == "water" for d in domains):
        print("no pseudonym key (--pseudonym-key / GLASSCITY_PSEUDONYM_KEY): the simulated households are not "
              "enrolled, so no welfare alert will be raised", flush=True)
    from streams.progress import progress
    from streams.worker import unreachable_bootstrap

    unreachable = unreachable_bootstrap(settings.bootstrap, timeout_s=5.0)
    if unreachable:
        print(f"glasscity simulate: no Kafka broker answers at {unreachable} (tried for 5 s); start one with "
              f"`glasscity broker` or set --bootstrap / GLASSCITY_BOOTSTRAP", file=sys.stderr)
        return 1
    hours = math.ceil(args.days * 24)
    bar = progress(total=hours, desc="simulate", unit="city-h")
    def advance(city_time: float, _confirmed: int) -> None:
        bar.update(min(hours, round((city_time - start) / 3600) + 1) - bar.n)
    try:
        with bar:
            sent = produce(simulations, settings, hour_seconds=args.hour_seconds, progress=advance)
            bar.update(hours - bar.n)
    except ProduceError as error:
        print(f"glasscity simulate: {error}", file=sys.stderr)
        return 1
    except KafkaError as error:   # e.g. no broker to bootstrap from
        print(f"glasscity simulate: cannot produce to {settings.bootstrap}: {error}", file=sys.stderr)
        return 1
    valid = sum(s.valid_readings for s in simulations)
    print(f"produced {sent} messages ({valid} valid readings) to "
          f"{', '.join(settings.topic(d.topic('readings')) for d in domains)}", flush=True)
    return 0


def cmd_replay(args) -> int:
    from pathlib import Path

    from streams.replay import ReplayError, replay

    if not args.detector or not args.input:
        print("glasscity replay: --detector and --input are required (or GLASSCITY_REPLAY_DETECTOR / "
              "GLASSCITY_REPLAY_INPUT)", file=sys.stderr)
        return 2
    settings = settings_from(args)
    try:
        replay(args.detector, Path(args.input), Path(args.output) if args.output else None, settings)
    except (ReplayError, OSError, UnicodeDecodeError) as error:
        print(f"glasscity replay: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_thresholds(args) -> int:
    import dataclasses

    from streams.detectors import CONFIGURABLE
    from streams.detectors.thresholds import load_thresholds, thresholds_document

    settings = settings_from(args)
    print(thresholds_document(CONFIGURABLE), end="")
    if settings.thresholds_file:
        configured = load_thresholds(settings.thresholds_file, CONFIGURABLE)
        changed = [f"{name}.{f.name} = {getattr(t, f.name):g}" for name, t in sorted(configured.items())
                   for f in dataclasses.fields(t) if getattr(t, f.name) != f.default]
        print(f"\nOverridden by {settings.thresholds_file}: " + ("; ".join(changed) or "nothing"))
    return 0


def cmd_worker(args) -> int:
    from streams.worker import run_worker

    return run_worker(settings_from(args))


def cmd_dlq(args) -> int:
    from streams.dlq import DlqArgumentError, DlqError, parse_since, replay_dead_letters

    name = "glasscity dlq replay"
    settings = settings_from(args)
    try:
        if not args.domain:
            raise DlqArgumentError("--domain (or GLASSCITY_DLQ_DOMAIN) is required")
        since = parse_since(args.since) if args.since else None
        report = replay_dead_letters(settings, args.domain, reason=args.reason or None, since=since,
                                     dry_run=args.dry_run)
    except DlqArgumentError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except DlqError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    print(report.summary(), flush=True)
    if report.failed:
        print(f"{name}: {report.failed} re-injection(s) failed: {report.error}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args) -> int:
    from streams.demo import run_demo

    return run_demo(args)


def cmd_detectors(args) -> int:
    from streams.audit import activations
    from streams.detectors import REGISTRY

    settings = settings_from(args)
    if args.detectors_action == "list":
        activated, problems = activations(settings.audit_log)
        for problem in problems:
            print(f"glasscity detectors: the audit log does not verify: {problem}", file=sys.stderr)
        for name, cls in sorted(REGISTRY.items()):
            status = cls.declaration.status
            runs = status == "active" or name in activated
            print(f"{name:32} {status:8} {'runs' if runs else 'off'}")
        return 1 if problems else 0
    name = args.name
    if name not in REGISTRY:
        print(f"glasscity detectors: no detector {name!r}; `glasscity detectors list` names them", file=sys.stderr)
        return 2
    code, entry = _record("glasscity detectors", settings, args.detectors_action, name, args.by, args.reason)
    if entry is not None:
        print(f"entry {entry['seq'] + 1}: {entry['action']} {name} by {entry['by']} at {entry['time']} "
              f"({entry['hash'][:12]})")
    return code


def cmd_audit(args) -> int:
    from streams.audit import verify
    from streams.registers import RegisterError, compare_audit, publish_audit, read_all, topic_entries
    from streams.topics import AUDIT_TOPIC

    name = f"glasscity audit {args.audit_action}"
    settings = settings_from(args)
    if not settings.audit_log:
        print(f"{name}: set the audit log (--audit-log or GLASSCITY_AUDIT_LOG)", file=sys.stderr)
        return 2
    entries, problems = verify(settings.audit_log)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    try:
        copies = read_all(settings, AUDIT_TOPIC) if args.audit_action == "sync" or args.against_topic else None
    except RegisterError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    if args.audit_action == "sync":
        on_topic = topic_entries(copies)
        missing = [e for e in entries if e["seq"] not in on_topic]
        try:
            publish_audit(settings, missing)
        except RegisterError as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 1
        print(f"ok: {len(missing)} of {len(entries)} entries copied to {settings.topic(AUDIT_TOPIC)}")
        return 0
    if copies is not None:
        differences = compare_audit(entries, copies)
        for line in differences:
            print(line)
        if differences:
            return 1
        print(f"ok: {len(entries)} entries, chain intact, equal to the copy on {settings.topic(AUDIT_TOPIC)}")
        return 0
    print(f"ok: {len(entries)} entries, chain intact")
    return 0


def _record(name: str, settings, action: str, detector: str, by: str, reason: str, subject: str | None = None,
            register: tuple[str, list] | None = None, details: dict | None = None) -> tuple[int, dict | None]:
    """Audit entry first (file, chained), then the register records, then the entry's topic copy.
    Returns (exit code, entry); prints what failed."""
    from streams.audit import AuditError, append
    from streams.registers import RegisterError, publish, publish_audit

    if not settings.audit_log:
        print(f"{name}: set the audit log (--audit-log or GLASSCITY_AUDIT_LOG) to record this", file=sys.stderr)
        return 2, None
    try:
        entry = append(settings.audit_log, action, detector, by, reason, subject=subject, details=details)
    except AuditError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1, None
    if register is not None:
        short, records = register
        try:
            publish(settings, short, records)
        except RegisterError as error:
            print(f"{name}: the audit log records the request (entry {entry['seq'] + 1}) but the register was not "
                  f"written: {error}; run the command again once the broker answers", file=sys.stderr)
            return 1, entry
    try:
        publish_audit(settings, [entry])
    except RegisterError as error:
        print(f"{name}: recorded (audit entry {entry['seq'] + 1}) but its copy on the audit topic failed: {error}; "
              f"run `glasscity audit sync`", file=sys.stderr)
        return 1, entry
    return 0, entry


def _meter_pseudonym(settings, meter: str) -> str:
    from streams.pseudonym import Pseudonymizer

    if not meter.strip():
        raise SettingsError("--meter must not be empty")
    return Pseudonymizer(settings.require_pseudonym_key()).meter(meter.strip())


def cmd_enrol(args) -> int:
    from streams.consent import REGISTER_TOPICS, Enrolment, encode, record_key
    from streams.alerts import iso_time

    settings = settings_from(args)
    pseudonym = _meter_pseudonym(settings, args.meter)
    enrolled = args.command == "enrol"
    value = encode(Enrolment(enrolled, iso_time(time.time())))
    code, entry = _record(f"glasscity {args.command}", settings, args.command, "-", args.by, args.reason,
                          subject=pseudonym,
                          register=(REGISTER_TOPICS["enrolment"], [(record_key("enrolment", pseudonym), value)]))
    if code == 0:
        print(f"{'enrolled' if enrolled else 'un-enrolled'} {pseudonym} (audit entry {entry['seq'] + 1})")
    return code


def cmd_absence(args) -> int:
    from streams.alerts import iso_time
    from streams.consent import REGISTER_TOPICS, Absence, encode, record_key
    from streams.timeparse import InstantError, parse_instant

    name = f"glasscity absence {args.absence_action}"
    settings = settings_from(args)
    pseudonym = _meter_pseudonym(settings, args.meter)
    def instant(flag: str, text: str) -> float:
        value = parse_instant(text)
        # epoch seconds between 1970 and 2200: milliseconds, NaN or infinities are a mistake
        if not (0 <= value < 7_258_118_400):
            raise InstantError(f"{flag} {text.strip()!r} is not a moment between 1970 and 2200 (epoch seconds, "
                               f"not milliseconds, or ISO 8601 with a UTC offset)")
        return float(int(value))

    try:
        start = instant("--from", args.start)
        until = instant("--until", args.until) if args.absence_action == "declare" else None
    except InstantError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    key = record_key("absence", pseudonym, start)
    if until is None:
        value, action, details = None, "absence_cancel", {"from": iso_time(start)}
    else:
        if until <= start:
            print(f"{name}: --until must be after --from", file=sys.stderr)
            return 2
        value, action = encode(Absence(start, until, iso_time(time.time()))), "absence"
        details = {"from": iso_time(start), "until": iso_time(until)}
    code, entry = _record(name, settings, action, "-", args.by, args.reason, subject=pseudonym,
                          register=(REGISTER_TOPICS["absence"], [(key, value)]), details=details)
    if code == 0:
        what = f"from {details['from']} until {details['until']}" if until is not None else f"from {details['from']} cancelled"
        print(f"absence of {pseudonym} {what} (audit entry {entry['seq'] + 1})")
    return code


def cmd_object(args) -> int:
    from streams.alerts import iso_time
    from streams.consent import ALL_DETECTORS, REGISTER_TOPICS, Objection, encode, record_key
    from streams.detectors import CONFIGURABLE, REGISTRY

    name = "glasscity object"
    settings = settings_from(args)
    detector = args.detector.strip() or ALL_DETECTORS
    allowed = sorted(n for n, cls in REGISTRY.items() if cls.declaration.objection_allowed)
    if detector != ALL_DETECTORS:
        if detector not in CONFIGURABLE:
            print(f"{name}: no detector {detector!r}; `glasscity detectors list` names them", file=sys.stderr)
            return 2
        if detector not in allowed:
            print(f"{name}: {detector} does not allow objection (its legal basis does not; `glasscity register` "
                  f"says why); detectors that do: {', '.join(allowed) or 'none'}", file=sys.stderr)
            return 2
    pseudonym = _meter_pseudonym(settings, args.meter)
    value = encode(Objection(not args.withdraw, iso_time(time.time())))
    action = "object_withdraw" if args.withdraw else "object"
    code, entry = _record(name, settings, action, detector if detector != ALL_DETECTORS else "-", args.by,
                          args.reason, subject=pseudonym, details={"detectors": [detector]},
                          register=(REGISTER_TOPICS["objection"], [(record_key("objection", pseudonym, detector),
                                                                    value)]))
    if code == 0:
        scope = "every detector that allows objection" if detector == ALL_DETECTORS else detector
        print(f"objection of {pseudonym} to {scope} {'withdrawn' if args.withdraw else 'recorded'} "
              f"(audit entry {entry['seq'] + 1}); now covers: "
              f"{', '.join(allowed) if detector == ALL_DETECTORS else detector}")
    return code


def read_registry(path: str) -> list[str]:
    """Meter ids from a registry file: one per line, or a CSV with an id, meter_id or meter column."""
    import csv

    with open(path, encoding="utf-8", newline="") as file:
        text = file.read()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    if "," in lines[0] or ";" in lines[0]:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;")
        rows = list(csv.DictReader(lines, dialect=dialect))
        columns = {c.strip().lower(): c for c in (rows[0].keys() if rows else [])}
        column = next((columns[c] for c in ("id", "meter_id", "meter") if c in columns), None)
        if column is None:
            raise ValueError(f"{path}: a CSV registry needs an id, meter_id or meter column")
        return [row[column].strip() for row in rows if row.get(column, "").strip()]
    return [line.strip() for line in lines]


def cmd_reidentify(args) -> int:
    from streams.pseudonym import Pseudonymizer

    name = "glasscity reidentify"
    settings = settings_from(args)
    pseudonymizer = Pseudonymizer(settings.require_pseudonym_key())
    wanted = args.pseudonym.strip()
    kind = wanted.split("-", 1)[0]
    if "-" not in wanted or len(wanted.split("-", 1)[1]) != 32:
        print(f"{name}: {wanted!r} is not a pseudonym (kind-<32 hex digits>, e.g. wm-3f2a...)", file=sys.stderr)
        return 2
    try:
        ids = read_registry(args.registry)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"{name}: cannot read the registry: {error}", file=sys.stderr)
        return 2
    # the request is recorded before anything is looked up: a re-identification that finds nothing is audited too
    code, entry = _record(name, settings, "reidentify", "-", args.by, args.reason, subject=wanted,
                          details={"registry_size": len(ids)})
    if entry is None:
        return code
    matches = [raw for raw, p in zip(ids, pseudonymizer.many(kind, ids)) if p == wanted]
    if not matches:
        print(f"{name}: no meter id in {args.registry} ({len(ids)} ids) has pseudonym {wanted} under this key",
              file=sys.stderr)
        return 1
    print(matches[0])
    return code


def cmd_rekey(args) -> int:
    from streams.consent import REGISTER_TOPICS, rekey_records
    from streams.pseudonym import Pseudonymizer
    from streams.registers import RegisterError, publish, read_all

    name = "glasscity rekey"
    settings = settings_from(args)
    old = Pseudonymizer(settings.require_pseudonym_key())
    new = Pseudonymizer(settings_from(environ={}, pseudonym_key_file=args.new_key_file).require_pseudonym_key())
    try:
        ids = read_registry(args.registry)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"{name}: cannot read the registry: {error}", file=sys.stderr)
        return 2
    old_to_new = dict(zip(old.many("wm", ids), new.many("wm", ids)))
    try:
        moves = {kind: rekey_records(read_all(settings, short), old_to_new, finish=args.finish)
                 for kind, short in REGISTER_TOPICS.items()}
    except RegisterError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    moved = {kind: len(out) for kind, (out, _unknown) in moves.items()}
    unknown = sorted({p for _out, missing in moves.values() for p in missing})
    code, entry = _record(name, settings, "rekey", "-", args.by, args.reason,
                          details={"phase": "finish" if args.finish else "copy", "records": moved,
                                   "unknown": len(unknown), "registry_size": len(ids)})
    if entry is None:
        return code
    try:
        for kind, (out, _unknown) in moves.items():
            publish(settings, REGISTER_TOPICS[kind], out)
    except RegisterError as error:
        print(f"{name}: {error}; the registers are partly done: run the command again (it is idempotent)",
              file=sys.stderr)
        return 1
    verb = "old records deleted" if args.finish else "copied to the new key"
    print(f"{verb}: {moved['enrolment']} enrolments, {moved['absence']} absences, "
          f"{moved['objection']} objections (audit entry {entry['seq'] + 1})")
    if unknown:
        print(f"{name}: {len(unknown)} pseudonym(s) are not in the registry and stay under the old key "
              f"(they no longer match any household once workers use the new key): {', '.join(unknown[:5])}"
              f"{' ...' if len(unknown) > 5 else ''}", file=sys.stderr)
        return 1
    return code


def cmd_register(args) -> int:
    from pathlib import Path

    from streams.register import FORMATS, build_register, render

    if args.format not in FORMATS:
        print(f"glasscity register: --format must be one of {', '.join(FORMATS)}, got {args.format!r}",
              file=sys.stderr)
        return 2
    settings = settings_from(args)
    register = build_register(settings)
    text = render(register, args.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"glasscity register: cannot write {args.output}: {error}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    if register["audit"]["verified"] is False:
        print(f"glasscity register: the audit log {settings.audit_log} does not verify "
              f"({'; '.join(register['audit']['problems'])}); the register says so and shows dormant detectors "
              f"as not running", file=sys.stderr)
        return 1
    return 0


def cmd_acls(args) -> int:
    from streams.acls import command

    return command(args, settings_from(args))

def cmd_export(args) -> int:
    from streams.export.cli import run_export

    return run_export(args, settings_from(args))


def cmd_alerts(args) -> int:
    from streams.control.cli import run_alerts

    return run_alerts(args, settings_from(args))


COMMANDS = {"broker": cmd_broker, "topics": cmd_topics, "simulate": cmd_simulate, "worker": cmd_worker,
            "replay": cmd_replay, "thresholds": cmd_thresholds, "demo": cmd_demo, "dlq": cmd_dlq,
            "detectors": cmd_detectors, "audit": cmd_audit, "register": cmd_register, "enrol": cmd_enrol,
            "unenrol": cmd_enrol, "absence": cmd_absence, "object": cmd_object, "reidentify": cmd_reidentify,
            "rekey": cmd_rekey, "acls": cmd_acls, "alerts": cmd_alerts, "doctor": cmd_doctor,
            "config": cmd_config, "export": cmd_export}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
