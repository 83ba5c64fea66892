"""Synthetic traffic city: 5-minute detector readings with labelled incidents and bad input.

``simulate_traffic(TrafficScenario(...))`` returns a :class:`TrafficSimulation` whose
:meth:`TrafficSimulation.steps` streams, interval by interval, the Kafka ``(key, value)``
pairs of ``glasscity.traffic.readings.v1``: one ``ReadingBatch`` envelope per road
segment (delivered by the segment's roadside controller; the Kafka key is the segment, so
adjacent detectors share a partition), a few single-reading messages, and malformed items.

City model. ``segments`` road segments carry ``detectors_per_segment`` single-lane
detectors each, 400 m apart (position 0, 400, 800, ... m in the direction of travel).
Demand follows a weekday profile (morning peak at 08:00, evening peak at 17:30 UTC, quieter
midday, near nothing at night) or a weekend one (one broad afternoon hump, lower), scaled
per segment (peak 60-100 vehicles per 5 min), per detector (+-10 %) and per day (+-4 %).
Counts are Poisson; speed falls a little with flow (free-flow 45-58 km/h, noise 2 km/h plus
more when few vehicles pass, as a mean over few vehicles is noisy); occupancy follows from
count, effective vehicle length 5.5 m and speed, with 8 % noise. Bounded noise, by
construction: a free-flowing detector stays below about 0.22 occupancy, so only a real queue
looks like an incident. ``noise_scale`` (default 1) multiplies the speed and occupancy noise
(the bounds above hold at 1); the incidents' jam, slowdown and flow-drop values are not
scaled. No reading is lost by chance: every gap is a labelled incident.

Incidents (each on its own segment, all of one kind spread over the run):

* ``incident``: a capacity drop between detector j and j+1 of a segment for 45-120 min
  in daytime: j sits in the queue (occupancy 0.45-0.7, 6-15 km/h, 40 % of demand passing),
  j+1 sees only that 40 % at free-flow speed. subject = detector j (the upstream one).
* ``stuck``: in daytime, for 45-120 min, either *flat* (the controller repeats the
  detector's previous reading; start = that reading's time) or *impossible* (no vehicle
  counted but the last speed repeated).
* ``silent``: the detector sends nothing for 40 min to 3 h (start = its last reading
  before the gap; the last one lasts past the run).
* ``anomaly``: in daytime, on a day whose weekday type already occurred earlier in the run,
  for 60-150 min: a slowdown (speed x0.4, occupancy x2.5) at the last detector of a segment
  (so it is never the upstream half of an incident pair), or a flow drop (count and
  occupancy x0.1, a closure diverting traffic) at any detector.

``start``/``end`` of an incident are reading times (``dateObserved``): the first affected
reading (or as stated) and the first normal reading after it (None = lasts past the run).
Same scenario (with an explicit ``start``) -> byte-identical messages.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import orjson

from . import city

__all__ = ["INCIDENT_KINDS", "MALFORMED_KINDS", "Incident", "TrafficScenario", "TrafficSimulation",
           "detector_id", "segment_id", "simulate_traffic"]

INCIDENT_KINDS = ("incident", "stuck", "silent", "anomaly")
MALFORMED_KINDS = ("invalid_json", "missing_field", "occupancy_above_one", "negative_intensity", "wrong_type",
                   "bad_timestamp", "timestamp_out_of_range", "non_finite", "bad_reading_in_envelope",
                   "not_an_object")

READING_TYPE = "TrafficFlowObserved"
INTERVAL_S = 300
SPACING_M = 400.0
VEHICLE_LENGTH_M = 5.5
DAYTIME_HOURS = (8, 17)   # incidents start within these UTC hours


def detector_id(i: int) -> str:
    return f"urn:ngsi-ld:TrafficFlowObserved:TD-{i:04d}"


def segment_id(g: int) -> str:
    return f"urn:ngsi-ld:RoadSegment:RS-{g:03d}"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _weekend(t: float) -> bool:
    return (math.floor(t / 86400) + 3) % 7 >= 5


def demand_shape(hours: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Share of the peak demand at UTC hour-of-day ``hours`` (float), weekday or weekend."""
    def bump(centre, width):
        return np.exp(-0.5 * ((hours - centre) / width) ** 2)

    weekday = 0.04 + 0.96 * bump(8.0, 1.0) + 0.55 * bump(13.0, 3.0) + 0.96 * bump(17.5, 1.2)
    weekend_shape = 0.04 + 0.55 * bump(14.0, 3.5)
    return np.minimum(np.where(weekend, weekend_shape, weekday), 1.0)


