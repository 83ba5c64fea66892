"""One validated settings object for every glasscity command.

Each setting has exactly one definition here: its type, default, unit, the
``GLASSCITY_*`` environment variable behind it and the help text. The CLI builds
its flags from these definitions, so ``--help`` always names the variable and
the default, and a flag given on the command line wins over the environment.

Secrets (``secret=True``) are never echoed: not in ``--help`` defaults, not in
``repr``, not in logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Settings", "SettingsError", "Check", "add_arguments", "settings_from", "reference_document", "SETTING_FIELDS"]

ENV_PREFIX = "GLASSCITY_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message says which and why."""


def _setting(default: Any, help: str, *, group: str, unit: str = "", secret: bool = False,
             check: Check | None = None, flag: str | None = None, env: str | None = None):
    return field(default=default, metadata={"help": help, "group": group, "unit": unit, "secret": secret,
                                             "check": check, "flag": flag, "env": env})


class Check:
    """A setting's range check: called with the value, returns a problem or None; ``text`` names the
    allowed range for --help and docs/configuration.md."""

    def __init__(self, text: str, test: Callable[[Any], bool], problem: str | None = None):
        self.text = text
        self._test = test
        self._problem = problem or f"must be {text}"

    def __call__(self, value) -> str | None:
        return None if self._test(value) else self._problem


def _finite(value) -> bool:
    return isinstance(value, int) or math.isfinite(value)


_positive = Check("> 0", lambda v: _finite(v) and v > 0)
_port = Check("0-65535 (0 = any free port)", lambda v: 0 <= v <= 65535,
              "must be a TCP port (0-65535; 0 = any free port)")
_non_negative = Check(">= 0", lambda v: _finite(v) and v >= 0)
_at_least_one = Check(">= 1", lambda v: v >= 1)


def _one_of(*choices: str, ignore_case: bool = False) -> Check:
    shown = ", ".join(c for c in choices if c) + (" or empty" if "" in choices else "")
    return Check(f"one of {shown}", lambda v: (v.lower() if ignore_case else v) in choices)


