"""--log-format json: one JSON object per line, extras kept, secrets redacted (streams/logs.py)."""

import io
import json
import logging

import pytest

from streams.config import settings_from
from streams.logs import format_handlers, secret_values, setup_logging

KEY = "pseudonym-key-Qx7-never-logged"


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("glasscity.test_json_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler, stream
    logger.removeHandler(handler)


def test_json_lines_have_time_level_logger_message_and_extras(captured):
    logger, handler, stream = captured
    format_handlers([handler], "json", [KEY])
    logger.info("consumed %d readings", 12, extra={"domain": "water", "partition": 3})
    logger.warning("second line")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["level"] == "INFO" and first["logger"] == "glasscity.test_json_logs"
    assert first["message"] == "consumed 12 readings"
    assert first["domain"] == "water" and first["partition"] == 3
    assert first["time"].endswith("Z") and "T" in first["time"] and len(first["time"]) == 24
    assert json.loads(lines[1])["level"] == "WARNING"


def test_exceptions_stay_on_one_line(captured):
    logger, handler, stream = captured
    format_handlers([handler], "json")
    try:
        raise KeyError("boom")
    except KeyError:
        logger.exception("failed")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "failed" and "KeyError: 'boom'" in record["exc_info"]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_secrets_never_appear_in_message_args_extras_or_tracebacks(captured, log_format):
    logger, handler, stream = captured
    format_handlers([handler], log_format, [KEY, 'pass"word\\x'])
    logger.warning("connecting with key %s", KEY, extra={"key": KEY})
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        logger.exception("oops")
    logger.info('the password is pass"word\\x')
    text = stream.getvalue()
    assert KEY not in text and 'pass"word' not in text and 'pass\\"word' not in text
    assert text.count("<secret>") >= (4 if log_format == "json" else 3)   # text shows no extras
    if log_format == "json":
        assert all(json.loads(line) for line in text.splitlines())


def test_secret_values_come_from_the_settings_and_key_files(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("file-held-pseudonym-key-0123\n")
    settings = settings_from(environ={}, pseudonym_key_file=str(key_file), welfare_token="welfare-token-xyz")
    assert set(secret_values(settings)) == {"file-held-pseudonym-key-0123", "welfare-token-xyz"}


def test_setup_logging_replaces_its_own_handler_and_refuses_unknown_formats():
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        first = setup_logging("warning", "json")
        second = setup_logging("warning", "text")
        assert first not in root.handlers and second in root.handlers
        with pytest.raises(ValueError, match="log format must be one of text, json"):
            setup_logging("warning", "yaml")
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