@dataclass(frozen=True)
class TrafficScenario:
    segments: int = 30
    detectors_per_segment: int = 4
    days: float = 3.0
    seed: int = 42
    start: float | None = None       # epoch s UTC of interval 0; None -> floor(now to the hour) - days
    incident: int = 5                # injected incidents of each kind
    stuck: int = 5
    silent: int = 5
    anomaly: int = 5
    malformed: int = 10
    single_reading_share: float = 0.02
    noise_scale: float = 1.0         # x the speed and occupancy measurement noise (not the incidents' values)


@dataclass(frozen=True)
class Incident:
    kind: str
    subject: str
    segment: str
    start: float
    end: float | None
    detail: str = ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "segment": self.segment, "detail": self.detail,
                "start": self.start, "end": self.end, "start_time": _iso(self.start),
                "end_time": None if self.end is None else _iso(self.end)}


class TrafficSimulation:
    """A fully planned run; :meth:`steps` may be iterated any number of times (same bytes)."""

    domain = "traffic"

    def __init__(self, scenario: TrafficScenario):
        sc = self.scenario = scenario
        if sc.segments < 1 or sc.detectors_per_segment < 2:
            raise ValueError("need >= 1 segment and >= 2 detectors per segment")
        if min(sc.incident, sc.stuck, sc.silent, sc.anomaly, sc.malformed) < 0 or sc.seed < 0:
            raise ValueError("counts and seed must be >= 0")
        if not 0.0 <= sc.single_reading_share <= 1.0:
            raise ValueError("single_reading_share must be within [0, 1]")
        if not sc.noise_scale >= 0:
            raise ValueError("noise_scale must be >= 0")
        self.n_steps = K = int(round(sc.days * 86400 / INTERVAL_S))
        if K < 288:
            raise ValueError(f"days={sc.days}: the traffic city needs at least one day")
        if sc.incident + sc.stuck + sc.silent + sc.anomaly > sc.segments:
            raise ValueError("every incident needs its own segment: raise segments or lower the counts")
        start = math.floor(time.time() / 3600) * 3600 - K * INTERVAL_S if sc.start is None else math.floor(sc.start)
        self.start = int(start)
        self.end = self.start + K * INTERVAL_S
        G, P = sc.segments, sc.detectors_per_segment
        self.n_detectors = N = G * P
        self.detector_ids = [detector_id(i) for i in range(N)]
        self.segment_ids = [segment_id(g) for g in range(G)]
        self._segment_of = np.arange(N) // P
        self._rank = np.arange(N) % P
        self.position = self._rank * SPACING_M
        self._place(np.random.default_rng([sc.seed, city.POSITION_STREAM]))
        rng = np.random.default_rng([sc.seed, 0])
        self._offsets = rng.integers(0, 20, N)
        self._peak = rng.uniform(60, 100, G)[self._segment_of] * rng.uniform(0.9, 1.1, N)
        self._free_speed = rng.uniform(45, 58, N)
        days = K * INTERVAL_S // 86400 + 2
        self._day_factor = rng.normal(1.0, 0.04, (days, G)).clip(0.9, 1.1)
        self._plan_incidents(rng)
        self._plan_malformed(rng)
        self.valid_readings = int(self._reporting_matrix().sum())

    def _place(self, rng: np.random.Generator) -> None:
        """Where the detectors and roadside controllers are (:mod:`streams.simulate.city`): the segments end to end
        along the city's avenues, each detector at its ``positionAlongSegment``, each segment's controller by the
        road at the segment's middle. ``detector_positions`` / ``controller_positions``: (longitude, latitude)
        arrays, degrees."""
        length = self.scenario.detectors_per_segment * SPACING_M
        per_road = max(1, int(2 * city.HALF_SIDE_M // length))
        segments = np.arange(self.scenario.segments)
        road, slot = segments // per_road, segments % per_road
        start = slot * length + (2 * city.HALF_SIDE_M - per_road * length) / 2     # the segments centred on each
        east, north = zip(*(city.road_point(int(r), s + self.position[self._segment_of == g])
                            for g, (r, s) in enumerate(zip(road, start))))
        self.detector_positions = city.to_degrees(np.concatenate(east), np.concatenate(north))
        side = rng.choice([-20.0, 20.0], len(segments))   # a controller cabinet beside the road
        c_east, c_north = zip(*(city.road_point(int(r), s + length / 2) for r, s in zip(road, start)))
        c_east, c_north = np.concatenate([np.atleast_1d(e) for e in c_east]), np.concatenate(
            [np.atleast_1d(n) for n in c_north])
        across = road % 2 == 1
        self.controller_positions = city.to_degrees(c_east + np.where(across, side, 0.0),
                                                    c_north + np.where(across, 0.0, side))
        self._detector_points = [city.point(*p) for p in zip(*self.detector_positions)]
        self._controller_points = [city.point(*p) for p in zip(*self.controller_positions)]

    # ---------------------------------------------------------------- planning
    def _time(self, k: int, d: int) -> float:
        """dateObserved of detector d's reading for interval k (the end of the interval)."""
        return float(self.start + (k + 1) * INTERVAL_S + int(self._offsets[d]))

    def _daytime_step(self, rng, earliest: int, duration: int, need_earlier_day_type: bool = False) -> int:
        K = self.n_steps
        candidates = []
        for k in range(max(earliest, 24), K - duration - 12):
            t = self.start + k * INTERVAL_S
            hour = (t % 86400) / 3600
            if not DAYTIME_HOURS[0] <= hour < DAYTIME_HOURS[1]:
                continue
            if need_earlier_day_type and not any(
                    _weekend(t - j * 86400) == _weekend(t) and t - j * 86400 - 3 * 3600 >= self.start
                    for j in range(1, 8)):
                continue   # the anomaly score has no seasonal baseline for this time yet
            candidates.append(k)
        if not candidates:
            raise ValueError("the run has no daytime interval to place an incident in")
        return int(rng.choice(candidates))

    def _plan_incidents(self, rng) -> None:
        sc, P, K = self.scenario, self.scenario.detectors_per_segment, self.n_steps
        segments = rng.permutation(sc.segments)
        kinds = (["incident"] * sc.incident + ["stuck"] * sc.stuck + ["silent"] * sc.silent
                 + ["anomaly"] * sc.anomaly)
        self._effects: list[tuple] = []     # (kind, detail, detector, first step, end step, extra)
        incidents = []
        count = {k: 0 for k in INCIDENT_KINDS}
        for kind, g in zip(kinds, segments.tolist()):
            i = count[kind]
            count[kind] += 1
            base = g * P
            seg = self.segment_ids[g]
            if kind == "incident":
                j = int(rng.integers(0, P - 1))
                d = base + j
                length = int(rng.integers(9, 25))
                k0 = self._daytime_step(rng, 0, length)
                self._effects.append(("incident", "", d, k0, k0 + length, base + j + 1))
                incidents.append(Incident("incident", self.detector_ids[d], seg, self._time(k0, d),
                                          self._time(k0 + length, d), f"capacity drop below detector {j}"))
            elif kind == "stuck":
                d = base + int(rng.integers(0, P))
                length = int(rng.integers(9, 25))
                k0 = self._daytime_step(rng, 0, length)
                detail = "flat" if i % 2 == 0 else "impossible"
                self._effects.append(("stuck", detail, d, k0, k0 + length, None))
                started = self._time(k0 - 1, d) if detail == "flat" else self._time(k0, d)
                incidents.append(Incident("stuck", self.detector_ids[d], seg, started, self._time(k0 + length, d),
                                          detail))
            elif kind == "silent":
                d = base + int(rng.integers(0, P))
                lasting = i == sc.silent - 1
                length = int(rng.integers(8, 37))
                k0 = (int(rng.integers(K - 30, K - 15)) if lasting
                      else int(rng.integers(24, K - length - 12)))
                k1 = K if lasting else k0 + length
                self._effects.append(("silent", "", d, k0, k1, None))
                incidents.append(Incident("silent", self.detector_ids[d], seg, self._time(k0 - 1, d),
                                          None if lasting else self._time(k1, d)))
            else:
                detail = "slowdown" if i % 2 == 0 else "flow_drop"
                d = base + (P - 1 if detail == "slowdown" else int(rng.integers(0, P)))
                length = int(rng.integers(12, 31))
                k0 = self._daytime_step(rng, 0, length, need_earlier_day_type=True)
                self._effects.append(("anomaly", detail, d, k0, k0 + length, None))
                incidents.append(Incident("anomaly", self.detector_ids[d], seg, self._time(k0, d),
                                          self._time(k0 + length, d), detail))
        self.incidents = incidents

    def _reporting_matrix(self) -> np.ndarray:
        rep = np.ones((self.n_steps, self.n_detectors), dtype=bool)
        for kind, _detail, d, k0, k1, _extra in self._effects:
            if kind == "silent":
                rep[k0:k1, d] = False
        return rep

    def _plan_malformed(self, rng) -> None:
        M, K = self.scenario.malformed, self.n_steps
        self.malformed: list[dict] = []
        self._malformed_at: dict[int, list[dict]] = {}
        for n in range(M):
            k = min(K - 1, int((n + 0.5) * K / M))
            g = int(rng.integers(0, self.scenario.segments))
            item = {"n": n, "step": k, "kind": MALFORMED_KINDS[n % len(MALFORMED_KINDS)],
                    "key": self.segment_ids[g], "id": f"urn:ngsi-ld:TrafficFlowObserved:BAD-{n}"}
            self.malformed.append(item)
            self._malformed_at.setdefault(k, []).append(item)

    # -------------------------------------------------------------- generation
    def _malformed_bytes(self, item: dict, t: float) -> bytes:
        kind = item["kind"]
        r = {"id": item["id"], "type": READING_TYPE, "dateObserved": _iso(t), "refRoadSegment": item["key"],
             "intensity": 10, "occupancy": 0.05, "averageVehicleSpeed": 40.0}
        if kind == "invalid_json":
            return orjson.dumps(r)[:-9]
        if kind == "non_finite":
            return orjson.dumps(r).replace(b'"occupancy":0.05', b'"occupancy":1e999')
        if kind == "not_an_object":
            return orjson.dumps([r])
        if kind == "missing_field":
            del r["occupancy"]
        elif kind == "occupancy_above_one":
            r["occupancy"] = 1.4
        elif kind == "negative_intensity":
            r["intensity"] = -3
        elif kind == "wrong_type":
            r["intensity"] = "10"
        elif kind == "bad_timestamp":
            r["dateObserved"] = "2026-02-30T25:00:00Z"
        elif kind == "timestamp_out_of_range":
            r["dateObserved"] = "1999-06-15T12:00:00Z"
        return orjson.dumps(r)

    def steps(self) -> Iterator[tuple[float, list[tuple[bytes, bytes]]]]:
        """Yield ``(interval end epoch s, [(key, value), ...])`` for every 5-minute interval, in order."""
        sc, N, K = self.scenario, self.n_detectors, self.n_steps
        rng = np.random.default_rng([sc.seed, 1])
        rep_matrix = self._reporting_matrix()
        seg_bytes = [s.encode() for s in self.segment_ids]
        ids = self.detector_ids
        frozen: dict[int, tuple] = {}
        previous: list = [None] * N
        for k in range(K):
            base = self.start + (k + 1) * INTERVAL_S
            mid = base - INTERVAL_S / 2
            hours = np.full(N, (mid % 86400) / 3600)
            day = int((mid - self.start) // 86400)
            demand = self._peak * demand_shape(hours, np.full(N, _weekend(mid))) * self._day_factor[
                day, self._segment_of]
            passing = np.ones(N)
            jam = np.zeros(N, dtype=bool)
            speed_factor = np.ones(N)
            occ_factor = np.ones(N)
            active = [e for e in self._effects if e[3] <= k < e[4]]
            for kind, detail, d, _k0, _k1, extra in active:
                if kind == "incident":
                    passing[d] = passing[extra] = 0.4
                    jam[d] = True
                elif kind == "anomaly" and detail == "slowdown":
                    speed_factor[d], occ_factor[d] = 0.4, 2.5
                elif kind == "anomaly":
                    passing[d] = 0.1
            counts = rng.poisson(demand * passing).astype(np.int64)
            load = np.minimum(demand / 100.0, 1.2)
            noise_speed = rng.normal(0.0, 1.0, N) * (2.0 + 8.0 / np.sqrt(np.maximum(counts, 1))) * sc.noise_scale
            speed = np.maximum(self._free_speed * (1.0 - 0.12 * load) + noise_speed, 5.0) * speed_factor
            occ = (counts * VEHICLE_LENGTH_M / (speed / 3.6 * INTERVAL_S)
                   * np.exp(rng.normal(0.0, 0.08 * sc.noise_scale, N)))
            occ *= occ_factor
            jam_occ = rng.uniform(0.45, 0.7, N)
            jam_speed = rng.uniform(6.0, 15.0, N)
            occ = np.where(jam, jam_occ, occ)
            speed = np.where(jam, jam_speed, speed)
            occ = np.round(np.minimum(occ, 0.95), 3)
            speed = np.round(speed, 1)
            single_draw = rng.random(N)
            values = list(zip(counts.tolist(), occ.tolist(), speed.tolist()))
            for kind, detail, d, k0, _k1, _extra in active:
                if kind == "stuck":
                    if d not in frozen or frozen[d][0] != k0:
                        frozen[d] = (k0, previous[d])
                    q, o, v = frozen[d][1]
                    values[d] = (q, o, v) if detail == "flat" else (0, 0.0, v)
            reporting = rep_matrix[k]
            envelopes: list[list[dict]] = [[] for _ in range(sc.segments)]
            singles: list[tuple[int, dict]] = []
            for d in np.flatnonzero(reporting).tolist():
                q, o, v = values[d]
                previous[d] = (q, o, v)
                r = {"id": ids[d], "type": READING_TYPE, "dateObserved": _iso(base + int(self._offsets[d])),
                     "refRoadSegment": self.segment_ids[self._segment_of[d]],
                     "positionAlongSegment": float(self.position[d]), "laneId": 1, "intensity": q, "occupancy": o,
                     "location": self._detector_points[d]}
                if q > 0 or (v is not None and q == 0 and any(e[0] == "stuck" and e[2] == d for e in active)):
                    r["averageVehicleSpeed"] = v
                g = int(self._segment_of[d])
                if single_draw[d] < sc.single_reading_share:
                    singles.append((g, r))
                else:
                    envelopes[g].append(r)
            out: list[tuple[bytes, bytes]] = []
            bad_here = self._malformed_at.get(k, ())
            for item in bad_here:
                if item["kind"] == "bad_reading_in_envelope":
                    g = self.segment_ids.index(item["key"])
                    envelopes[g].append({"id": item["id"], "type": READING_TYPE, "dateObserved": _iso(base),
                                         "refRoadSegment": item["key"], "intensity": 5, "occupancy": 0.02,
                                         "averageVehicleSpeed": 400.0})
            for g, readings in enumerate(envelopes):
                if readings:
                    out.append((seg_bytes[g], orjson.dumps({"type": "ReadingBatch", "gatewayId": f"rsc-{g:03d}",
                                                            "location": self._controller_points[g],
                                                            "dateSent": _iso(base + 25), "readings": readings})))
            for g, r in singles:
                out.append((seg_bytes[g], orjson.dumps({**r, "gatewayId": f"rsc-{g:03d}"})))
            for item in bad_here:
                if item["kind"] != "bad_reading_in_envelope":
                    out.append((item["key"].encode(), self._malformed_bytes(item, base)))
            yield float(base), out

    def ground_truth(self) -> dict:
        return {"scenario": asdict(self.scenario), "start": self.start, "end": self.end,
                "start_time": _iso(self.start), "end_time": _iso(self.end), "steps": self.n_steps,
                "interval_s": INTERVAL_S, "detectors": self.n_detectors, "segments": self.scenario.segments,
                "valid_readings": self.valid_readings, "incidents": [i.to_json() for i in self.incidents],
                "malformed": [dict(m) for m in self.malformed],
                "note": "synthetic city; incidents and malformed items are labels of our own making"}


def simulate_traffic(scenario: TrafficScenario) -> TrafficSimulation:
    """Plan a synthetic traffic run; iterate ``.steps()`` to stream its messages."""
    return TrafficSimulation(scenario)
