"""The embedded demo city: broker, topics, simulator, worker, live alerts, summary.

Everything runs for real: the Tansu broker in a subprocess, a ``glasscity worker``
subprocess consuming through a consumer group, the simulator producing over the
Kafka protocol, and alerts read back from the alert topics. Every process this
starts is stopped after a bounded wait, whatever happens.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson

from streams.broker import BrokerNotInstalledError, EmbeddedBroker, free_port, stop_process
from streams.config import SETTING_FIELDS, settings_from
from streams.evaluation import format_table, summarise
from streams.kafka_security import SECURITY_SETTINGS, kafka_python_security, security_environment
from streams.pseudonym import Pseudonymizer
from streams.simulate.produce import produce
from streams.topics import create_topics

__all__ = ["run_demo", "read_metrics", "AlertReader", "start_worker", "DemoStopped"]

SETTING_DEFAULTS = {name: f.default for name, f in SETTING_FIELDS.items()}


def read_metrics(port: int, host: str = "127.0.0.1") -> dict[tuple[str, tuple], float]:
    """Scrape a worker's /metrics: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric_sum(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, w) in ls for k, w in labels.items()))


class AlertReader(threading.Thread):
    """Reads the alert topics from the beginning (no consumer group) into ``alerts``."""

    def __init__(self, settings, on_alert=None):
        super().__init__(daemon=True, name="alert-reader")
        self.settings = settings
        self.on_alert = on_alert
        self.alerts: list[dict] = []
        self.received_at: dict[str, float] = {}   # alert id -> time.monotonic() on arrival
        self.topics_of: dict[str, str] = {}
        self._stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        from kafka import KafkaConsumer, TopicPartition

        try:
            consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap.split(","), group_id=None,
                                     enable_auto_commit=False, auto_offset_reset="earliest",
                                     client_id="glasscity-alert-reader", **kafka_python_security(self.settings))
            partitions = [TopicPartition(self.settings.topic(short), p)
                          for short in ("alerts.v1", "alerts.welfare.v1") for p in range(self.settings.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            while not self._stop_event.is_set():
                for tp, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        event = orjson.loads(record.value)
                        self.alerts.append(event)
                        self.received_at.setdefault(event["id"], time.monotonic())
                        self.topics_of[event["id"]] = tp.topic
                        if self.on_alert:
                            self.on_alert(event, tp.topic)
            consumer.close()
        except BaseException as error:  # reported by the caller, never swallowed
            self.error = error

    def stop(self, timeout_s: float = 5.0):
        self._stop_event.set()
        self.join(timeout_s)


def start_worker(settings, log_path: Path, extra_env: dict | None = None) -> subprocess.Popen:
    """A ``glasscity worker`` subprocess configured through GLASSCITY_* variables (the key never in argv)."""
    env = dict(os.environ)
    env.update({
        "GLASSCITY_BOOTSTRAP": settings.bootstrap, "GLASSCITY_TOPIC_PREFIX": settings.topic_prefix,
        "GLASSCITY_PARTITIONS": str(settings.partitions), "GLASSCITY_APP_ID": settings.app_id,
        "GLASSCITY_REBALANCE_TIMEOUT": str(settings.rebalance_timeout_s),
        "GLASSCITY_PSEUDONYM_KEY": settings.pseudonym_key, "GLASSCITY_METRICS_HOST": settings.metrics_host,
        "GLASSCITY_METRICS_PORT": str(settings.metrics_port), "GLASSCITY_LOG_LEVEL": settings.log_level,
        "GLASSCITY_LOG_FORMAT": settings.log_format, "GLASSCITY_DOMAINS": settings.domains,
        "GLASSCITY_THRESHOLDS": settings.thresholds_file, "GLASSCITY_PAGE": "1" if settings.page else "0",
        "GLASSCITY_PAGE_HOST": settings.page_host, "GLASSCITY_PAGE_PORT": str(settings.page_port),
        **security_environment(settings),   # connects as this process does, whatever the caller's environment
    })
    env.update(extra_env or {})
    log = open(log_path, "ab")
    try:
        # its own session: a Ctrl-C at the terminal reaches the caller, which stops the worker before the broker
        return subprocess.Popen([sys.executable, "-m", "streams", "worker"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()


def wait_for_worker_metrics(process: subprocess.Popen, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {process.returncode} during start-up")
        try:
            read_metrics(port)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the worker's /metrics did not answer within {timeout_s:.0f} s")


def wait_until_consumed(process, port: int, readings: int, invalid: int, timeout_s: float) -> dict:
    """Poll /metrics until the worker has counted every reading and invalid item sent."""
    deadline = time.monotonic() + timeout_s
    samples: dict = {}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {process.returncode}")
        try:
            samples = read_metrics(port)
        except OSError:
            samples = {}
        got = metric_sum(samples, "glasscity_readings_consumed_total")
        bad = metric_sum(samples, "glasscity_invalid_total")
        if got >= readings and bad >= invalid:
            return samples
        time.sleep(0.25)
    raise TimeoutError(f"the worker had not consumed everything after {timeout_s:.0f} s "
                       f"(readings {metric_sum(samples, 'glasscity_readings_consumed_total'):.0f}/{readings}, "
                       f"invalid {metric_sum(samples, 'glasscity_invalid_total'):.0f}/{invalid})")


def _print_alert(event: dict, topic: str) -> None:
    data = event["data"]
    mark = "WELFARE " if topic.endswith("alerts.welfare.v1") else ""
    print(f"  [{event['time'].replace('T', ' ').rstrip('Z')} city] {mark}{data['state'].upper():7} "
          f"{data['detector']:20} {event['subject']}", flush=True)


def city_clock_start(days: float, now: float | None = None) -> float:
    """Epoch s of city-hour 0: the Monday midnight UTC at least ``days`` whole days before today's
    midnight.

    Starting at midnight gives every run the same shape of days and nights, so a 3-day
    city always holds the three 02:00-04:00 nights water.night_flow needs, whatever the
    hour the demo is started at; starting on a Monday gives it the same shape of week,
    so a run's figures do not depend on the weekday it is started on (detectors that learn
    each weekday type, like traffic.anomaly_score, see weekdays before their incidents).
    """
    now = time.time() if now is None else now
    latest = (now // 86400) * 86400 - math.ceil(days) * 86400
    weekday = (int(latest // 86400) + 3) % 7          # 1970-01-01 was a Thursday; Monday = 0
    return latest - weekday * 86400


def city_simulations(domains, args, start: float) -> list:
    """One simulation per domain, on one city clock starting at ``start`` (epoch s)."""
    simulations = []
    for domain in domains:
        options = {"days": args.days, "seed": args.seed, "start": start}
        if domain.name == "water":
            options.update(households=args.households, households_per_gateway=args.households_per_gateway,
                           no_use=args.no_use, meter_silent=args.meter_silent, gateway_outage=args.gateway_outage,
                           malformed=args.malformed)
        simulations.append(domain.simulate(**options))
    return simulations


def configured_detectors(settings) -> dict:
    """name -> detector with the configured thresholds (for definitional delays), for the detectors the
    worker runs: the active ones and the dormant ones the audit log activates (as the worker reads it)."""
    from streams.audit import activations
    from streams.detectors import REGISTRY
    from streams.detectors.thresholds import load_thresholds

    thresholds = load_thresholds(settings.thresholds_file, REGISTRY)
    activated, _problems = activations(settings.audit_log)   # a log that does not verify activates nothing
    return {name: cls(thresholds[name]) for name, cls in REGISTRY.items()
            if cls.declaration.status == "active" or name in activated}


class DemoStopped(BaseException):
    """SIGTERM or SIGINT reached the demo: stop everything, keep what arrived (a BaseException, so no
    library's ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_demo(signum, _frame):
    # once: the clean-up is bounded (stop_process), and a second signal must not cut it short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise DemoStopped(signum)


def run_demo(args) -> int:
    """Run the demo city; returns 0, 1 (a welfare incident missed, or a failure) or 128 + the signal
    number when stopped by SIGTERM/SIGINT (then alerts.jsonl and a summary marked partial are written)."""
    from streams.detectors import REGISTRY
    from streams.domains import select_domains

    started = time.monotonic()
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"glasscity demo: cannot create the output folder {out}: {error.strerror}", file=sys.stderr)
        return 2
    key = secrets.token_hex(16)   # a fresh secret per demo run; never printed
    processes: list[subprocess.Popen] = []
    broker = EmbeddedBroker(port=free_port(), log_path=out / "broker.log")
    reader = None
    simulations, samples, stopped = None, {}, None
    city_clock_started = None
    previous_handlers = {signum: signal.signal(signum, _stop_demo) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        broker.start()
        # Thresholds, domains and batching follow GLASSCITY_* like everywhere; the demo fixes its own plumbing.
        # The embedded broker speaks PLAINTEXT: any GLASSCITY_SASL_* / SSL variables are for another broker.
        plaintext = {name: SETTING_DEFAULTS[name] for name in SECURITY_SETTINGS}
        settings = settings_from(args, bootstrap=broker.bootstrap, pseudonym_key=key, topic_prefix="glasscity",
                                 metrics_host="127.0.0.1", metrics_port=free_port(), rebalance_timeout_s=4.0,
                                 page=True, page_host="127.0.0.1", page_port=free_port(),
                                 log_level="warning", app_id="glasscity-demo", replication_factor=1, **plaintext)
        domains = select_domains(settings.domains)
        detectors = configured_detectors(settings)
        city_start = city_clock_start(args.days)
        simulations = city_simulations(domains, args, city_start)
        print(f"glasscity demo: {', '.join(d.name for d in domains)}; {args.days:g} city-days, "
              f"{args.hour_seconds:g} s per city-hour; logs in {out}/", flush=True)
        print(f"  broker: Tansu on {broker.bootstrap} (pid {broker.process.pid})", flush=True)
        create_topics(settings)
        worker = start_worker(settings, out / "worker.log")
        processes.append(worker)
        truth = {s.domain: s.ground_truth() for s in simulations}
        (out / "ground-truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
        wait_for_worker_metrics(worker, settings.metrics_port, timeout_s=60)
        print(f"  worker: pid {worker.pid}, metrics on http://127.0.0.1:{settings.metrics_port}/metrics, "
              f"control-room page on http://127.0.0.1:{settings.page_port}/", flush=True)
        reader = AlertReader(settings, on_alert=None if args.quiet_alerts else _print_alert)
        reader.start()
        print("  simulating; alerts as they arrive:", flush=True)
        city_clock_started = time.monotonic()
        produce(simulations, settings, hour_seconds=args.hour_seconds)
        remaining = max(10.0, args.timeout - (time.monotonic() - started))
        valid = sum(s.valid_readings for s in simulations)
        malformed = sum(len(s.malformed) for s in simulations)
        samples = wait_until_consumed(worker, settings.metrics_port, valid, malformed, timeout_s=remaining)
        time.sleep(2.0)   # let the last alerts travel from the worker's producer to the reader
        reader.stop()
        if reader.error:
            raise RuntimeError(f"reading alerts failed: {reader.error}")
    except DemoStopped as stop:
        stopped = stop
        print(f"\nglasscity demo: {stop} received; stopping the worker and the broker", file=sys.stderr, flush=True)
        if processes:
            try:
                samples = read_metrics(settings.metrics_port)
            except OSError:
                samples = {}
    except BrokerNotInstalledError as error:   # nothing ran, so no log to point at
        print(f"glasscity demo: {error}", file=sys.stderr)
        return 1
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"glasscity demo: {error} (see {out}/worker.log and {out}/broker.log)", file=sys.stderr)
        return 1
    finally:
        if reader is not None and reader.is_alive():
            reader.stop()
        for process in processes:   # the worker before the broker: a worker without its broker hangs
            stop_process(process, grace_s=10.0)
        broker.stop()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)

    alerts = list(reader.alerts) if reader is not None else []
    (out / "alerts.jsonl").write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    if simulations is None:     # stopped before the city was built: nothing to summarise
        (out / "summary.txt").write_text(f"PARTIAL: stopped by {stopped} before the simulation started; "
                                         f"0 alert events.\n", encoding="utf-8")
        return 128 + stopped.signum
    seen_at = None
    if args.hour_seconds > 0 and city_clock_started is not None:   # wall clock -> city clock, as paced
        seen_at = {alert_id: city_start + (at - city_clock_started) / args.hour_seconds * 3600
                   for alert_id, at in reader.received_at.items()}
    runs = [(domain, simulation.incidents) for domain, simulation in zip(domains, simulations)]
    valid = sum(s.valid_readings for s in simulations)
    malformed = sum(len(s.malformed) for s in simulations)
    head = ""
    if stopped is not None:
        reached = (city_start + (time.monotonic() - city_clock_started) / args.hour_seconds * 3600
                   if city_clock_started is not None and args.hour_seconds > 0 else None)
        if reached is not None:   # paced: only incidents that had begun by the stop can have been alerted
            runs = [(domain, [i for i in incidents if i.start <= reached]) for domain, incidents in runs]
        counted = ("only incidents that had begun by then are counted" if reached is not None else
                   "every injected incident is counted (unpaced: how far the city got is unknown)")
        head = (f"PARTIAL SUMMARY: stopped by {stopped} after {time.monotonic() - started:.0f} s, before the "
                f"simulation ended; {counted}, and the worker may not have consumed everything sent.\n\n")
    summaries = summarise(alerts, runs, detectors, REGISTRY, Pseudonymizer(key.encode()), seen_at)
    readings = metric_sum(samples, "glasscity_readings_consumed_total")
    invalid = metric_sum(samples, "glasscity_invalid_total")
    text = (head + format_table(summaries) + "\n\n" +
            f"readings counted by the worker: {readings:.0f} of {valid} {'planned' if stopped else 'sent'}; "
            f"dead letters: {invalid:.0f} of {malformed} malformed items; "
            f"alert events: {len(alerts)}; wall time {time.monotonic() - started:.0f} s\n"
            "Delay from the moment an incident became detectable by definition (its start + the detector's "
            "definitional delay, e.g. 24 h for no-use): to the alert's event time, and to when the alert reached a "
            "reader, in city time (hourly meters: the reading that proves a condition comes up to an hour later).\n")
    (out / "summary.txt").write_text(text, encoding="utf-8")
    print()
    print(text, end="")
    if stopped is not None:
        print(f"glasscity demo: stopped by {stopped}; partial summary in {out}/summary.txt, "
              f"{len(alerts)} alert events in {out}/alerts.jsonl", file=sys.stderr)
        return 128 + stopped.signum
    missed = sum(s.missed for s in summaries if REGISTRY[s.detector].declaration.alert_topic == "alerts.welfare.v1")
    if missed:
        print(f"FAILED: {missed} injected welfare incident(s) missed", file=sys.stderr)
        return 1
    return 0
