"""`glasscity dlq replay` on the real broker: exactly the selected dead letters go back to
the readings topic, with their keys and bytes; truncated ones are skipped; refusals fail."""

import subprocess
import sys
import time
from datetime import datetime, timezone

import orjson
from kafka import KafkaProducer

from streams.broker import EmbeddedBroker
from streams.cli import main
from streams.config import settings_from
from streams.delivery import close_producer, make_producer
from streams.dlq import replay_dead_letters
from streams.ingest import DeadLetter, RawMessage
from streams.topics import create_topics
from tests.integration.faults import read_topic

NOW_MS = int(time.time() * 1000)
HOUR_MS = 3_600_000


def reading(meter: str) -> bytes:
    return orjson.dumps({"id": meter, "type": "WaterConsumptionObserved", "dateObserved": "2026-11-27T08:00:00Z",
                         "waterConsumption": 1.5})


#: (name, key, value, reason, timestamp ms); the values are what the worker refused, as received
LETTERS = [
    ("old-schema", b"gw-1", reading("m-old-schema"), "schema", NOW_MS - 3 * HOUR_MS),
    ("old-json", b"gw-2", b"{not json", "invalid_json", NOW_MS - 3 * HOUR_MS),
    ("new-schema", b"gw-3", reading("m-new-schema"), "schema", NOW_MS - 10 * 60_000),
    ("new-keyless", None, reading("m-keyless"), "schema", NOW_MS - 5 * 60_000),
    ("new-range", b"gw-4", reading("m-range"), "timestamp_out_of_range", NOW_MS - 5 * 60_000),
    ("huge", b"gw-5", b"[" + b"1," * (3 * 1024 * 1024) + b"1]", "schema", NOW_MS - 5 * 60_000),
]
BY_NAME = {name: (key, value) for name, key, value, _reason, _ts in LETTERS}


