"""The command line: every option explained, with its default and GLASSCITY_* variable; secrets never shown."""

import re
import subprocess
import sys

import pytest

from streams.cli import build_parser, main
from streams.config import SETTING_FIELDS, Settings, SettingsError, env_name, settings_from

SUBCOMMANDS = ["broker", "topics", "simulate", "worker", "replay", "thresholds", "demo", "acls"]


def help_text(*argv) -> str:
    result = subprocess.run([sys.executable, "-m", "streams", *argv, "--help"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "GLASSCITY_PSEUDONYM_KEY": "s3cret-value-xyz-123"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_top_level_help_lists_every_command_and_the_environment_rule():
    text = help_text()
    for command in SUBCOMMANDS:
        assert re.search(rf"^\s+{command}\s", text, re.M), command
    assert "GLASSCITY_" in text


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_option_names_its_default_and_variable(command):
    text = help_text(command)
    assert "s3cret-value-xyz-123" not in text
    options = [a for a in build_parser()._subparsers._group_actions[0].choices[command]._actions
               if a.option_strings and a.dest != "help"]
    assert options, command
    flat = " ".join(text.split())
    for action in options:
        flag = action.option_strings[0]
        chunk = flat.split(flag + " ", 2)[-1][:600]   # the help paragraph follows the flag's own line
        assert "Env: GLASSCITY_" in chunk and "Default:" in chunk, f"{command} {flag}"


def test_worker_help_covers_every_setting():
    text = " ".join(help_text("worker").split())
    for field in SETTING_FIELDS.values():
        assert env_name(field) in text
    assert "Default: not shown (secret)" in text


def test_environment_then_flag_precedence():
    parser = build_parser()
    args = parser.parse_args(["worker", "--batch-size", "7"])
    settings = settings_from(args, {"GLASSCITY_BATCH_SIZE": "99", "GLASSCITY_PARTITIONS": "8"})
    assert settings.batch_size == 7 and settings.partitions == 8 and settings.metrics_port == 9464


def test_bad_values_are_clear_errors_not_tracebacks(capsys):
    with pytest.raises(SettingsError, match="GLASSCITY_PARTITIONS='many' is not a valid int"):
        settings_from(None, {"GLASSCITY_PARTITIONS": "many"})
    with pytest.raises(SettingsError, match="must be > 0"):
        settings_from(None, {}, batch_size=0)
    assert main(["worker", "--partitions", "0"]) == 2
    assert "--partitions / GLASSCITY_PARTITIONS: must be > 0" in capsys.readouterr().err


def test_worker_refuses_a_short_key_without_echoing_it():
    result = subprocess.run([sys.executable, "-m", "streams", "worker"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "GLASSCITY_PSEUDONYM_KEY": "short-key"})
    assert result.returncode == 2
    assert "at least 16 bytes" in result.stderr and "short-key" not in result.stderr + result.stdout


def test_settings_repr_hides_the_secret():
    settings = settings_from(None, {}, pseudonym_key="a-very-secret-key-000")
    assert "a-very-secret-key-000" not in repr(settings) and "<secret>" in repr(settings)
    assert isinstance(settings, Settings)


def test_worker_help_names_the_shutdown_bounds_and_the_exit_codes():
    text = " ".join(help_text("worker").split())
    assert "--shutdown-timeout" in text and "Env: GLASSCITY_SHUTDOWN_TIMEOUT. Default: 10.0." in text
    assert "--broker-unreachable-exit" in text and "Env: GLASSCITY_BROKER_UNREACHABLE_EXIT. Default: 120.0." in text
    assert "/healthz" in text and "/readyz" in text
    for code in ("0 stopped cleanly", "3 no broker reachable", "4 shutdown cut short"):
        assert code in text


def test_shutdown_bounds_are_validated():
    with pytest.raises(SettingsError, match="--shutdown-timeout / GLASSCITY_SHUTDOWN_TIMEOUT: must be > 0"):
        settings_from(None, {"GLASSCITY_SHUTDOWN_TIMEOUT": "0"})
    with pytest.raises(SettingsError,
                       match="--broker-unreachable-exit / GLASSCITY_BROKER_UNREACHABLE_EXIT: must be >= 0"):
        settings_from(None, {"GLASSCITY_BROKER_UNREACHABLE_EXIT": "-1"})
    assert settings_from(None, {"GLASSCITY_BROKER_UNREACHABLE_EXIT": "0"}).broker_unreachable_exit_s == 0.0
