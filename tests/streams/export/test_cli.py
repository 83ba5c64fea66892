"""glasscity export: a file of simulated messages and alert events to JSON lines, a JSON array or a
stand-in NGSI-LD broker; user mistakes are one-line errors with exit 2."""

from __future__ import annotations

import os

import orjson
import pytest

from streams.cli import main
from tests.conftest import TEST_KEY
from tests.streams.export import sdm
from tests.streams.export.standin import StandIn, running
from tests.streams.export.test_entities import pipeline_alerts, simulated, with_location


@pytest.fixture
def export_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("GLASSCITY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GLASSCITY_PSEUDONYM_KEY", TEST_KEY)


@pytest.fixture
def city_file(tmp_path):
    """Messages of every domain (with locations) and the general alerts, one per line."""
    lines = [with_location(m) for d in ("water", "traffic", "waste", "lighting") for m in simulated(d)]
    lines += [orjson.dumps(e) for e in pipeline_alerts("waste")]
    path = tmp_path / "city.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_file_becomes_valid_key_values_entities(export_env, city_file, tmp_path, capsys):
    out = tmp_path / "entities.jsonl"
    assert main(["export", "--input", str(city_file), "--representation", "key-values", "--output", str(out)]) == 0
    entities = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    types = {e["type"] for e in entities}
    assert types == {"WaterConsumptionObserved", "TrafficFlowObserved", "WasteContainer", "Streetlight", "Alert"}
    assert all(sdm.errors(e) == [] for e in entities)
    summary = capsys.readouterr().out
    assert f"{len(entities)} entities from" in summary and "StreetlightControlCabinet" in summary


def test_normalized_json_array_to_stdout(export_env, city_file, capsys):
    assert main(["export", "--input", str(city_file), "--json-array"]) == 0
    captured = capsys.readouterr()
    entities = orjson.loads(captured.out)
    assert isinstance(entities, list) and entities
    assert all(e["type"] in ("Property", "Relationship", "GeoProperty") for entity in entities
               for name, e in entity.items() if name not in ("id", "type", "@context"))
    assert "entities from" in captured.err          # the summary stays off stdout


def test_post_upserts_every_entity_and_reports_refusals(export_env, city_file, capsys, monkeypatch):
    monkeypatch.setenv("GLASSCITY_NGSI_TOKEN", "never-shown-token")
    standin = StandIn()
    with running(standin) as url:
        first = main(["export", "--input", str(city_file), "--post", url, "--post-batch-size", "50"])
        sent = [e for r in standin.requests for e in r.entities]
        standin.refuse = {sent[0]["id"]}
        second = main(["export", "--input", str(city_file), "--post", url, "--post-batch-size", "50"])
    captured = capsys.readouterr()
    assert first == 0 and second == 1
    assert all(len(r.entities) <= 50 for r in standin.requests)
    assert {r.content_type for r in standin.requests} == {"application/ld+json"}
    assert {r.authorization for r in standin.requests} == {"Bearer never-shown-token"}
    assert f"batch 1: {sent[0]['id']}: Bad request data" in captured.err
    assert "never-shown-token" not in captured.out + captured.err
    assert f"posted {len(sent)} entities" in captured.out


@pytest.mark.parametrize("argv, message", [
    (["--format", "csv", "--input", "{file}"], "--format must be one of ngsi-ld, got 'csv'"),
    (["--input", "{missing}"], "the input file {missing} does not exist"),
    (["--input", "{file}", "--output", "{missing}/out/x.jsonl"], "cannot write {missing}/out/x.jsonl: the folder"),
    ([], "nothing to export"),
    (["--from-topics"], "add --until-end"),
    (["--input", "{file}", "--representation", "compact"], "--representation must be one of normalized"),
    (["--input", "{file}", "--post", "broker:1026"], "--post must be an http:// or https:// URL"),
    (["--input", "{file}", "--post", "http://x", "--post-batch-size", "0"], "--post-batch-size must be >= 1"),
])
def test_user_mistakes_are_one_line_errors(export_env, city_file, tmp_path, capsys, argv, message):
    fill = {"file": str(city_file), "missing": str(tmp_path / "nope")}
    assert main(["export", *(a.format(**fill) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert message.format(**fill) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_water_without_the_pseudonym_key_is_refused(export_env, city_file, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("GLASSCITY_PSEUDONYM_KEY")
    assert main(["export", "--input", str(city_file), "--output", str(tmp_path / "x.jsonl")]) == 2
    assert "give the worker's pseudonym key" in capsys.readouterr().err


def test_unwritable_output_is_refused(export_env, city_file, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):      # root writes anywhere: a file in place of the folder instead
        locked = tmp_path / "a-file"
        locked.write_text("")
        target = locked / "out.jsonl"
        expected = "the folder"
    else:
        target = locked / "out.jsonl"
        expected = "permission denied"
    assert main(["export", "--input", str(city_file), "--output", str(target)]) == 2
    assert expected in capsys.readouterr().err


def test_export_help_names_every_variable_and_hides_the_token(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for variable in ("GLASSCITY_EXPORT_INPUT", "GLASSCITY_EXPORT_POST", "GLASSCITY_NGSI_TOKEN",
                     "GLASSCITY_EXPORT_POST_BATCH_SIZE", "GLASSCITY_PSEUDONYM_KEY"):
        assert variable in text
    assert "Default: not shown (secret)" in text
