"""`glasscity dlq replay` and `glasscity simulate` without a broker: help, argument errors,
and the exit codes a failed delivery gives. The broker cases are in tests/integration/."""

import subprocess
import sys

import pytest

import streams.dlq
import streams.simulate.produce
from streams.cli import build_parser, main
from streams.delivery import ProduceError
from streams.dlq import DlqArgumentError, ReplayReport, parse_since

NO_BROKER = "127.0.0.1:1"   # nothing listens there: these tests must fail before connecting


def test_replay_help_explains_it_and_names_every_variable():
    result = subprocess.run([sys.executable, "-m", "streams", "dlq", "replay", "--help"], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "truncated" in flat and "readings.v1" in flat and "exits 1 if any re-injection failed" in flat
    replay = build_parser()._subparsers._group_actions[0].choices["dlq"]._subparsers._group_actions[0].choices["replay"]
    options = [a for a in replay._actions if a.option_strings and a.dest != "help"]
    assert {a.option_strings[0] for a in options} >= {"--domain", "--reason", "--since", "--dry-run", "--bootstrap",
                                                      "--topic-prefix"}
    for action in options:
        chunk = flat.split(action.option_strings[0] + " ", 2)[-1][:600]
        assert "Env: GLASSCITY_" in chunk and "Default:" in chunk, action.option_strings[0]


def test_dry_run_comes_from_the_environment_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.setenv("GLASSCITY_DLQ_DRY_RUN", "1")
    assert build_parser().parse_args(["dlq", "replay", "--domain", "water"]).dry_run is True
    monkeypatch.setenv("GLASSCITY_DLQ_DRY_RUN", "maybe")
    assert main(["dlq", "replay", "--domain", "water"]) == 2


@pytest.mark.parametrize("text, epoch", [
    ("2026-01-31T08:00:00+01:00", 1769842800.0),
    ("2026-01-31T07:00:00Z", 1769842800.0),
    ("1769842800", 1769842800.0),
    ("1769842800.5", 1769842800.5),
])
def test_since_accepts_iso_8601_with_an_offset_or_epoch_seconds(text, epoch):
    assert parse_since(text) == epoch


@pytest.mark.parametrize("text, message", [("last tuesday", "neither an ISO 8601 date-time"),
                                           ("2026-01-31T08:00:00", "has no UTC offset")])
def test_since_refuses_what_is_not_a_moment(text, message):
    with pytest.raises(DlqArgumentError, match=message):
        parse_since(text)


@pytest.mark.parametrize("argv, message", [
    (["--domain", "sewage"], "unknown domain 'sewage'"),
    (["--domain", "water", "--reason", "bogus"], "unknown reason 'bogus'"),
    (["--domain", "water", "--since", "last tuesday"], "neither an ISO 8601 date-time"),
    (["--domain", "water", "--since", "2026-01-31T08:00:00"], "has no UTC offset"),
    ([], "--domain (or GLASSCITY_DLQ_DOMAIN) is required"),
])
def test_bad_arguments_are_one_clear_line_and_exit_2(capsys, argv, message):
    code = main(["dlq", "replay", *argv, "--bootstrap", NO_BROKER])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_cli_exits_1_when_a_reinjection_failed(capsys, monkeypatch):
    def refused(settings, domain, **options):
        return ReplayReport(domain, "src", "dst", read=2, selected=2, reinjected=1, failed=1,
                            error="the broker refused 1 of 2 messages")

    monkeypatch.setattr(streams.dlq, "replay_dead_letters", refused)
    code = main(["dlq", "replay", "--domain", "water", "--bootstrap", NO_BROKER])
    captured = capsys.readouterr()
    assert code == 1 and "re-injected 1" in captured.out and "failed 1" in captured.out
    assert "1 re-injection(s) failed: the broker refused 1 of 2 messages" in captured.err


def test_simulate_prints_one_line_and_exits_1_when_the_broker_refused(capsys, monkeypatch, tmp_path):
    def refusing_produce(simulations, settings, **options):
        raise ProduceError(refused=7, attempted=15, confirmed=8, first_error="[Error 59] UnknownProducerIdError")

    monkeypatch.setattr(streams.simulate.produce, "produce", refusing_produce)
    monkeypatch.setattr("streams.worker.unreachable_bootstrap", lambda *a, **k: None)   # it accepts connections
    code = main(["simulate", "--households", "60", "--households-per-gateway", "10", "--days", "1.5",
                 "--no-use", "1", "--meter-silent", "1", "--gateway-outage", "1", "--malformed", "5",
                 "--domains", "water", "--ground-truth", str(tmp_path / "truth.json"), "--bootstrap", NO_BROKER])
    captured = capsys.readouterr()
    assert code == 1 and "produced" not in captured.out
    assert captured.err.strip() == ("glasscity simulate: the broker refused 7 of 15 messages (8 confirmed); "
                                    "first error: [Error 59] UnknownProducerIdError")


def test_simulate_without_a_broker_is_one_line_not_a_traceback(capsys, monkeypatch, tmp_path):
    from kafka.errors import KafkaTimeoutError

    def no_broker(simulations, settings, **options):   # what kafka-python 3 raises when nothing answers
        raise KafkaTimeoutError(f"Unable to bootstrap from ['{NO_BROKER}']")

    monkeypatch.setattr(streams.simulate.produce, "produce", no_broker)
    monkeypatch.setattr("streams.worker.unreachable_bootstrap", lambda *a, **k: None)   # TCP up, Kafka does not answer
    code = main(["simulate", "--households", "60", "--households-per-gateway", "10", "--days", "1.5",
                 "--no-use", "1", "--meter-silent", "1", "--gateway-outage", "1", "--malformed", "5",
                 "--domains", "water", "--ground-truth", str(tmp_path / "truth.json"), "--bootstrap", NO_BROKER])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"glasscity simulate: cannot produce to {NO_BROKER}: ")
    assert "Unable to bootstrap" in err and len(err.strip().splitlines()) == 1
