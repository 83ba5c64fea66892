"""Tests of the feed perturbations (streams.simulate.perturb) and the simulators' noise_scale."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone

import numpy as np
import orjson
import pytest

from streams.domains import DOMAINS
from streams.simulate import perturb

#: 2026-10-24T00:00Z: Europe/Madrid leaves summer time on 2026-10-25 at 01:00 UTC.
AROUND_DST = 1_792_800_000 - 1_792_800_000 % 86400
START = 1_790_000_000 - 1_790_000_000 % 86400
WATER = dict(households=200, households_per_gateway=25, districts=4, days=3.0, seed=5, start=START)
TRAFFIC = dict(segments=8, detectors_per_segment=3, days=2.0, incident=1, stuck=1, silent=1, anomaly=1, malformed=10,
               seed=5, start=START)
WASTE = dict(bins=80, districts=5, days=3.0, overflow=1, full_before_collection=1, fire=1, collection_late=1,
             sensor_fault=1, malformed=10, seed=5, start=START)
LIGHTING = dict(lamps=60, cabinets=5, days=2.0, lamp_failure=1, day_burner=1, power_out_of_range=1, cycling=1,
                malformed=10, seed=5, start=START)
SCENARIOS = {"water": WATER, "traffic": TRAFFIC, "waste": WASTE, "lighting": LIGHTING}


def simulate(domain: str, **changes):
    return DOMAINS[domain].simulate(**{**SCENARIOS[domain], **changes})


def readings(steps):
    """Every parseable reading as (step time, key, reading dict, envelope or None), in delivery order."""
    out = []
    for when, messages in steps:
        for key, value in messages:
            try:
                document = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(document, dict):
                continue
            if document.get("type") == "ReadingBatch":
                out += [(when, key, r, document) for r in document["readings"] if isinstance(r, dict)]
            else:
                out.append((when, key, document, None))
    return out


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def parseable(reading) -> bool:
    try:
        moment = datetime.fromisoformat(reading.get("dateObserved", ""))
    except (TypeError, ValueError):
        return False
    return moment.tzinfo is not None


def unparseable_messages(steps) -> list[bytes]:
    found = []
    for _when, messages in steps:
        for _key, value in messages:
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:
                found.append(value)
    return found


def pairs(original, perturbed):
    """Readings of the same step in the same order: (original, perturbed) pairs (time perturbations keep both)."""
    a, b = readings(original), readings(perturbed)
    assert len(a) == len(b)
    return [(x[2], y[2]) for x, y in zip(a, b)]


# --- jitter -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("domain, cadence", [("traffic", 300.0), ("lighting", 900.0), ("water", 3600.0)])
def test_jitter_is_bounded_by_its_share_of_the_cadence_and_keeps_each_sensors_order(domain, cadence):
    sim = simulate(domain)
    shifts = []
    for before, after in pairs(sim.steps(), perturb.jitter(sim.steps(), cadence, 0.2, seed=3)):
        if not parseable(before):
            assert after == before
            continue
        shifts.append(epoch(after["dateObserved"]) - epoch(before["dateObserved"]))
        assert {k: v for k, v in after.items() if k != "dateObserved"} == \
               {k: v for k, v in before.items() if k != "dateObserved"}
    shifts = np.array(shifts)
    assert np.abs(shifts).max() <= 0.2 * cadence
    assert shifts.min() < -0.15 * cadence and shifts.max() > 0.15 * cadence   # it does move them, both ways
    assert abs(np.median(shifts)) < 0.05 * cadence
    last: dict[str, float] = {}
    for _when, _key, reading, _env in readings(perturb.jitter(sim.steps(), cadence, 0.2, seed=3)):
        if parseable(reading):
            t = epoch(reading["dateObserved"])
            assert t > last.get(reading["id"], -np.inf), reading["id"]
            last[reading["id"]] = t


def test_jitter_refuses_a_share_that_could_reorder_a_sensor():
    with pytest.raises(ValueError):
        list(perturb.jitter(iter([]), 300.0, 0.5))


# --- missing readings ---------------------------------------------------------------------------------

def test_drop_loses_about_its_share_of_readings_never_sends_an_empty_envelope_and_keeps_malformed_bytes():
    sim = simulate("lighting")
    before = readings(sim.steps())
    after = readings(perturb.drop(sim.steps(), 0.05, seed=11))
    n, kept = len(before), len(after)
    lost = (n - kept) / n
    sd = (0.05 * 0.95 / n) ** 0.5
    assert abs(lost - 0.05) < 4 * sd, (lost, n)
    for _when, _key, _reading, envelope in after:
        assert envelope is None or envelope["readings"]
    assert unparseable_messages(perturb.drop(sim.steps(), 0.05, seed=11)) == unparseable_messages(sim.steps())
    kept_ids = Counter(orjson.dumps(r) for _w, _k, r, _e in after)
    all_ids = Counter(orjson.dumps(r) for _w, _k, r, _e in before)
    assert not kept_ids - all_ids        # nothing invented, nothing changed


def test_drop_depends_on_the_seed_only():
    sim = simulate("traffic")
    first = list(perturb.drop(sim.steps(), 0.05, seed=1))
    assert first == list(perturb.drop(sim.steps(), 0.05, seed=1))
    assert first != list(perturb.drop(sim.steps(), 0.05, seed=2))


# --- clock skew -------------------------------------------------------------------------------------

def test_clock_skew_is_one_constant_offset_per_sensor_within_its_bound():
    sim = simulate("traffic")
    offsets: dict[str, set] = defaultdict(set)
    for before, after in pairs(sim.steps(), perturb.clock_skew(sim.steps(), 120.0, seed=4)):
        if parseable(before):
            offsets[before["id"]].add(epoch(after["dateObserved"]) - epoch(before["dateObserved"]))
    assert all(len(v) == 1 for v in offsets.values()), "a sensor's clock offset changed during the run"
    values = np.array([next(iter(v)) for v in offsets.values()])
    assert np.abs(values).max() <= 120.0
    assert len(set(values.tolist())) > len(values) // 2      # sensors differ from each other
    assert values.min() < -60 and values.max() > 60
    sensor = next(iter(offsets))
    assert perturb.sensor_offset_s(sensor, 120.0, seed=4) == next(iter(offsets[sensor]))   # order-free


# --- local time across a daylight-saving change ----------------------------------------------------------

def test_offset_changes_finds_the_autumn_change_to_the_second():
    changes = perturb.offset_changes("Europe/Madrid", AROUND_DST, AROUND_DST + 3 * 86400)
    assert changes == [datetime(2026, 10, 25, 1, 0, tzinfo=timezone.utc).timestamp()]
    assert perturb.offset_changes("UTC", AROUND_DST, AROUND_DST + 3 * 86400) == []


def test_local_time_writes_the_same_instants_with_the_utc_offset_changing_at_the_dst_switch():
    sim = simulate("water", start=AROUND_DST)
    change = perturb.offset_changes("Europe/Madrid", sim.start, sim.end)[0]
    seen_offsets = set()
    for before, after in pairs(sim.steps(), perturb.local_time(sim.steps(), "Europe/Madrid")):
        if not parseable(before):
            assert after == before
            continue
        t = epoch(before["dateObserved"])
        assert epoch(after["dateObserved"]) == t
        offset = after["dateObserved"][-6:]
        assert offset == ("+02:00" if t < change else "+01:00"), after["dateObserved"]
        seen_offsets.add(offset)
    assert seen_offsets == {"+02:00", "+01:00"}
    envelopes = [e for _w, _k, _r, e in readings(perturb.local_time(sim.steps(), "Europe/Madrid")) if e]
    assert all(e["dateSent"][-6:] in ("+02:00", "+01:00") for e in envelopes)
    # the local clock repeats 02:00-03:00 on the night of the change
    hours = [r["dateObserved"][:13] for _w, _k, r, _e in readings(perturb.local_time(sim.steps(), "Europe/Madrid"))
             if parseable(r) and r["id"] == sim.meter_ids[0]]
    assert Counter(hours)["2026-10-25T02"] == 2


# --- batched delivery --------------------------------------------------------------------------------------

def test_batched_delivery_holds_a_share_of_keys_and_delivers_each_6h_at_once_with_original_event_times():
    sim = simulate("water")
    period = 6 * 3600.0
    original = list(sim.steps())
    delivered = list(perturb.batched_delivery(iter(original), period, 0.25, seed=9))
    sent_at = {}                                   # message -> step it was sent in (messages are unique)
    for when, messages in original:
        for key, value in messages:
            sent_at[(key, value)] = when
    assert Counter(m for _w, ms in delivered for m in ms) == Counter(m for _w, ms in original for m in ms)
    late_keys = {key for when, ms in delivered for key, value in ms if when != sent_at[(key, value)]}
    keys = {key for _w, ms in original for key, _v in ms}
    assert len(late_keys) == round(0.25 * len(keys))
    first = original[0][0]
    for when, messages in delivered:
        for key, value in messages:
            sent = sent_at[(key, value)]
            if key not in late_keys:
                assert when == sent
                continue
            period_end = first + (np.floor((sent - first) / period) + 1) * period
            assert when == period_end or (when > period_end - period / 6 and when == delivered[-1][0])
            # event times are the real ones: before the delivery, within the period they were sent in
            for _w, _k, r, _e in readings([(when, [(key, value)])]):
                if parseable(r) and epoch(r["dateObserved"]) > sim.start - 86400:   # not a malformed 1999 one
                    assert period_end - period - 3600 <= epoch(r["dateObserved"]) < when
    batches = [(when, [m for m in ms if m[0] in late_keys]) for when, ms in delivered]
    batches = [(when, ms) for when, ms in batches if ms]
    assert len(batches) == sim.n_hours * 3600 / period                 # one delivery per period
    for when, ms in batches:                                           # 6 hourly sends of each late key at once
        counts = Counter(key for key, _v in ms)
        assert all(n >= 6 for n in counts.values())
    assert batches[-1][0] == sim.end                                   # the last period after the last step


def test_batched_readings_reach_the_pipeline_late_but_are_folded_in(settings):
    import zlib

    from streams.ingest import RawMessage
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer
    from tests.conftest import TEST_KEY

    def run(steps):
        domain = DOMAINS["water"]
        pipeline = DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: sim.end + 3600)
        offsets = [0] * 4
        late = readings = 0
        for _when, messages in steps:
            batch = []
            for key, value in messages:
                p = zlib.crc32(key) % 4
                batch.append(RawMessage(value, "r", p, offsets[p], key))
                offsets[p] += 1
            result = pipeline.process(batch)
            late += len(result.late)
            readings += result.readings
        return late, readings

    sim = simulate("water")
    assert run(sim.steps()) == (0, sim.valid_readings)
    late, count = run(perturb.batched_delivery(sim.steps(), 6 * 3600.0, 0.25, seed=9))
    assert count == sim.valid_readings
    assert late > 0.1 * count          # a quarter of the districts, most of each 6 h behind the watermark


# --- ground truth -----------------------------------------------------------------------------------------

PERTURBED = {
    "jitter": lambda steps: perturb.jitter(steps, 300.0, 0.2, seed=1),
    "drop": lambda steps: perturb.drop(steps, 0.05, seed=1),
    "clock_skew": lambda steps: perturb.clock_skew(steps, 120.0, seed=1),
    "local_time": lambda steps: perturb.local_time(steps, "Europe/Madrid"),
    "batched": lambda steps: perturb.batched_delivery(steps, 6 * 3600.0, 0.2, seed=1),
}


@pytest.mark.parametrize("name", sorted(PERTURBED))
@pytest.mark.parametrize("domain", sorted(SCENARIOS))
def test_a_perturbation_leaves_the_ground_truth_as_the_simulator_made_it(domain, name):
    sim = simulate(domain)
    truth = orjson.dumps(sim.ground_truth())
    out = list(PERTURBED[name](sim.steps()))
    assert out and out != list(sim.steps())                     # it did something
    assert orjson.dumps(sim.ground_truth()) == truth
    assert orjson.dumps(simulate(domain).ground_truth()) == truth
    assert list(PERTURBED[name](sim.steps())) == out            # deterministic


# --- measurement noise ------------------------------------------------------------------------------------

def _values(sim, value, keep=lambda r: True):
    """(id, dateObserved) -> value(reading) of the simulation's valid readings that ``keep`` keeps."""
    value = value if callable(value) else (lambda r, field=value: r.get(field))
    found = {}
    for _w, _k, r, _e in readings(sim.steps()):
        if parseable(r) and not r["id"].split(":")[-1].startswith("BAD") and keep(r) and value(r) is not None:
            found[(r["id"], r["dateObserved"])] = value(r)
    return found


