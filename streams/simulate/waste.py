"""Synthetic waste city: street bins reporting fill level and temperature, with labelled incidents.

``simulate_waste(WasteScenario(...))`` returns a :class:`WasteSimulation` whose
:meth:`WasteSimulation.steps` yields, city-hour by city-hour, the Kafka
``(key, value)`` pairs of the ``glasscity.waste.readings.v1`` topic: one
``ReadingBatch`` envelope per district gateway and hour (key = the district), a
few single-reading messages, and injected malformed items. Ground truth --
incidents, malformed items, the number of valid readings -- is known right after
construction. The labels are of our own making.

Model. Each bin (``urn:ngsi-ld:WasteContainer:GC-nnnnnn``) belongs to one district
and is a residential, park or commercial bin. It reports every hour (three in four
bins) or every two hours, at a fixed offset within the hour. Its fill rises at a
bin-specific rate shaped by a daily rhythm (little at night, most in the afternoon)
and a weekly one (parks fill twice as fast at weekends, shopping streets slower).
Scheduled collections (daily at 05:00-08:59, or every other day) empty it to a
residue of 3-7 %. The reported ``fillingLevel`` adds ultrasonic noise (normal,
sd 0.008, bounded to +-0.025) rounded to 1 mm (three decimals). Temperature follows
the air (4-20 degC over the day) plus sun on the lid (0-5 degC) plus bounded noise.

Normal bins never look like incidents, by construction: each bin's rate is scaled
so that its fullest moment stays below 30-50 % (so below the 75 % "due" level and
the 90 % overflow level even with noise), and its peak rate stays below 2 %/h (so
a 12 h forecast from below 50 % never reaches 90 %); temperatures stay below 27 degC
and move less than 5 degC between readings; live readings jitter, so six identical
values in a row do not happen by accident. ``noise_scale`` (default 1; the bounds above
hold at 1) multiplies the level and temperature noise, its sd and its bound; the
incidents' levels and temperatures are planned without it.

Incidents (hourly, daily-collected bins; one incident per bin):

* ``overflow``: bulky waste dumped into a bin: the level jumps to 93-96 % and stays
  there until a dispatched emptying 3-8 h later. start = the first reading at the
  new level; end = the first reading after the emptying.
* ``full_before_collection``: a surge (market, event) adds 5-7 %/h from 1-4 h
  after a collection; a dispatched emptying takes the bin at 68-74 %, before it
  would have been full. start = the first surge reading; end = the first reading
  after the emptying.
* ``fire``: the temperature jumps to 50-58 degC, then 70-110 degC for 2-4 readings
  (half of the fires also report ``status: burning``), cools to 34-45 degC, then is
  back to ambient. start = the first hot reading; end = the first ambient one.
* ``collection_late``: a scheduled collection is missed; the bin fills to 78 % in
  5-9 h and settles at 80-83 % (bags pile up beside a full bin); its
  ``nextCollectionEpoch`` stays on the missed slot. The next round that comes at
  least 26 h after it was full empties it. start = the first reading at or above
  75 %; end = the first reading after the emptying, or None.
* ``sensor_fault``: the level sensor freezes on its last value 8-12 h before a
  collection and recovers 2-6 h after it, or never. start = the first frozen
  reading; end = the first reading with another value, or None.
* ``silent`` (any bin without another incident, hourly or two-hourly): the sensor misses
  6-10 of its reports in a row. start = its last reading before the gap; end = its first
  reading after it, or None (every second silence lasts past the run). Planned from a
  random stream of their own, so the other incidents are the same with or without them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import orjson

from . import city

__all__ = ["INCIDENT_KINDS", "MALFORMED_KINDS", "Incident", "WasteScenario", "WasteSimulation", "bin_id",
           "simulate_waste"]

INCIDENT_KINDS = ("overflow", "full_before_collection", "fire", "collection_late", "sensor_fault", "silent")
MALFORMED_KINDS = ("invalid_json", "missing_field", "level_out_of_range", "wrong_type", "bad_timestamp",
                   "non_finite", "timestamp_out_of_range", "bad_status", "wrong_reading_type",
                   "bad_reading_in_envelope")

READING_TYPE = "WasteContainer"
HOUR = 3600.0
DAY = 86400.0
PRE_HOURS = 72                 # simulated before the run so every bin starts mid-cycle
NOISE_SD, NOISE_BOUND = 0.008, 0.025
TEMP_NOISE_BOUND = 1.0
MAX_NORMAL_RATE_PER_H = 0.02
LATE_FULL_LEVEL = 0.75         # waste.collection_late's full_level: where a late incident starts
LEAD_S = 6 * HOUR              # incidents start at least this long after the run starts
MARGIN_S = 3 * HOUR            # incidents that end do so at least this long before the run ends
KINDS = ("residential", "park", "commercial")
#: Share of a bin's mean hourly rate by hour of day (UTC city clock).
HOURLY = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.5, 0.9, 1.2, 1.3, 1.4, 1.5,
                   1.6, 1.6, 1.5, 1.5, 1.6, 1.7, 1.6, 1.4, 1.1, 0.8, 0.5, 0.3])
#: Weekly factor per bin kind, Monday first.
WEEKLY = {"residential": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.3]),
          "park": np.array([0.8, 0.8, 0.8, 0.8, 0.9, 1.8, 2.0]),
          "commercial": np.array([1.1, 1.1, 1.1, 1.1, 1.2, 1.0, 0.5])}


def bin_id(i: int) -> str:
    return f"urn:ngsi-ld:WasteContainer:GC-{i:06d}"


def district_id(d: int) -> str:
    return f"district-{d:02d}"


def gateway_id(d: int) -> str:
    return f"waste-gw-{d:02d}"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass(frozen=True)
class WasteScenario:
    bins: int = 300
    days: float = 3.0
    districts: int = 12
    seed: int = 42
    start: float | None = None   # epoch s UTC of city-hour 0; None -> floor(now to the hour) - days
    overflow: int = 5            # injected incidents of each kind
    full_before_collection: int = 5
    fire: int = 5
    collection_late: int = 5
    sensor_fault: int = 5
    silent: int = 5              # bins whose sensor misses 6-10 reports in a row
    malformed: int = 10
    two_hourly_share: float = 0.25
    single_reading_share: float = 0.02
    noise_scale: float = 1.0     # x the level and temperature noise (sd and bound), not the incidents' values


@dataclass(frozen=True)
class Incident:
    kind: str
    subject: str
    gateway: str
    start: float
    end: float | None

    def to_json(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "gateway": self.gateway, "start": self.start,
                "end": self.end, "start_time": _iso(self.start),
                "end_time": None if self.end is None else _iso(self.end)}


class _Bin:
    """One bin's plan: reading times, true fill, schedule, and its reported values."""

    def __init__(self, index, district, kind, cadence, phase, offset, period, slot_offset, residual, temp_sun):
        self.index, self.district, self.kind = index, district, kind
        self.cadence, self.phase, self.offset = cadence, phase, offset
        self.period, self.slot_offset, self.residual, self.temp_sun = period, slot_offset, residual, temp_sun
        self.base = 0.0
        self.status: dict[int, str] = {}


