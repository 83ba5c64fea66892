"""feed.stalled: one episode per quiet feed, on the wall clock; alerts valid against the schema."""

from jsonschema import Draft7Validator

import schemas
from streams.alerts import alert_event
from streams.detectors.feed.stalled import FeedStalledThresholds, FeedWatch


def test_raised_once_after_the_quiet_time_and_cleared_by_the_next_message():
    watch = FeedWatch("water", "glasscity.water.readings.v1", FeedStalledThresholds(stalled_after_s=60.0))
    assert watch.check(1000.0) == []                      # nothing watched yet: no opinion
    watch.watch_from(1000.0)
    assert watch.check(1059.0) == []
    raised = watch.check(1060.0)
    assert [(t.state, t.episode_start, t.time) for t in raised] == [("raised", 1000.0, 1060.0)]
    assert watch.check(1500.0) == [] and watch.check(5000.0) == []   # once, however long it lasts
    cleared = watch.arrived(5001.0)
    assert [(t.state, t.episode_start, t.time) for t in cleared] == [("cleared", 1000.0, 5001.0)]
    assert watch.arrived(5002.0) == [] and watch.check(5061.0) == []
    assert watch.check(5062.0)[0].episode_start == 5002.0   # a new episode starts at the last message


def test_a_busy_feed_never_stalls_and_watch_from_does_not_reset_a_running_clock():
    watch = FeedWatch("traffic", "t", FeedStalledThresholds(stalled_after_s=10.0))
    watch.arrived(0.0)
    watch.watch_from(9.0)
    for now in range(1, 200):
        assert watch.arrived(float(now)) == [] and watch.check(now + 9.5) == []


def test_its_alerts_match_the_alert_schema():
    watch = FeedWatch("lighting", "glasscity.lighting.readings.v1", FeedStalledThresholds(stalled_after_s=1.0))
    watch.watch_from(1_790_000_000.0)
    events = [alert_event(t, watch.declaration) for t in watch.check(1_790_000_100.0) + watch.arrived(1_790_000_200.0)]
    validator = Draft7Validator(schemas.load("alert"))
    assert [e["data"]["state"] for e in events] == ["raised", "cleared"]
    for event in events:
        assert list(validator.iter_errors(event)) == []
        assert event["data"]["domain"] == "lighting" and event["data"]["detector"] == "feed.stalled"
    assert events[0]["id"] != events[1]["id"] and events[0]["data"]["episodeId"] == events[1]["data"]["episodeId"]
