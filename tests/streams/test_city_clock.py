"""The demo's city clock: whatever the hour and day it starts at, a Monday midnight and every incident kind of an
active detector fits (a dormant one's, water.routine_change's, needs weeks and is not planted by default)."""

import pytest

from streams.demo import city_clock_start
from streams.detectors import REGISTRY
from streams.domains import DOMAINS

DAY = 86400.0


@pytest.mark.parametrize("hour", range(0, 24, 1))
def test_a_three_day_city_holds_every_incident_kind_at_any_hour(hour):
    now = 1_790_035_200.0 + hour * 3600 + 1234   # some day, at each hour of it
    start = city_clock_start(3.0, now)
    assert start % DAY == 0 and now - 10 * DAY < start <= now - 3 * DAY
    assert (int(start // DAY) + 3) % 7 == 0   # a Monday: the same week shape whatever the day it runs
    water = DOMAINS["water"].simulate(days=3.0, seed=42, start=start)
    assert {i.kind for i in water.incidents} == {kind for kind, name in DOMAINS["water"].incident_detectors.items()
                                                 if REGISTRY[name].declaration.status == "active"}
