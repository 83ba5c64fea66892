"""glasscity export --from-topics --until-end --alerts on the real broker: every valid reading of the
readings topics and every general alert become entities; welfare alerts stay out."""

from __future__ import annotations

import orjson

from streams.cli import main
from streams.export.sources import ExportError, topic_messages
from streams.domains import DOMAINS
from tests.streams.export import sdm
from tests.streams.export.test_entities import pipeline_alerts, simulated
from tests.support.records import produce_records


def _flags(settings) -> list[str]:
    return ["--bootstrap", settings.bootstrap, "--topic-prefix", settings.topic_prefix,
            "--pseudonym-key", settings.pseudonym_key]


def test_topics_to_the_end_become_entities(broker_settings, tmp_path, capsys):
    water, waste = simulated("water"), simulated("waste")
    events = pipeline_alerts("water")
    general = [e for e in events if e["data"]["detector"] != "water.no_use_24h"]
    welfare = [e for e in events if e["data"]["detector"] == "water.no_use_24h"]
    produce_records(broker_settings, [("water.readings.v1", m) for m in water] + [("waste.readings.v1", m) for m in waste]
             + [("alerts.v1", orjson.dumps(e)) for e in general]
             + [("alerts.welfare.v1", orjson.dumps(e)) for e in welfare])
    out = tmp_path / "entities.jsonl"
    code = main(["export", "--from-topics", "--until-end", "--alerts", "--representation", "key-values",
                 "--output", str(out), *_flags(broker_settings)])
    assert code == 0, capsys.readouterr().err
    entities = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    readings = sum(len(orjson.loads(m).get("readings", [1])) for m in water + waste)
    by_type = {t: [e for e in entities if e["type"] == t] for t in {e["type"] for e in entities}}
    assert len(by_type["WaterConsumptionObserved"]) + len(by_type["WasteContainer"]) == readings
    assert sorted(e["data"]["eventId"] for e in by_type["Alert"]) == sorted(e["id"] for e in general)
    assert all(sdm.errors(e) == [] for e in by_type["WaterConsumptionObserved"] + by_type["Alert"])


def test_a_missing_topic_is_named(broker_settings):
    settings = broker_settings.__class__(**{**broker_settings.__dict__, "topic_prefix": "nothing-here"})
    try:
        topic_messages(settings, [DOMAINS["traffic"]])
    except ExportError as error:
        assert "has no topic nothing-here.traffic.readings.v1" in str(error)
    else:
        raise AssertionError("a missing readings topic must be an ExportError")
