"""The one parser of user-given instants."""

import pytest

from streams.timeparse import InstantError, parse_instant


@pytest.mark.parametrize("text, epoch", [("1790000000", 1_790_000_000.0), (" 1790000000.5 ", 1_790_000_000.5),
                                          ("2026-01-31T08:00:00+01:00", 1_769_842_800.0),
                                          ("2026-01-31T07:00:00Z", 1_769_842_800.0)])
def test_epoch_seconds_and_iso_with_an_offset(text, epoch):
    assert parse_instant(text) == epoch


def test_text_without_an_offset_is_refused_unless_utc_is_meant():
    with pytest.raises(InstantError, match="has no UTC offset"):
        parse_instant("2026-01-31T07:00:00")
    assert parse_instant("2026-01-31T07:00:00", naive_is_utc=True) == 1_769_842_800.0
    with pytest.raises(InstantError, match="neither an ISO 8601 date-time"):
        parse_instant("yesterday")
