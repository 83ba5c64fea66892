"""The demo's city clock: whatever the hour it starts at, every incident kind fits in the run."""

import pytest

from streams.demo import city_clock_start
from streams.domains import DOMAINS

DAY = 86400.0


@pytest.mark.parametrize("hour", range(0, 24, 1))
def test_a_three_day_city_holds_every_incident_kind_at_any_hour(hour):
    now = 1_790_035_200.0 + hour * 3600 + 1234   # some day, at each hour of it
    start = city_clock_start(3.0, now)
    assert start % DAY == 0 and start <= now - 3 * DAY
    water = DOMAINS["water"].simulate(days=3.0, seed=42, start=start)
    assert {i.kind for i in water.incidents} == set(DOMAINS["water"].incident_detectors)