class WasteSimulation:
    """A fully planned run; :meth:`steps` may be iterated any number of times, same bytes each time."""

    domain = "waste"

    def __init__(self, scenario: WasteScenario):
        self.scenario = sc = scenario
        if sc.bins < 1 or sc.districts < 1:
            raise ValueError("bins and districts must be >= 1")
        if min(sc.overflow, sc.full_before_collection, sc.fire, sc.collection_late, sc.sensor_fault, sc.silent,
               sc.malformed) < 0 or sc.seed < 0:
            raise ValueError("incident counts, malformed and seed must be >= 0")
        if not (0.0 <= sc.two_hourly_share <= 1.0 and 0.0 <= sc.single_reading_share <= 1.0):
            raise ValueError("shares must be within [0, 1]")
        if not sc.noise_scale >= 0:
            raise ValueError("noise_scale must be >= 0")
        self.n_hours = H = int(round(sc.days * 24))
        if H < 1:
            raise ValueError(f"days={sc.days} gives no city-hour")
        if sc.collection_late and H < 48:
            raise ValueError(f"scenario too short: collection_late incidents need >= 48 city-hours, got {H}")
        if H < 24 and (sc.overflow or sc.full_before_collection or sc.fire or sc.sensor_fault):
            raise ValueError(f"scenario too short: incidents need >= 24 city-hours, got {H}")
        start = math.floor(time.time() / HOUR) * HOUR - H * HOUR if sc.start is None else math.floor(sc.start)
        self.start: int = int(start)
        self.end: int = self.start + H * int(HOUR)
        rng = np.random.default_rng([sc.seed, 0])
        self._plan_bins(rng)
        self._place(np.random.default_rng([sc.seed, city.POSITION_STREAM]))
        self._plan_incidents(rng)
        self._plan_silences(np.random.default_rng([sc.seed, 3]))
        self._observe(np.random.default_rng([sc.seed, 1]))
        self._plan_malformed(rng)

    # ------------------------------------------------------------------ where they are
    def _place(self, rng: np.random.Generator) -> None:
        """Where the bins and district gateways are (:mod:`streams.simulate.city`): each district a square of the
        city's grid, its gateway near the centre, its bins along the streets, 25 m apart where they share one.
        ``bin_positions`` / ``gateway_positions``: (longitude, latitude) arrays, degrees."""
        east, north = city.district_centres(self.scenario.districts)
        district = np.array([b.district for b in self.bins], dtype=np.int64)
        bin_east, bin_north = city.along_streets(rng, east[district], north[district], len(self.bins), 500.0, 25.0)
        self.bin_positions = city.to_degrees(bin_east, bin_north)
        self.gateway_positions = city.to_degrees(*city.scatter(rng, east, north, 100.0))
        self._bin_points = [city.point(*p) for p in zip(*self.bin_positions)]
        self._gateway_points = [city.point(*p) for p in zip(*self.gateway_positions)]

    # ------------------------------------------------------------------ the bins
    def _plan_bins(self, rng) -> None:
        sc = self.scenario
        n = sc.bins
        kinds = rng.choice(len(KINDS), n, p=[0.6, 0.2, 0.2])
        cadence = np.where(rng.random(n) < sc.two_hourly_share, 2, 1)
        period = np.where(rng.random(n) < 0.2, 2, 1)   # collected daily, or every other day
        self.bins = [
            _Bin(i, i * sc.districts // n, KINDS[kinds[i]], int(cadence[i]), int(rng.integers(0, 2)),
                 float(rng.integers(0, 3000)), float(period[i]) * DAY,
                 float(rng.integers(5 * 3600, 9 * 3600)) + float(rng.integers(0, int(period[i]))) * DAY,
                 float(rng.uniform(0.03, 0.07)), float(rng.uniform(0.0, 5.0)))
            for i in range(n)]
        self.bin_ids = [bin_id(i) for i in range(n)]
        self.n_grid = PRE_HOURS + self.n_hours
        peaks = rng.uniform(0.30, 0.50, n)
        for b in self.bins:
            b.times = self.start + (np.arange(self.n_grid) - PRE_HOURS) * HOUR + b.offset
            mid = b.times - HOUR / 2
            b.rhythm = HOURLY[((mid // HOUR) % 24).astype(int)] * WEEKLY[b.kind][(((mid // DAY) + 3) % 7).astype(int)]
            first = math.floor((self.start - PRE_HOURS * HOUR) / DAY) * DAY + b.slot_offset
            b.slots = np.arange(first, self.end + 2 * DAY, b.period)
            b.emptyings = list(b.slots)
            b.missed: tuple[float, float] | None = None   # (missed slot, actual late emptying or inf)
            unit = self._fill(b, 1.0, b.residual)
            b.base = min(MAX_NORMAL_RATE_PER_H / float(b.rhythm.max()),
                         (peaks[b.index] - b.residual) / float((unit - b.residual).max()))
            b.fill = self._fill(b, b.base, b.residual)
            b.reports = (np.arange(self.n_grid) - PRE_HOURS >= 0) & ((np.arange(self.n_grid) % b.cadence)
                                                                    == b.phase % b.cadence)
            ambient = 12.0 + 8.0 * np.sin(2 * np.pi * ((b.times % DAY) / DAY - 0.375))
            b.temp = ambient + b.temp_sun * (b.rhythm > 1.0)

    @staticmethod
    def _fill(b: _Bin, base: float, residual: float) -> np.ndarray:
        """True fill at each grid time: rate base * rhythm, emptied to ``residual`` at each emptying."""
        fill = np.empty(b.times.shape[0])
        level = residual
        empties = sorted(b.emptyings)
        k = 0
        previous = b.times[0] - HOUR
        for i, t in enumerate(b.times):
            emptied_at = None
            while k < len(empties) and empties[k] <= t:
                if empties[k] > previous:
                    emptied_at = empties[k]
                k += 1
            if emptied_at is None:
                level += base * b.rhythm[i]
            else:
                level = residual + base * b.rhythm[i] * (t - emptied_at) / HOUR
            fill[i] = level
            previous = t
        return fill

    def next_collection(self, b: _Bin, t: float) -> float:
        """The bin's pending scheduled collection at time ``t`` (a missed one stays pending)."""
        if b.missed is not None and b.missed[0] <= t < b.missed[1]:
            return b.missed[0]
        return float(b.slots[np.searchsorted(b.slots, t, side="right")])

    # --------------------------------------------------------------- incidents
    def _plan_incidents(self, rng) -> None:
        sc = self.scenario
        eligible = [b.index for b in self.bins if b.cadence == 1 and b.period == DAY]
        need = sc.overflow + sc.full_before_collection + sc.fire + sc.collection_late + sc.sensor_fault
        if need > len(eligible):
            raise ValueError(f"{need} incidents need as many hourly, daily-collected bins; only {len(eligible)}")
        chosen = [self.bins[i] for i in rng.choice(eligible, need, replace=False)]
        self.incidents: list[Incident] = []
        plan = (("overflow", sc.overflow, self._overflow), ("full_before_collection", sc.full_before_collection,
                                                             self._surge),
                ("fire", sc.fire, self._fire), ("collection_late", sc.collection_late, self._late),
                ("sensor_fault", sc.sensor_fault, self._stuck))
        for kind, count, make in plan:
            for k in range(count):
                b = chosen.pop()
                make(b, rng, k)
                b.incident = kind

    def _run_index(self, b, t) -> int:
        """Grid index of the bin's first reading at or after ``t``."""
        return int(np.searchsorted(b.times, t))

    def _slot_in(self, b, rng, low: float, high: float) -> float | None:
        candidates = b.slots[(b.slots >= low) & (b.slots <= high)]
        return None if candidates.size == 0 else float(rng.choice(candidates))

    def _overflow(self, b, rng, k) -> None:
        i = self._run_index(b, rng.uniform(self.start + LEAD_S, self.end - 12 * HOUR))
        dumped = b.times[i]
        dispatch = dumped + rng.uniform(3, 8) * HOUR
        dispatch = min(dispatch, self.next_collection(b, dumped))
        b.emptyings.append(dispatch)
        b.fill = self._fill(b, b.base, b.residual)
        level = rng.uniform(0.93, 0.96)
        j = i
        while b.times[j] < dispatch:
            b.fill[j] = min(0.97, level + 0.004 * (b.times[j] - dumped) / HOUR)
            j += 1
        self._incident("overflow", b, dumped, float(b.times[j]))

    def _surge(self, b, rng, k) -> None:
        slot = self._slot_in(b, rng, self.start + LEAD_S - 2 * HOUR, self.end - 30 * HOUR)
        if slot is None:
            raise ValueError("scenario too short for full_before_collection incidents (needs >= 30 city-hours)")
        i = self._run_index(b, slot + rng.uniform(1, 4) * HOUR)
        began = b.times[i]
        rate = rng.uniform(0.05, 0.07)
        level0 = b.fill[i]
        dispatch = began + (rng.uniform(0.68, 0.74) - level0) / rate * HOUR
        b.emptyings.append(dispatch)
        b.fill = self._fill(b, b.base, b.residual)
        j = i
        while b.times[j] < dispatch:
            b.fill[j] = level0 + rate * (b.times[j] - began) / HOUR
            j += 1
        self._incident("full_before_collection", b, began, float(b.times[j]))

    def _fire(self, b, rng, k) -> None:
        lasts_past_end = k == 0
        if lasts_past_end:
            i = self._run_index(b, self.end - rng.uniform(2, 4) * HOUR)
        else:
            i = self._run_index(b, rng.uniform(self.start + LEAD_S, self.end - 14 * HOUR))
        b.temp[i] = rng.uniform(50, 58)
        hot = int(rng.integers(2, 5))
        burning = k % 2 == 1
        for j in range(i + 1, min(i + 1 + hot, self.n_grid)):
            b.temp[j] = rng.uniform(70, 110)
            if burning:
                b.status[j] = "burning"
        if i + 1 + hot < self.n_grid:
            b.temp[i + 1 + hot] = rng.uniform(34, 45)
        end = None if lasts_past_end or i + 2 + hot >= self.n_grid else float(b.times[i + 2 + hot])
        self._incident("fire", b, float(b.times[i]), end)

    def _late(self, b, rng, k) -> None:
        missed = self._slot_in(b, rng, self.start + 2 * HOUR, self.end - 36 * HOUR)   # full >= 5 h later
        if missed is None:
            raise ValueError("scenario too short for collection_late incidents (needs about 2.5 city-days)")
        i = self._run_index(b, missed)
        level0 = b.fill[i - 1]
        boost = (0.78 - level0) / rng.uniform(5, 9)
        saturation = rng.uniform(0.80, 0.83)
        for j in range(i, self.n_grid):
            b.fill[j] = min(saturation, level0 + boost * (b.times[j] - missed) / HOUR)
        full = i + int(np.argmax(b.fill[i:] - NOISE_BOUND >= LATE_FULL_LEVEL))   # noise cannot hide it
        b.force_full = full
        late_slots = b.slots[b.slots >= b.times[full] + 26 * HOUR]
        emptied = float(late_slots[0])
        if emptied > self.end - MARGIN_S:
            emptied = math.inf
        b.missed = (missed, emptied)
        b.emptyings = [e for e in b.emptyings if not missed <= e < emptied]
        if math.isfinite(emptied):
            after = self._fill(b, b.base, b.residual)
            j = self._run_index(b, emptied)
            b.fill[j:] = after[j:]
            end = float(b.times[j])
        else:
            end = None
        b.late_range = (i, full)
        self._incident("collection_late", b, float(b.times[full]), end)   # start fixed in _observe

    def _stuck(self, b, rng, k) -> None:
        lasts_past_end = k == 0
        high = self.end - 2 * HOUR if lasts_past_end else self.end - 10 * HOUR
        slot = self._slot_in(b, rng, self.start + LEAD_S + 12 * HOUR, high)
        if slot is None:
            raise ValueError("scenario too short for sensor_fault incidents")
        i = self._run_index(b, slot - rng.uniform(8, 12) * HOUR)
        recover = None if lasts_past_end else self._run_index(b, slot + rng.uniform(2, 6) * HOUR)
        b.stuck = (i, recover)
        self._incident("sensor_fault", b, float(b.times[i]), None if recover is None else float(b.times[recover]))

    def _plan_silences(self, rng) -> None:
        """Bins whose sensor misses 6-10 reports in a row (``silent`` incidents), on bins without another."""
        sc = self.scenario
        busy = {i.subject for i in self.incidents}
        free = [b for b in self.bins if self.bin_ids[b.index] not in busy]
        if sc.silent > len(free):
            raise ValueError(f"{sc.silent} silent incidents need as many bins without other incidents; "
                             f"only {len(free)}")
        for n, i in enumerate(rng.permutation(len(free))[:sc.silent].tolist()):
            b = free[i]
            reported = np.flatnonzero(b.reports)
            missing = int(rng.integers(6, 11))
            if n % 2 == 0:    # ends: the gap starts after the lead and the first reading after it is before the margin
                last = np.flatnonzero((b.times[reported] >= self.start + LEAD_S)
                                      & (np.roll(b.times[reported], -(missing + 1)) <= self.end - MARGIN_S))
                last = last[last + missing + 1 < reported.size]
                j = int(rng.choice(last))
            else:             # lasts past the run: its last `missing` reports never come
                j = reported.size - 1 - missing
            gap = reported[j + 1: j + 1 + missing]
            b.reports[gap] = False
            resume = j + 1 + missing
            self._incident("silent", b, float(b.times[reported[j]]),
                           float(b.times[reported[resume]]) if resume < reported.size else None)

    def _incident(self, kind, b, start, end) -> None:
        self.incidents.append(Incident(kind, self.bin_ids[b.index], gateway_id(b.district), float(start),
                                       None if end is None else float(end)))

    # ------------------------------------------------------------- observation
    def _observe(self, rng) -> None:
        """Reported values: noisy, rounded levels and temperatures, frozen where a sensor is stuck."""
        for b in self.bins:
            k = self.scenario.noise_scale
            noise = np.clip(rng.normal(0.0, NOISE_SD * k, self.n_grid), -NOISE_BOUND * k, NOISE_BOUND * k)
            b.level = np.round(np.clip(b.fill + noise, 0.0, 1.0), 3)
            b.temperature = np.round(b.temp + np.clip(rng.normal(0.0, 0.3 * k, self.n_grid), -TEMP_NOISE_BOUND * k,
                                                      TEMP_NOISE_BOUND * k), 1)
            stuck = getattr(b, "stuck", None)
            if stuck is not None:
                i, recover = stuck
                stop = self.n_grid if recover is None else recover
                if abs(b.level[i] - b.level[i - 1]) < 0.002:   # the frozen run starts exactly at i
                    b.level[i] = round(b.level[i - 1] + 0.004, 3)
                b.level[i:stop] = b.level[i]
                if recover is not None and abs(b.level[recover] - b.level[i]) < 0.01:
                    b.level[recover] = round(b.level[i] - 0.05, 3)
        # the late incidents start at the first reported level at or above the due level
        by_id = {self.bin_ids[b.index]: b for b in self.bins}
        for n, incident in enumerate(self.incidents):
            if incident.kind == "collection_late":
                b = by_id[incident.subject]
                i, _full = b.late_range
                first = i + int(np.argmax(b.level[i:] >= LATE_FULL_LEVEL))
                self.incidents[n] = Incident(incident.kind, incident.subject, incident.gateway,
                                             float(b.times[first]), incident.end)
        self.valid_readings = int(sum(int(b.reports.sum()) for b in self.bins))

    def _plan_malformed(self, rng) -> None:
        M, H = self.scenario.malformed, self.n_hours
        self.malformed: list[dict] = []
        self._malformed_at: dict[int, list[dict]] = {}
        for n in range(M):
            h = min(H - 1, int((n + 0.5) * H / M))
            d = int(rng.integers(0, self.scenario.districts))
            item = {"n": n, "hour": h, "kind": MALFORMED_KINDS[n % len(MALFORMED_KINDS)], "key": district_id(d),
                    "id": f"urn:ngsi-ld:WasteContainer:BAD-{n}"}
            self.malformed.append(item)
            self._malformed_at.setdefault(h, []).append(item)

    def _malformed_bytes(self, item: dict, base: int) -> bytes:
        kind, bad = item["kind"], item["id"]
        when = _iso(base + 30)
        if kind == "invalid_json":
            return b'{"id":"' + bad.encode() + b'","type":"WasteContainer","dateObserved":"' + when.encode() + b'",'
        if kind == "non_finite":
            return (b'{"id":"' + bad.encode() + b'","type":"WasteContainer","dateObserved":"' + when.encode()
                    + b'","fillingLevel":0.5,"temperature":1e999}')
        reading = {"id": bad, "type": READING_TYPE, "dateObserved": when, "fillingLevel": 0.5}
        if kind == "missing_field":
            del reading["fillingLevel"]
        elif kind == "level_out_of_range":
            reading["fillingLevel"] = 1.7
        elif kind == "wrong_type":
            reading["fillingLevel"] = "0.5"
        elif kind == "bad_timestamp":
            reading["dateObserved"] = "2026-02-30T25:00:00Z"
        elif kind == "timestamp_out_of_range":
            reading["dateObserved"] = "1999-06-15T12:00:00Z"
        elif kind == "bad_status":
            reading["status"] = "exploded"
        elif kind == "wrong_reading_type":
            reading["type"] = "WaterConsumptionObserved"
        else:  # pragma: no cover - bad_reading_in_envelope is built in steps()
            raise AssertionError(kind)
        return orjson.dumps(reading)

    # -------------------------------------------------------------- generation
    def steps(self) -> Iterator[tuple[float, list[tuple[bytes, bytes]]]]:
        """Yield ``(hour_start_epoch_s, [(key, value), ...])`` for every city-hour, in order."""
        sc = self.scenario
        rng = np.random.default_rng([sc.seed, 2])
        for h in range(self.n_hours):
            base = self.start + h * int(HOUR)
            g = PRE_HOURS + h
            singles_draw = rng.random(len(self.bins))
            by_district: dict[int, list[dict]] = {}
            singles: dict[int, list[dict]] = {}
            for b in self.bins:
                if not b.reports[g]:
                    continue
                t = float(b.times[g])
                reading = {"id": self.bin_ids[b.index], "type": READING_TYPE, "dateObserved": _iso(t),
                           "fillingLevel": float(b.level[g]), "temperature": float(b.temperature[g]),
                           "nextCollectionEpoch": int(self.next_collection(b, t)),
                           "location": self._bin_points[b.index]}
                status = b.status.get(g)
                if status is not None:
                    reading["status"] = status
                target = singles if singles_draw[b.index] < sc.single_reading_share else by_district
                target.setdefault(b.district, []).append(reading)
            out: list[tuple[bytes, bytes]] = []
            malformed = self._malformed_at.get(h, ())
            for d in range(sc.districts):
                key = district_id(d).encode()
                readings = by_district.get(d, [])
                for item in malformed:
                    if item["key"] == district_id(d) and item["kind"] == "bad_reading_in_envelope":
                        readings = readings + [{"id": item["id"], "type": READING_TYPE,
                                                "dateObserved": _iso(base + 30), "fillingLevel": -0.2}]
                if readings:
                    out.append((key, orjson.dumps({"type": "ReadingBatch", "gatewayId": gateway_id(d),
                                                   "location": self._gateway_points[d],
                                                   "dateSent": _iso(base + 3599), "readings": readings})))
                for reading in singles.get(d, ()):
                    out.append((key, orjson.dumps({**reading, "gatewayId": gateway_id(d)})))
                for item in malformed:
                    if item["key"] == district_id(d) and item["kind"] != "bad_reading_in_envelope":
                        out.append((key, self._malformed_bytes(item, base)))
            yield float(base), out

    def ground_truth(self) -> dict:
        return {"scenario": asdict(self.scenario), "start": self.start, "end": self.end,
                "start_time": _iso(self.start), "end_time": _iso(self.end), "hours": self.n_hours,
                "bins": len(self.bins), "districts": self.scenario.districts, "valid_readings": self.valid_readings,
                "incidents": [i.to_json() for i in self.incidents], "malformed": [dict(m) for m in self.malformed],
                "note": "incidents and malformed items are synthetic labels of our own making"}


def simulate_waste(scenario: WasteScenario) -> WasteSimulation:
    """Plan a synthetic waste-city run; iterate ``.steps()`` to stream its messages."""
    return WasteSimulation(scenario)