def write_dead_letters(settings, domain="water"):
    """The DLQ as the worker writes it: DeadLetter.kafka_record() (bounded, full provenance)."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    futures = []
    for offset, (name, key, value, reason, ts) in enumerate(LETTERS):
        source = RawMessage(value, settings.topic(f"{domain}.readings.v1"), 0, offset, key)
        record_key, record_value, headers = DeadLetter(value, reason, f"refused: {name}", source).kafka_record()
        futures.append(producer.send(settings.topic(f"{domain}.dlq.v1"), key=record_key, value=record_value,
                                     headers=headers, timestamp_ms=ts))
    producer.flush()
    assert all(f.succeeded() for f in futures)
    producer.close()


def arrived(settings) -> list[tuple[bytes | None, bytes]]:
    return sorted(((r.key, r.value) for r in read_topic(settings, "water.readings.v1")), key=repr)


def expected(*names) -> list[tuple[bytes | None, bytes]]:
    return sorted((BY_NAME[n] for n in names), key=repr)


def test_reason_filter_replays_exactly_those_records_with_key_bytes_and_origin(broker_settings):
    write_dead_letters(broker_settings)
    report = replay_dead_letters(broker_settings, "water", reason="schema")
    # four schema letters; the huge one was truncated when it was dead-lettered: skipped, not replayed
    assert (report.read, report.selected, report.reinjected, report.skipped, report.failed) == (6, 4, 3, 1, 0)
    records = read_topic(broker_settings, "water.readings.v1")
    assert sorted(((r.key, r.value) for r in records), key=repr) == expected("old-schema", "new-schema", "new-keyless")
    dlq = broker_settings.topic("water.dlq.v1")
    for record in records:
        origin = dict(record.headers)["replayed_from"].decode()
        assert origin.startswith(f"{dlq}:")


def test_since_filter_through_the_cli_entry_point(broker_settings, capsys):
    write_dead_letters(broker_settings)
    since = datetime.fromtimestamp((NOW_MS - HOUR_MS) / 1000, timezone.utc).isoformat()
    code = main(["dlq", "replay", "--domain", "water", "--since", since, "--bootstrap", broker_settings.bootstrap,
                 "--topic-prefix", broker_settings.topic_prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    assert arrived(broker_settings) == expected("new-schema", "new-keyless", "new-range")
    assert "read 6" in out and "selected 4" in out and "re-injected 3" in out and "skipped 1" in out
    assert "failed 0" in out


def test_reason_and_since_together_with_epoch_seconds_as_a_subprocess(broker_settings):
    write_dead_letters(broker_settings)
    result = subprocess.run(
        [sys.executable, "-m", "streams", "dlq", "replay", "--domain", "water", "--reason", "schema",
         "--since", str((NOW_MS - HOUR_MS) / 1000)],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "GLASSCITY_BOOTSTRAP": broker_settings.bootstrap,
             "GLASSCITY_TOPIC_PREFIX": broker_settings.topic_prefix})
    assert result.returncode == 0, result.stderr
    assert arrived(broker_settings) == expected("new-schema", "new-keyless")


def test_dry_run_counts_and_produces_nothing(broker_settings):
    write_dead_letters(broker_settings)
    report = replay_dead_letters(broker_settings, "water", dry_run=True)
    assert (report.read, report.selected, report.reinjected, report.skipped) == (6, 6, 0, 1)
    assert "would re-inject 5" in report.summary()
    assert arrived(broker_settings) == []


def test_records_written_after_the_replay_began_are_left_alone(broker_settings):
    write_dead_letters(broker_settings)
    producer = KafkaProducer(bootstrap_servers=broker_settings.bootstrap, acks="all")
    later = DeadLetter(reading("m-later"), "schema", "refused again",
                       RawMessage(b"", broker_settings.topic("water.readings.v1"), 0, 99, b"gw-9"))
    key, value, headers = later.kafka_record()
    producer.send(broker_settings.topic("water.dlq.v1"), key=key, value=value, headers=headers,
                  timestamp_ms=int(time.time() * 1000) + HOUR_MS).get(timeout=10)
    producer.close()
    report = replay_dead_letters(broker_settings, "water", reason="schema")
    assert report.reinjected == 3
    assert (b"gw-9", reading("m-later")) not in arrived(broker_settings)


def test_refused_reinjections_are_counted_as_failed(broker_settings, tmp_path):
    write_dead_letters(broker_settings)
    # The re-injections go through a producer whose broker is gone once it has the target
    # topic's metadata: each send is enqueued, then expires unconfirmed.
    gone = EmbeddedBroker(port=0, log_path=tmp_path / "broker.log").start()
    producer = None
    try:
        create_topics(settings_from(environ={}, bootstrap=gone.bootstrap, topic_prefix=broker_settings.topic_prefix,
                                    partitions=broker_settings.partitions, domains="water"))
        producer = make_producer(gone.bootstrap, "test-gone", delivery_timeout_ms=2000, request_timeout_ms=1000,
                                 max_block_ms=2000, reconnect_backoff_max_ms=200)
        producer.send(broker_settings.topic("water.readings.v1"), b"warm-up").get(timeout=10)
        gone.stop()
        report = replay_dead_letters(broker_settings, "water", reason="schema", producer=producer)
    finally:
        if producer is not None:
            close_producer(producer, timeout_s=1)
        gone.stop()
    assert (report.selected, report.skipped, report.failed, report.reinjected) == (4, 1, 3, 0)
    assert "refused 3 of 3" in report.error and "KafkaTimeoutError" in report.error
    assert "failed 3" in report.summary()


def test_a_missing_topic_is_a_clear_error(broker_settings, capsys):
    code = main(["dlq", "replay", "--domain", "water", "--bootstrap", broker_settings.bootstrap,
                 "--topic-prefix", "no-such-prefix"])
    assert code == 1 and "topic no-such-prefix.water.dlq.v1 does not exist" in capsys.readouterr().err
