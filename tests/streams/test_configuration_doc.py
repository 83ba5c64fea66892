"""docs/configuration.md is generated from the settings object and kept in step with it."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from streams.config import SETTING_FIELDS, Settings, env_name, flag_name, reference_document

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_page_is_what_the_code_generates():
    assert DOC.read_text(encoding="utf-8") == reference_document(), \
        "docs/configuration.md is stale: regenerate with `glasscity config reference > docs/configuration.md`"


def test_the_command_prints_the_page_and_never_a_secret_value():
    env = dict(os.environ, GLASSCITY_PSEUDONYM_KEY="a-pseudonym-key-nobody-may-see",
               GLASSCITY_SASL_PASSWORD="a-password-nobody-may-see", GLASSCITY_WELFARE_TOKEN="a-token-nobody-sees")
    result = subprocess.run([sys.executable, "-m", "streams", "config", "reference"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == reference_document()
    assert "nobody-may-see" not in result.stdout and "a-token-nobody-sees" not in result.stdout


def test_every_setting_is_listed_with_its_flag_env_type_default_and_range():
    rows = {line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")[1:-1]]
            for line in reference_document().splitlines() if line.startswith("| `")}
    assert set(rows) == set(SETTING_FIELDS)
    for name, f in SETTING_FIELDS.items():
        setting, flag, env, _type, default, allowed, _unit, help_text = rows[name]
        assert flag == f"`{flag_name(f)}`" and env == f"`{env_name(f)}`"
        if f.metadata["secret"]:
            assert default == "secret (not shown)"
        else:
            assert default == f"`{f.default!r}`"
        check = f.metadata.get("check")
        assert allowed == (check.text if check is not None else "any")
        assert help_text.startswith(f.metadata["help"][:20].replace("|", "\\|"))
    assert rows["metrics_port"][5] == "0-65535 (0 = any free port)"
    assert rows["log_format"][5] == "one of text, json"
    assert rows["batch_within_s"][5] == "> 0" and rows["batch_within_s"][6] == "s"


def test_each_documented_range_is_the_one_enforced():
    """The range text and the check are one object: a value outside the documented range is refused."""
    import pytest

    from streams.config import SettingsError, settings_from

    for name, bad in [("partitions", 0), ("batch_within_s", float("nan")), ("metrics_port", 70000),
                      ("allowed_lateness_s", -1.0), ("log_format", "xml"), ("replication_factor", 0)]:
        with pytest.raises(SettingsError, match=f"{flag_name(SETTING_FIELDS[name])} / "):
            settings_from(environ={}, **{name: bad})