def boolean(text) -> bool:
    """An on/off value: 1/true/yes/on or 0/false/no/off (any case)."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not an on/off value: {text!r}")


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build it with :func:`settings_from`; units are in the names."""

    # -- Kafka / broker -----------------------------------------------------------------
    bootstrap: str = _setting("127.0.0.1:9092", "Kafka bootstrap server(s), host:port[,host:port].",
                              group="kafka")
    topic_prefix: str = _setting("glasscity", "Prefix of every topic name (<prefix>.water.readings.v1 ...).",
                                 group="kafka")
    partitions: int = _setting(4, "Partitions per topic when topics are created.", group="kafka", check=_positive)
    domains: str = _setting("", "Comma-separated domains this worker runs (water, traffic, waste, lighting); "
                            "empty = all.", group="kafka")
    app_id: str = _setting("glasscity", "Consumer group / Faust application id.", group="kafka")
    raw_retention_s: float = _setting(7 * 86400.0, "How long the topics that carry raw meter ids (readings, dead "
                                      "letters, late readings) keep them (their retention.ms, set when "
                                      "`glasscity topics create` creates them).", group="kafka", unit="s",
                                      check=_positive)
    rebalance_timeout_s: float = _setting(60.0, "Consumer group rebalance timeout. A worker's first join "
                                          "waits about half of it on the embedded broker.", group="kafka",
                                          unit="s", check=_positive)
    replication_factor: int = _setting(1, "Replicas of each topic when topics are created (at most the number of "
                                       "brokers; 3 is usual in production).", group="kafka", check=_at_least_one)
    # -- Kafka security (one translation into client options: streams/kafka_security.py) --------
    security_protocol: str = _setting("PLAINTEXT", "How every client connects to Kafka: PLAINTEXT, SSL (TLS), "
                                      "SASL_PLAINTEXT (authenticated, unencrypted) or SASL_SSL (authenticated "
                                      "over TLS).", group="kafka",
                                      check=_one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    sasl_mechanism: str = _setting("", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (required with a "
                                   "SASL_* protocol).", group="kafka",
                                   check=_one_of("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
    sasl_username: str = _setting("", "SASL user name (the broker's principal User:<name>).", group="kafka")
    sasl_password: str = _setting("", "SASL password. Prefer --sasl-password-file or the environment: a flag is "
                                  "visible in the process list.", group="kafka", secret=True)
    sasl_password_file: str = _setting("", "File holding the SASL password (one line; a trailing newline is "
                                       "ignored), e.g. a container secret. Use it or --sasl-password, not both.",
                                       group="kafka", env=ENV_PREFIX + "SASL_PASSWORD_FILE")
    ssl_cafile: str = _setting("", "PEM file of the certificate authorities to trust for the broker's "
                               "certificate (empty = the system's).", group="kafka")
    ssl_certfile: str = _setting("", "PEM client certificate, for brokers that require TLS client "
                                 "authentication (with --ssl-keyfile).", group="kafka")
    ssl_keyfile: str = _setting("", "PEM private key of the client certificate (with --ssl-certfile).",
                                group="kafka")
    ssl_check_hostname: bool = _setting(True, "Check that the broker's certificate names the host connected to "
                                        "(1/0, true/false).", group="kafka")
    # -- worker ---------------------------------------------------------------------------
    pseudonym_key: str = _setting("", "Secret key for the HMAC-SHA-256 pseudonyms of meter ids "
                                  "(at least 16 bytes). Required by the worker; or give --pseudonym-key-file.",
                                  group="worker", secret=True)
    pseudonym_key_file: str = _setting("", "File holding the pseudonym key (its whole content but a final newline; "
                                       "keep it readable by the worker only). Use it or --pseudonym-key, not "
                                       "both.", group="worker", env="GLASSCITY_PSEUDONYM_KEY_FILE")
    welfare_token: str = _setting("", "Token of the welfare role: who presents it may see welfare alerts "
                                  "(glasscity alerts --welfare). Empty = nobody may.", group="worker", secret=True,
                                  check=Check("empty or at least 16 characters", lambda v: v == "" or len(v) >= 16,
                                              "must be empty (no welfare role) or at least 16 characters: it "
                                              "guards the welfare alerts"))
    ngsi_token: str = _setting("", "Bearer token for the NGSI-LD broker that `glasscity export --post` sends to, when "
                               "it requires one (empty = no Authorization header). Prefer the environment: a flag "
                               "is visible in the process list.", group="export", secret=True)
    metrics_host: str = _setting("0.0.0.0", "Address the worker's /metrics endpoint binds to.", group="worker")
    metrics_port: int = _setting(9464, "Port of the worker's /metrics endpoint (0 = any free port).",
                                 group="worker", check=_port)
    page: bool = _setting(True, "Serve the control room's live alert page from the worker (1/0): the alert feed, "
                          "open alerts by domain and age, per-domain rates, the KPIs and a plan of the city. It "
                          "reads the alert topics itself, so every worker's page shows the whole city's alerts.",
                          group="worker")
    page_host: str = _setting("0.0.0.0", "Address the control room's page binds to.", group="worker")
    page_port: int = _setting(9465, "Port of the control room's page (0 = any free port). If it is taken the worker "
                              "logs a warning and runs without the page: alerts never wait for a dashboard.",
                              group="worker", check=_port)
    batch_size: int = _setting(2000, "Most Kafka messages taken into one batch.", group="worker",
                               check=_positive)
    batch_within_s: float = _setting(0.2, "Longest wait to fill a batch before processing what arrived.",
                                     group="worker", unit="s", check=_positive)
    log_level: str = _setting("info", "Log level: debug, info, warning, error.", group="worker",
                              check=_one_of("debug", "info", "warning", "error", ignore_case=True))
    log_format: str = _setting("text", "Log format: text (human-readable lines) or json (one JSON object per "
                               "line: time, level, logger, message and any extra fields).", group="worker",
                               check=_one_of("text", "json"))
    shutdown_timeout_s: float = _setting(10.0, "Longest graceful shutdown after SIGTERM/SIGINT; then the worker "
                                         "exits at once with code 4 (state is durable before offsets are "
                                         "committed, so this is safe). A second signal exits at once.",
                                         group="worker", unit="s", check=_positive)
    broker_unreachable_exit_s: float = _setting(120.0, "Exit with code 3 once no bootstrap server has accepted a "
                                                "TCP connection for this long (0 = never). A stalled broker "
                                                "still accepts connections and is waited for.", group="worker",
                                                unit="s", check=_non_negative)
    # -- event time and detector thresholds ---------------------------------------------------
    audit_log: str = _setting("", "The hash-chained audit log (a file, copied to <prefix>.audit.v1): detector "
                              "activations, threshold changes workers load, consent-register changes and "
                              "re-identifications. `glasscity audit verify` checks it. A dormant detector runs "
                              "only while its activation is the newest entry about it in a log that verifies; "
                              "empty = no log, dormant detectors stay off.", group="thresholds")
    thresholds_file: str = _setting("", "JSON file overriding detector thresholds, e.g. "
                                    '{"water.no_use_24h": {"no_use_after_s": 43200}}; '
                                    "`glasscity thresholds` lists every threshold with unit, default and why.",
                                    group="thresholds", flag="--thresholds", env="GLASSCITY_THRESHOLDS")
    sweep_interval_s: float = _setting(300.0, "Event-time step between two sweeps of the absence detectors "
                                       "(the resolution of alert times).", group="thresholds", unit="s",
                                       check=_positive)
    allowed_lateness_s: float = _setting(600.0, "How far the event-time watermark trails the newest reading "
                                         "of a partition, so slightly late readings still count before a sweep.",
                                         group="thresholds", unit="s", check=_non_negative)
    idle_partition_after_s: float = _setting(30.0, "A partition that receives nothing for this long (wall clock) "
                                             "follows the slowest active partition's watermark, so a gateway "
                                             "alone on its partition is still seen going quiet.",
                                             group="thresholds", unit="s", check=_positive)
    max_future_skew_s: float = _setting(86400.0, "Readings dated further than this past the wall clock are "
                                        "rejected (timestamp_out_of_range).", group="thresholds", unit="s",
                                        check=_positive)

    def __post_init__(self):
        problems = []
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                problem = check(getattr(self, f.name))
                if problem:
                    problems.append(f"{flag_name(f)} / {env_name(f)}: {problem}")
        if not problems:
            from streams.kafka_security import security_problems

            problems = security_problems(self)
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown.append(f"{f.name}={'<secret>' if f.metadata['secret'] and value else value!r}")
        return f"Settings({', '.join(shown)})"

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as ``water.readings.v1``."""
        return f"{self.topic_prefix}.{name}"

    def require_pseudonym_key(self) -> bytes:
        """The pseudonym key, from the setting or its file; SettingsError (never showing it) otherwise."""
        if self.pseudonym_key and self.pseudonym_key_file:
            raise SettingsError(f"give the pseudonym key once: {ENV_PREFIX}PSEUDONYM_KEY (--pseudonym-key) or "
                                f"{ENV_PREFIX}PSEUDONYM_KEY_FILE (--pseudonym-key-file), not both")
        if self.pseudonym_key_file:
            try:
                with open(self.pseudonym_key_file, "rb") as file:
                    key = file.read()
            except OSError as error:
                raise SettingsError(f"cannot read the pseudonym key file {self.pseudonym_key_file}: "
                                    f"{error.strerror}") from None
            key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
            where = f"the pseudonym key file {self.pseudonym_key_file}"
        else:
            key = self.pseudonym_key.encode("utf-8")
            where = f"{ENV_PREFIX}PSEUDONYM_KEY (--pseudonym-key)"
        if len(key) < 16:
            raise SettingsError(f"{where} must hold at least 16 bytes (128 bits) of secret; got {len(key)} bytes")
        return key


SETTING_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def env_name(f: dataclasses.Field) -> str:
    return f.metadata.get("env") or ENV_PREFIX + f.name.upper().removesuffix("_S")


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.removesuffix("_s").replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """Add one flag per named setting; help names unit, default and environment variable."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in names:
        f = SETTING_FIELDS[name]
        group_name = f.metadata["group"]
        group = groups.get(group_name) or groups.setdefault(group_name, parser.add_argument_group(group_name))
        unit = f" Unit: {f.metadata['unit']}." if f.metadata["unit"] else ""
        default = "not shown (secret)" if f.metadata["secret"] else f"{f.default!r}"
        group.add_argument(flag_name(f), dest=name, default=None, type=f.type if callable(f.type) else _TYPES[f.type],
                           metavar=name.upper().removesuffix("_S"),
                           help=f"{f.metadata['help']}{unit} Env: {env_name(f)}. Default: {default}.")


_TYPES = {"str": str, "int": int, "float": float, "bool": boolean}


def settings_from(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None,
                  **overrides) -> Settings:
    """Flag value, else ``GLASSCITY_*`` variable, else the default; then validate."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, f in SETTING_FIELDS.items():
        convert = _TYPES[f.type] if isinstance(f.type, str) else f.type
        if name in overrides:
            values[name] = overrides[name]
            continue
        flag_value = getattr(args, name, None) if args is not None else None
        if flag_value is not None:
            values[name] = flag_value
        elif env_name(f) in environ:
            raw = environ[env_name(f)]
            try:
                values[name] = convert(raw)
            except ValueError:
                shown = "<secret>" if f.metadata["secret"] else repr(raw)
                raise SettingsError(f"{env_name(f)}={shown} is not a valid {convert.__name__}") from None
    return Settings(**values)


def _type_name(f: dataclasses.Field) -> str:
    return {"str": "text", "int": "integer", "float": "number", "bool": "on/off"}.get(
        f.type if isinstance(f.type, str) else f.type.__name__, str(f.type))


def reference_document() -> str:
    """docs/configuration.md: every setting of :class:`Settings` with its flag, environment variable,
    type, default (secrets: never a value), allowed range, unit and help, by group."""
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    lines = ["# Configuration reference", "",
             "Generated from the settings object (`streams/config.py`) by `glasscity config reference` "
             "(regenerate: `glasscity config reference > docs/configuration.md`; a test checks it matches).",
             "Every setting is a flag of the commands that use it and falls back to its environment variable; a "
             "flag given on the command line wins. Secrets are never shown, in `--help`, logs or here. "
             "`glasscity doctor` checks a configuration against the running broker.", ""]
    groups: dict[str, list[dataclasses.Field]] = {}
    for f in SETTING_FIELDS.values():
        groups.setdefault(f.metadata["group"], []).append(f)
    for group, fields in groups.items():
        lines += [f"## {group}", "", "| setting | flag | environment variable | type | default | range | unit | help |",
                  "|---|---|---|---|---|---|---|---|"]
        for f in fields:
            default = "secret (not shown)" if f.metadata["secret"] else f"`{f.default!r}`"
            check = f.metadata.get("check")
            lines.append("| " + " | ".join(cell(c) for c in (
                f"`{f.name}`", f"`{flag_name(f)}`", f"`{env_name(f)}`", _type_name(f), default,
                check.text if check is not None else "any", f.metadata["unit"] or "-", f.metadata["help"])) + " |")
        lines.append("")
    return "\n".join(lines)
