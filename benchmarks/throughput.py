"""Throughput of the one pipeline, in-process and through the real broker (used by benchmarks/bench.py).

- :func:`in_process`: ``DomainPipeline.process`` on pre-built messages, no broker, one core:
  decode -> validate -> pseudonymise -> kernels -> alerts, in batches of ``settings.batch_size``
  messages as the worker takes them; readings per second of that work alone.
- :class:`BrokerRun`: the embedded Tansu broker with the project's topics under one prefix, a
  workload produced through :func:`streams.simulate.produce.produce` (a librdkafka producer behind
  its delivery check: see :class:`LibrdkafkaProducer`), and ``glasscity worker`` processes
  consuming it (:func:`streams.demo.start_worker`, durable state on as always); their rate is read
  from their own /metrics while they run (:func:`sustained_rate`), start-up and group join excluded.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from streams.broker import EmbeddedBroker, free_port, stop_process
from streams.config import settings_from
from streams.demo import metric_sum, read_metrics, start_worker
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from streams.simulate import WaterScenario, simulate_water
from streams.simulate.produce import produce
from streams.topics import create_topics

KEY = "benchmark-pseudonym-key-0000"
PARTITIONS = 4
#: Worker batch size (messages) on envelopes of 500: 20,000 readings per batch. The default
#: (``batch_size`` 2,000 messages, sized for single readings) would make one batch of a million
#: readings out of a backlog, and the worker's counters would move once a minute.
ENVELOPES_PER_BATCH = 40


def water_city(households: int, days: float, per_message: int) -> object:
    """The simulated water city: envelopes of ``per_message`` readings (one gateway's hour), or one
    reading per message when ``per_message`` is 1. Default incidents, no malformed items (so every
    message is a valid reading and counts are exact)."""
    if per_message == 1:
        return simulate_water(WaterScenario(households=households, days=days, single_reading_share=1.0, malformed=0))
    return simulate_water(WaterScenario(households=households, days=days, households_per_gateway=per_message,
                                        single_reading_share=0.0, malformed=0))


def raw_messages(simulation, topic: str = "readings") -> list[RawMessage]:
    """Every message of a simulation as the worker receives it: partition by key, offsets per partition."""
    messages, offsets = [], [0] * PARTITIONS
    for _when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS
            messages.append(RawMessage(value, topic, p, offsets[p], key))
            offsets[p] += 1
    return messages


def in_process(domain, simulation, settings) -> dict:
    """The domain's pipeline over a simulation's messages, timed after a warm-up on a throwaway pipeline."""
    messages = raw_messages(simulation)
    clock = simulation.end + 3600
    warm = DomainPipeline(domain, settings, Pseudonymizer(KEY.encode()), clock=lambda: clock)
    warm.process(messages[:1])   # kernels compiled / loaded from cache before timing
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(KEY.encode()), clock=lambda: clock)
    alerts = readings = dead = 0
    started = time.perf_counter()
    for i in range(0, len(messages), settings.batch_size):
        result = pipeline.process(messages[i:i + settings.batch_size])
        alerts += len(result.alerts)
        readings += result.readings
        dead += len(result.dead_letters)
    seconds = time.perf_counter() - started
    return {"messages": len(messages), "readings": readings, "dead_letters": dead, "alerts": alerts,
            "seconds": round(seconds, 3), "readings_per_s": round(readings / seconds),
            "messages_per_s": round(len(messages) / seconds), "batch_size_messages": settings.batch_size}


class LibrdkafkaProducer:
    """confluent-kafka's producer behind the kafka-python calls :class:`streams.delivery.DeliveryCheck` makes
    (``send`` -> a future with ``add_callback``/``add_errback``, ``flush(timeout)``, ``close``), so the
    workloads go through the project's own ``produce`` and its delivery check. Measured here, kafka-python's
    producer moves about 2 MB/s to Tansu and librdkafka's about 40 MB/s: with kafka-python, producing a
    minute of workload would take longer than the rest of the benchmark."""

    class _Future:
        """Callbacks run when the delivery report comes, or at once if it came first (a poll inside
        ``send`` may deliver it before the caller has added them)."""

        __slots__ = ("callbacks", "errbacks", "outcome")

        def __init__(self):
            self.callbacks, self.errbacks, self.outcome = [], [], None

        def resolve(self, error, message):
            self.outcome = (error, message)
            if error is None:
                for fn, args in self.callbacks:
                    fn(*args, message)
            else:
                for fn, args in self.errbacks:
                    fn(*args, RuntimeError(str(error)))

        def add_callback(self, fn, *args):
            self.callbacks.append((fn, args))
            if self.outcome is not None and self.outcome[0] is None:
                fn(*args, self.outcome[1])

        def add_errback(self, fn, *args):
            self.errbacks.append((fn, args))
            if self.outcome is not None and self.outcome[0] is not None:
                fn(*args, RuntimeError(str(self.outcome[0])))

    def __init__(self, bootstrap: str, **config):
        import confluent_kafka

        options = {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 4_000_000,
                   "message.max.bytes": 8_000_000, "queue.buffering.max.kbytes": 1_048_576,
                   "queue.buffering.max.messages": 1_000_000, "acks": "all"}
        options.update(config)
        self._producer = confluent_kafka.Producer(options)

    def send(self, topic, value=None, key=None, headers=None, timestamp_ms=None):
        future = self._Future()
        delivered = future.resolve
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered,
                                       **({"timestamp": timestamp_ms} if timestamp_ms else {}))
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)
        return future

    def flush(self, timeout=None):
        from kafka.errors import KafkaTimeoutError

        if self._producer.flush(-1 if timeout is None else timeout):
            raise KafkaTimeoutError("records still queued after the flush timeout")

    def close(self, timeout=None):
        self._producer.flush(30 if timeout is None else timeout)


@dataclass
class Window:
    """What a sustained-rate window saw on the workers' /metrics."""

    rate: float             # readings (or messages) per second over the window
    seconds: float          # the window's length
    counted: float          # readings counted in the window
    total: float            # readings counted when it ended
    startup_s: float        # from the workers' start to the first reading counted
    drained: bool           # the topic ran out before the window's full length
    samples: list = field(default_factory=list)


def sustained_rate(workers, ports, expected: float, window_s: float, timeout_s: float = 300.0,
                   metric: str = "glasscity_readings_consumed_total", started: float | None = None) -> Window:
    """Poll the workers' /metrics: from the first reading counted, count for ``window_s`` seconds
    (or until ``expected`` are counted: the topic drained)."""
    started = time.monotonic() if started is None else started
    deadline = started + timeout_s
    first = None
    samples = []
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker exited with code {worker.returncode}")
        total = 0.0
        for port in ports:
            try:
                total += metric_sum(read_metrics(port), metric)
            except OSError:
                pass
        now = time.monotonic()
        if total > 0:
            samples.append((round(now - started, 2), total))
            if first is None:
                first = (now, total)
            elif total >= expected or now - first[0] >= window_s:
                seconds = now - first[0]
                return Window((total - first[1]) / seconds, seconds, total - first[1], total, first[0] - started,
                              total >= expected and seconds < window_s * 0.99, samples)
        time.sleep(0.5)
    raise TimeoutError(f"the workers counted {samples[-1][1] if samples else 0:.0f} of {expected:.0f} within "
                       f"{timeout_s:.0f} s")


class BrokerRun:
    """An embedded broker with the project's topics; workloads produced, workers started, all stopped on exit.

    ``prefix`` names one set of topics (a run of workers needs its own: their state changelog lives there)."""

    def __init__(self, log_dir: Path | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="glasscity-bench-")
        self.log_dir = Path(log_dir or self._tmp.name)
        self.broker = EmbeddedBroker(port=0, log_path=self.log_dir / "broker.log")
        self.workers = []

    def __enter__(self) -> "BrokerRun":
        self.broker.start()
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.workers:         # workers before the broker: a worker without one may hang
            stop_process(worker, grace_s=10.0)
        self.broker.stop()
        self._tmp.cleanup()

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def settings(self, prefix: str, **overrides):
        options = dict(bootstrap=self.bootstrap, topic_prefix=prefix, app_id=f"{prefix}-app", pseudonym_key=KEY,
                       rebalance_timeout_s=4.0, metrics_host="127.0.0.1", metrics_port=free_port(),
                       log_level="warning", partitions=PARTITIONS)
        options.update(overrides)
        return settings_from(environ={}, **options)

    def topics(self, prefix: str, **overrides):
        settings = self.settings(prefix, **overrides)
        create_topics(settings)
        return settings

    def produce(self, simulation, settings) -> tuple[int, float]:
        """Produce a simulation through the project's ``produce`` (households enrolled first); (messages, s)."""
        started = time.perf_counter()
        producer = LibrdkafkaProducer(self.bootstrap)
        try:
            sent = produce(simulation, settings, producer=producer)
        finally:
            producer.close()
        return sent, time.perf_counter() - started

    def start_workers(self, settings, count: int = 1, domains: str = "water") -> tuple[list, list[int]]:
        """``count`` worker processes in one consumer group, each with its own /metrics port."""
        workers, ports = [], []
        for n in range(count):
            port = settings.metrics_port if n == 0 else free_port()
            worker_settings = settings_from(environ={}, **{**_fields(settings), "metrics_port": port})
            worker = start_worker(worker_settings, self.log_dir / f"{settings.topic_prefix}-worker{n}.log",
                                  extra_env={"GLASSCITY_DOMAINS": domains,
                                             "GLASSCITY_BATCH_SIZE": str(settings.batch_size)})
            self.workers.append(worker)
            workers.append(worker)
            ports.append(port)
        return workers, ports

    def stop_workers(self, workers) -> None:
        for worker in workers:
            stop_process(worker, grace_s=10.0)
            self.workers.remove(worker)


def _fields(settings) -> dict:
    import dataclasses

    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def broker_workers(run: BrokerRun, prefix: str, simulation, workers: int, window_s: float,
                   metric: str = "glasscity_readings_consumed_total", batch_size: int | None = None) -> dict:
    """Produce ``simulation`` under ``prefix``, then ``workers`` worker processes consume it; their
    sustained rate over ``window_s`` (from the first reading counted)."""
    settings = run.topics(prefix, **({"batch_size": batch_size} if batch_size else {}))
    sent, produce_s = run.produce(simulation, settings)
    expected = simulation.valid_readings if metric == "glasscity_readings_consumed_total" else sent
    started = time.monotonic()
    procs, ports = run.start_workers(settings, workers)
    try:
        window = sustained_rate(procs, ports, expected, window_s, started=started, metric=metric)
    finally:
        run.stop_workers(procs)
    return {"workers": workers, "messages": sent, "readings": simulation.valid_readings,
            "produce_s": round(produce_s, 1), "rate_per_s": round(window.rate), "window_s": round(window.seconds, 1),
            "counted_in_window": int(window.counted), "startup_s": round(window.startup_s, 1),
            "drained_before_window": window.drained, "topic_prefix": prefix,
            "batch_size_messages": settings.batch_size}