def _spread_ratio(domain, value, keep=lambda r: True):
    """Spread (mean absolute difference) of ``value`` from the noise-free run (noise_scale 0),
    at noise_scale 3 over noise_scale 1. The random draws are the same at every scale."""
    clean = _values(simulate(domain, noise_scale=0.0), value, keep)
    spreads = []
    for scale in (1.0, 3.0):
        noisy = _values(simulate(domain, noise_scale=scale), value, keep)
        common = sorted(set(clean) & set(noisy))
        assert len(common) > 1000
        spreads.append(np.mean(np.abs(np.array([noisy[k] - clean[k] for k in common]))))
    return spreads[1] / spreads[0]


def test_noise_scale_three_triples_the_noise_of_a_waste_bins_level_and_temperature():
    assert _spread_ratio("waste", "fillingLevel") == pytest.approx(3.0, rel=0.05)
    assert _spread_ratio("waste", "temperature") == pytest.approx(3.0, rel=0.05)


def test_noise_scale_three_triples_the_noise_of_traffic_occupancy_and_speed():
    # occupancy = count x length / (speed x interval) x lognormal noise: occupancy x speed isolates the latter
    busy = lambda r: r["intensity"] >= 20 and r["occupancy"] > 0 and "averageVehicleSpeed" in r  # noqa: E731
    assert _spread_ratio("traffic", lambda r: np.log(r["occupancy"] * r["averageVehicleSpeed"]), busy) == \
        pytest.approx(3.0, rel=0.05)
    assert _spread_ratio("traffic", "averageVehicleSpeed", keep=busy) == pytest.approx(3.0, rel=0.05)


def test_noise_scale_three_triples_the_noise_of_a_burning_lamps_power():
    assert _spread_ratio("lighting", "powerConsumption", keep=lambda r: r.get("powerConsumption", 0.0) >= 3.0) == \
        pytest.approx(3.0, rel=0.05)


def test_noise_scale_three_triples_the_spread_of_normal_peak_flows():
    def iqr(scale):
        values = np.array(list(_values(simulate("water", noise_scale=scale), "maxFlowLastHour",
                                       keep=lambda r: r["maxFlowLastHour"] > 0).values()))
        q1, q3 = np.percentile(values, [25, 75])
        return q3 - q1
    assert iqr(3.0) / iqr(1.0) == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("domain", ["water", "traffic", "lighting"])
def test_noise_scale_changes_no_incident(domain):
    assert simulate(domain, noise_scale=3.0).incidents == simulate(domain).incidents


def test_noise_scale_one_is_the_default_and_negative_is_refused():
    for domain in SCENARIOS:
        assert [m for _w, ms in simulate(domain, noise_scale=1.0).steps() for m in ms][:50] == \
               [m for _w, ms in simulate(domain).steps() for m in ms][:50]
        with pytest.raises(ValueError):
            simulate(domain, noise_scale=-1.0)
