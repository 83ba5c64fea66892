"""Consent commands refuse bad arguments before anything is recorded (no broker needed)."""

import pytest

from streams.cli import main
from tests.conftest import TEST_KEY


@pytest.mark.parametrize("start", ["nan", "inf", "1e400", "1800000000000", "-5", "2026-12-24T00:00:00"])
def test_absence_with_an_impossible_time_is_refused_and_nothing_recorded(start, tmp_path, monkeypatch, capsys):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("GLASSCITY_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("GLASSCITY_AUDIT_LOG", str(log))
    code = main(["absence", "declare", "--meter", "m-1", "--from", start, "--until", "1800086400",
                 "--by", "carer", "--reason", "trip"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("glasscity absence declare: ") and "Traceback" not in err
    assert not log.exists()


def test_an_absence_that_ends_before_it_starts_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSCITY_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("GLASSCITY_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    assert main(["absence", "declare", "--meter", "m-1", "--from", "1800086400", "--until", "1800000000",
                 "--by", "carer", "--reason", "trip"]) == 2
    assert "--until must be after --from" in capsys.readouterr().err


def test_consent_commands_need_the_key_and_never_show_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSCITY_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("GLASSCITY_PSEUDONYM_KEY", "short-secret")
    assert main(["enrol", "--meter", "m-1", "--by", "w", "--reason", "form"]) == 2
    err = capsys.readouterr().err
    assert "at least 16 bytes" in err and "short-secret" not in err
    assert not (tmp_path / "audit.jsonl").exists()
