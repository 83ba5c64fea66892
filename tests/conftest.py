"""Shared fixtures. Broker fixtures live in tests/integration/conftest.py."""

from pathlib import Path

import pytest

from streams.config import settings_from

TESTS_DIR = Path(__file__).resolve().parent
SDM_DIR = TESTS_DIR / "data" / "sdm"
TEST_KEY = "test-pseudonym-key-0123456789"


@pytest.fixture
def settings():
    """Default settings, untouched by the caller's GLASSCITY_* environment."""
    return settings_from(environ={}, pseudonym_key=TEST_KEY)
