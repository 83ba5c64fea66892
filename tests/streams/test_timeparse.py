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


def test_since_takes_instants_and_ages():
    from streams.timeparse import parse_since

    assert parse_since("2026-01-31T08:00:00Z") == parse_instant("2026-01-31T08:00:00Z")
    assert parse_since("90", now_s=1000.0) == 90.0
    assert parse_since("30m", now_s=10_000.0) == 10_000.0 - 1800.0
    assert parse_since("1.5h", now_s=10_000.0) == 10_000.0 - 5400.0
    assert parse_since(" 2d ", now_s=200_000.0) == 200_000.0 - 172_800.0
    for bad, why in (("yesterday", "nor an age"), ("nan", "not a finite"), ("inf", "not a finite"), ("3w", "nor an age")):
        with pytest.raises(InstantError, match=why):
            parse_since(bad)
