"""Shared fixtures. Broker fixtures live in tests/integration/conftest.py."""

import json
from pathlib import Path

import pytest

from streams.config import settings_from

TESTS_DIR = Path(__file__).resolve().parent
SDM_DIR = TESTS_DIR / "data" / "sdm"
TEST_KEY = "test-pseudonym-key-0123456789"
#: The Smart Data Models' shared definitions (``Location-Commons``, ``GSMA-Commons``...), by the URL the models use.
SDM_COMMON_URL = "https://smart-data-models.github.io/data-models/common-schema.json"


def sdm_properties(model: str) -> dict:
    """A Smart Data Model's properties (name -> schema), those of the shared definitions it refers to
    (``common-schema.json#/definitions/...``) included."""
    common = json.loads((SDM_DIR / "common-schema.json").read_text())["definitions"]
    sdm = json.loads((SDM_DIR / model / "schema.json").read_text())
    properties = {}
    for part in sdm.get("allOf", [sdm]):
        ref = part.get("$ref", "")
        if ref.startswith(SDM_COMMON_URL + "#/definitions/"):
            part = common[ref.rsplit("/", 1)[1]]
        properties.update(part.get("properties", {}))
    return properties


@pytest.fixture
def settings():
    """Default settings, untouched by the caller's GLASSCITY_* environment."""
    return settings_from(environ={}, pseudonym_key=TEST_KEY)
