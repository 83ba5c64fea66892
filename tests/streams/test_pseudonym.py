"""Pseudonyms: keyed, stable, 128 bits, never the raw id."""

import pytest

from streams.pseudonym import Pseudonymizer


def test_stable_keyed_and_128_bits():
    a = Pseudonymizer(b"k" * 16)
    b = Pseudonymizer(b"j" * 16)
    raw = "urn:ngsi-ld:WaterMeter:GC-000001"
    assert a.meter(raw) == a.meter(raw) == a.many("wm", [raw])[0]
    assert a.meter(raw) != b.meter(raw) and a.meter(raw) != a.meter(raw + "x")
    assert a.meter(raw).startswith("wm-") and len(a.meter(raw)) == 3 + 32
    assert "GC-000001" not in a.meter(raw)


def test_refuses_short_keys_and_hides_the_key():
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymizer(b"short")
    assert "k" * 16 not in repr(Pseudonymizer(b"k" * 16))
