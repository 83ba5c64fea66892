"""Synthetic street lighting: lamps under control cabinets, switched by the sun, with labelled faults.

``simulate_lighting(LightingScenario(...))`` returns a :class:`LightingSimulation`
whose :meth:`LightingSimulation.steps` streams, every 15 city-minutes, the Kafka
``(key, value)`` pairs of the ``glasscity.lighting.readings.v1`` topic: per control
cabinet one ``ReadingBatch`` envelope of its lamps' readings (plus the cabinet's
own energy reading once an hour), a few single-reading messages, and injected
malformed items. Keys are control cabinet ids, so a cabinet's lamps share a
partition. Incidents, malformed items and the number of valid readings are known
right after construction (:meth:`LightingSimulation.ground_truth`); the labels are
of our own making.

Time model. Step ``k`` starts at ``start + k*900``; lamp ``i`` reports at
``start + k*900 + offset_i`` (fixed offset 0-59 s). A normal lamp burns when the sun
(computed for the scenario's latitude and longitude, the same equations as the
detectors) was below the horizon ``delta_i`` seconds earlier: its photocell
switches ``delta_i`` after sunset and after sunrise, ``|delta_i|`` at most
``photocell_tolerance_s``. At night lamps dim to ``dim_level`` between
``dim_from_h`` and ``dim_to_h`` local time (fixed UTC offset ``utc_offset_h``).

Noise, bounded so that a normal lamp never looks like an incident: a burning lamp
draws rating x level x (1 + e), ``|e|`` <= 8% (the detectors' band is 25%, their
clearing band 15%); a dark lamp's driver draws 0.2-0.8 W standby (the detectors'
dark/lit line is 3 W); photocells switch within 10 min of sunset and sunrise (the
detectors' twilight margin is 30 min). ``noise_scale`` (default 1; the bounds above hold
at 1) multiplies the power measurement noise ``e`` (sd 3 %, bound 8 %); the standby draw
and photocell timing are the devices' own and the incidents' power factors are unscaled.

Incidents (each on its own lamp, starts at least 4 h into the run):

* ``lamp_failure``: from a night reading on, the lamp draws standby power only,
  although its controller still reports it on. ``start`` = that reading;
  ``end`` = the first burning reading after the repair, or None.
* ``day_burner``: from a daylight reading on, the lamp burns at full power day and
  night (stuck relay). ``start`` = that reading; ``end`` = the first daylight
  reading after the repair (the lamp dark again), or None.
* ``power_out_of_range``: from a night reading on, the burning lamp draws 45-62%
  or 145-180% of rating x level. ``start`` = that reading; ``end`` = the first
  burning reading after the repair, or None.
* ``cycling``: from a night reading on, the lamp goes off and on at every reading
  while it should burn. ``start`` = that reading (the first of the flapping);
  ``end`` = the first reading a whole ``steady_for_s`` (lighting.cycling's
  default, 24 h) after its last counted transition, or None.
* ``silent``: a lamp's controller sends nothing for 3-6 h; every fifth silence
  (the fifth, tenth...) is instead a control cabinet's own meter, whose hourly energy
  reading stops for 5-8 h while its lamps still report. ``start`` = the subject's last
  reading before the gap; ``end`` = its first reading after it, or None (every second
  silence lasts past the run). Planned from a random stream of their own, on lamps
  without other incidents, so the other incidents are the same with or without them.

Same scenario with an explicit ``start`` -> byte-identical messages.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import orjson

from . import city

from kernels import solar_elevation
from kernels.config import CITY_LATITUDE_DEG, CITY_LONGITUDE_DEG, SUN_HORIZON_DEG

__all__ = ["INCIDENT_KINDS", "MALFORMED_KINDS", "Incident", "LightingScenario", "LightingSimulation",
           "simulate_lighting", "lamp_id", "cabinet_id", "bad_lamp_id"]

INCIDENT_KINDS = ("lamp_failure", "day_burner", "power_out_of_range", "cycling", "silent")
MALFORMED_KINDS = (
    "invalid_json",
    "missing_field",
    "negative_power",
    "wrong_type",
    "bad_timestamp",
    "non_finite",
    "timestamp_out_of_range",
    "unknown_power_state",
    "level_out_of_range",
    "bad_reading_in_envelope",
)

STEP_S = 900                       # lamps report every 15 minutes
STEPS_PER_HOUR = 3600 // STEP_S
RATINGS_W = (30.0, 40.0, 60.0, 90.0, 120.0)
MAX_NOISE = 0.08                   # |relative power noise| of a burning lamp
STANDBY_W = (0.2, 0.8)             # a dark lamp's driver draw
LEAD_STEPS = 16                    # incidents start >= 4 h into the run
END_MARGIN_STEPS = 4               # incidents that end do so >= 1 h before the run ends
FAULTY_LOW = (0.45, 0.62)          # power_out_of_range factors of rating x level
FAULTY_HIGH = (1.45, 1.80)
SILENT_LAMP_STEPS = (12, 24)       # a silent lamp misses 12-24 reports (3-6 h)
SILENT_CABINET_HOURS = (5, 8)      # a silent cabinet meter misses 5-8 hourly readings


def cabinet_id(c: int) -> str:
    return f"urn:ngsi-ld:StreetlightControlCabinet:DIJ-C{c:03d}"


def lamp_id(c: int, j: int) -> str:
    return f"urn:ngsi-ld:Streetlight:DIJ-C{c:03d}-L{j:03d}"


def bad_lamp_id(n: int) -> str:
    """Id carried by malformed readings: a worker that accepts one creates a stranger lamp."""
    return f"urn:ngsi-ld:Streetlight:BAD-{n}"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass(frozen=True)
class LightingScenario:
    lamps: int = 360
    cabinets: int = 20
    days: float = 3.0
    seed: int = 42
    start: float | None = None       # epoch s UTC of step 0; None -> floor(now to the hour) - days
    latitude: float = CITY_LATITUDE_DEG
    longitude: float = CITY_LONGITUDE_DEG
    photocell_tolerance_s: float = 600.0
    dim_level: float = 0.5
    dim_from_h: int = 23
    dim_to_h: int = 5
    utc_offset_h: float = 1.0        # the city's clock for the dimming schedule (CET)
    lamp_failure: int = 6            # injected incidents of each kind
    day_burner: int = 5
    power_out_of_range: int = 5
    cycling: int = 5
    silent: int = 5                  # lamps (and every fifth a cabinet's meter) that stop reporting a while
    malformed: int = 10
    single_reading_share: float = 0.02
    noise_scale: float = 1.0         # x the power measurement noise e (sd and bound), not the incidents' factors


@dataclass(frozen=True)
class Incident:
    """A labelled incident on one lamp (see the module docstring for start and end)."""

    kind: str
    subject: str
    cabinet: str
    start: float
    end: float | None

    def to_json(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "cabinet": self.cabinet, "start": self.start,
                "end": self.end, "start_time": _iso(self.start),
                "end_time": None if self.end is None else _iso(self.end)}


class LightingSimulation:
    """A fully planned run; :meth:`steps` may be iterated any number of times, same bytes each time."""

    domain = "lighting"

    def __init__(self, scenario: LightingScenario):
        from streams.detectors.lighting.cycling import Cycling

        sc = self.scenario = scenario
        if sc.lamps < 1 or sc.cabinets < 1 or sc.cabinets > sc.lamps:
            raise ValueError("need lamps >= cabinets >= 1")
        if min(sc.lamp_failure, sc.day_burner, sc.power_out_of_range, sc.cycling, sc.silent, sc.malformed) < 0:
            raise ValueError("incident and malformed counts must be >= 0")
        if not 0.0 <= sc.single_reading_share <= 1.0:
            raise ValueError("single_reading_share must be within [0, 1]")
        if not sc.noise_scale >= 0:
            raise ValueError("noise_scale must be >= 0")
        if not 0.0 < sc.dim_level <= 1.0:
            raise ValueError("dim_level must be within (0, 1]")
        if sc.seed < 0:
            raise ValueError("seed must be >= 0")
        self.n_steps = K = int(round(sc.days * 24 * STEPS_PER_HOUR))
        if K < 2 * 24 * STEPS_PER_HOUR and (sc.lamp_failure or sc.day_burner or sc.power_out_of_range or sc.cycling
                                            or sc.silent):
            raise ValueError(f"scenario too short: incidents need >= 2 city-days (a night and a day), "
                             f"got days={sc.days}")
        start = (math.floor(time.time() / 3600) * 3600 - K * STEP_S) if sc.start is None else math.floor(sc.start)
        self.start: int = int(start)
        self.end: int = self.start + K * STEP_S

        N, C = sc.lamps, sc.cabinets
        self.n_lamps, self.n_cabinets = N, C
        self._cabinet_of = np.arange(N) * C // N            # contiguous blocks of lamps per cabinet
        self._bounds = np.searchsorted(self._cabinet_of, np.arange(C + 1))
        self.cabinet_ids = [cabinet_id(c) for c in range(C)]
        self.lamp_ids = [lamp_id(int(c), i - int(self._bounds[c])) for i, c in enumerate(self._cabinet_of)]
        self._place(np.random.default_rng([sc.seed, city.POSITION_STREAM]))

        rng = np.random.default_rng([sc.seed, 0])
        self._offsets = rng.integers(0, 60, N).astype(np.int64)
        self._rating = np.array(RATINGS_W)[rng.integers(0, len(RATINGS_W), N)]
        self._photocell = rng.uniform(-sc.photocell_tolerance_s, sc.photocell_tolerance_s, N)
        self._times = (self.start + np.arange(K, dtype=np.int64)[:, None] * STEP_S + self._offsets[None, :])  # K x N
        times = self._times.astype(np.float64)
        self._lit_normal = self._sun_below(times - self._photocell[None, :])
        cycling = Cycling.Thresholds()
        self._margin_s = cycling.twilight_margin_s
        self._steady_for_s = cycling.steady_for_s
        self._night = self._sun_below(times - self._margin_s) & self._sun_below(times + self._margin_s)
        self._day = self._sun_above(times - self._margin_s) & self._sun_above(times + self._margin_s)
        local_hour = ((times + sc.utc_offset_h * 3600.0) // 3600.0) % 24
        if sc.dim_from_h > sc.dim_to_h:
            dimmed = (local_hour >= sc.dim_from_h) | (local_hour < sc.dim_to_h)
        else:
            dimmed = (local_hour >= sc.dim_from_h) & (local_hour < sc.dim_to_h)
        self._level = np.where(dimmed, sc.dim_level, 1.0)

        self._plan_incidents(rng)
        self._plan_silences(np.random.default_rng([sc.seed, 3]))
        self._plan_malformed(rng)
        self.valid_readings: int = (int(self._reports.sum()) + C * len(range(0, K, STEPS_PER_HOUR))
                                    - len(self._cabinet_silent))

    # ---------------------------------------------------------------- planning
    def _sun_below(self, times: np.ndarray) -> np.ndarray:
        sc = self.scenario
        flat = np.ascontiguousarray(times, dtype=np.float64).ravel()
        return (solar_elevation(flat, sc.latitude, sc.longitude) < SUN_HORIZON_DEG).reshape(times.shape)

    def _sun_above(self, times: np.ndarray) -> np.ndarray:
        sc = self.scenario
        flat = np.ascontiguousarray(times, dtype=np.float64).ravel()
        return (solar_elevation(flat, sc.latitude, sc.longitude) > SUN_HORIZON_DEG).reshape(times.shape)

    def _plan_incidents(self, rng: np.random.Generator) -> None:
        sc, K, N = self.scenario, self.n_steps, self.n_lamps
        counts = {"lamp_failure": sc.lamp_failure, "day_burner": sc.day_burner,
                  "power_out_of_range": sc.power_out_of_range, "cycling": sc.cycling}
        need = sum(counts.values())
        if need > N:
            raise ValueError(f"{need} incidents need as many lamps; only {N}")
        chosen = rng.permutation(N)[:need].tolist()
        # Per lamp: the burning state override (None = normal) as a K-long array, and the power factor.
        self._lit = self._lit_normal.copy()
        self._factor = np.ones((K, N))
        self._full_by_day = np.zeros((K, N), dtype=bool)   # day burners burn at level 1 by day
        self._reports_on = self._lit_normal.copy()        # powerState as the controller reports it
        self.incidents: list[Incident] = []
        k_all = np.arange(K)
        position = 0
        for kind in counts:   # silences are planned apart (_plan_silences)
            for n in range(counts[kind]):
                lamp = chosen[position]
                position += 1
                ends = n % 2 == 0
                night, day, lit = self._night[:, lamp], self._day[:, lamp], self._lit_normal[:, lamp]
                last_start = int(K * 0.55) if ends else K - 8
                if kind in ("lamp_failure", "power_out_of_range"):
                    ok = night[:-1] & night[1:]
                elif kind == "day_burner":
                    ok = day[:-1] & day[1:]
                else:   # cycling: four flapping night readings in a row
                    ok = night[:-4] & night[1:-3] & night[2:-2] & night[3:-1] & night[4:]
                candidates = np.flatnonzero(ok[:last_start])
                candidates = candidates[candidates >= LEAD_STEPS]
                if candidates.size == 0:
                    raise ValueError(f"no time in the run fits a {kind} incident (days={sc.days})")
                ks = int(rng.choice(candidates))
                kr = K
                if ends:
                    repair_ok = day if kind in ("day_burner", "cycling") else lit
                    gap = {"lamp_failure": 8, "power_out_of_range": 8, "day_burner": 4, "cycling": 6}[kind]
                    options = np.flatnonzero(repair_ok & (k_all >= ks + gap) & (k_all <= K - END_MARGIN_STEPS))
                    if options.size:
                        kr = int(options[0] if kind == "cycling" else rng.choice(options[: 48]))
                end = self._inject(kind, lamp, ks, kr, rng)
                self.incidents.append(Incident(kind, self.lamp_ids[lamp], self.cabinet_ids[self._cabinet_of[lamp]],
                                               float(self._times[ks, lamp]), end))

    def _plan_silences(self, rng: np.random.Generator) -> None:
        """Lamps (and every fifth a cabinet meter) that send nothing for a while (``silent`` incidents)."""
        sc, K, N = self.scenario, self.n_steps, self.n_lamps
        self._reports = np.ones((K, N), dtype=bool)      # lamp i reports at step k
        self._cabinet_silent: set[tuple[int, int]] = set()   # (cabinet, step) whose energy reading is missing
        busy = {self.lamp_ids.index(i.subject) for i in self.incidents}
        free = [lamp for lamp in range(N) if lamp not in busy]
        lamps = [n for n in range(sc.silent) if n % 5 != 4]
        if len(lamps) > len(free):
            raise ValueError(f"{len(lamps)} silent lamps need as many lamps without other incidents; "
                             f"only {len(free)}")
        chosen = iter(int(x) for x in rng.permutation(free)[:len(lamps)])
        cabinets = iter(int(x) for x in rng.permutation(self.n_cabinets))
        hours = K // STEPS_PER_HOUR
        for n in range(sc.silent):
            ends = n % 2 == 0
            if n % 5 != 4:
                lamp = next(chosen)
                length = int(rng.integers(SILENT_LAMP_STEPS[0], SILENT_LAMP_STEPS[1] + 1))
                if ends:
                    k0 = int(rng.integers(LEAD_STEPS + 1, K - END_MARGIN_STEPS - length))
                    k1 = k0 + length
                else:
                    k0, k1 = int(rng.integers(K - 3 * SILENT_LAMP_STEPS[0], K - SILENT_LAMP_STEPS[0])), K
                self._reports[k0:k1, lamp] = False
                self.incidents.append(Incident("silent", self.lamp_ids[lamp],
                                               self.cabinet_ids[self._cabinet_of[lamp]],
                                               float(self._times[k0 - 1, lamp]),
                                               float(self._times[k1, lamp]) if k1 < K else None))
            else:
                c = next(cabinets, None)
                if c is None:
                    raise ValueError("more silent cabinets than cabinets")
                length = int(rng.integers(SILENT_CABINET_HOURS[0], SILENT_CABINET_HOURS[1] + 1))
                if ends:
                    h0 = int(rng.integers(LEAD_STEPS // STEPS_PER_HOUR + 1, hours - length - 1))
                    h1 = h0 + length
                else:
                    low, high = hours - 3 * SILENT_CABINET_HOURS[0], hours - SILENT_CABINET_HOURS[0]
                    h0, h1 = int(rng.integers(low, high)), hours
                self._cabinet_silent |= {(c, h * STEPS_PER_HOUR) for h in range(h0, h1)}
                reading_at = [self.start + h * 3600 + 5 for h in (h0 - 1, h1)]   # the cabinets report at +5 s
                self.incidents.append(Incident("silent", self.cabinet_ids[c], self.cabinet_ids[c],
                                               float(reading_at[0]), float(reading_at[1]) if h1 < hours else None))

    def _inject(self, kind: str, lamp: int, ks: int, kr: int, rng: np.random.Generator) -> float | None:
        """Apply one incident over steps [ks, kr) of one lamp; return its end time or None."""
        span = slice(ks, kr)
        times = self._times[:, lamp]
        if kind == "lamp_failure":
            self._lit[span, lamp] = False          # dark, while the controller still reports it on
            return float(times[kr]) if kr < self.n_steps else None
        if kind == "day_burner":
            self._lit[span, lamp] = True
            self._reports_on[span, lamp] = True
            self._full_by_day[span, lamp] = ~self._lit_normal[span, lamp]
            return float(times[kr]) if kr < self.n_steps else None
        if kind == "power_out_of_range":
            low, high = FAULTY_LOW if rng.random() < 0.5 else FAULTY_HIGH
            self._factor[span, lamp] = rng.uniform(low, high)
            return float(times[kr]) if kr < self.n_steps else None
        # cycling: while it should burn, off at even and on at odd readings counted from ks
        flapping = np.arange(kr - ks) % 2 == 1
        self._lit[span, lamp] = self._lit_normal[span, lamp] & flapping
        self._reports_on[span, lamp] = self._lit[span, lamp]
        lit = self._lit[:, lamp]
        counted = np.flatnonzero((lit[1:] != lit[:-1]) & (self._night[1:, lamp] | self._day[1:, lamp])) + 1
        if kr >= self.n_steps or counted.size == 0:
            return None
        clear_at = float(times[counted[-1]]) + self._steady_for_s
        after = np.flatnonzero(times >= clear_at)
        if after.size == 0 or after[0] > self.n_steps - END_MARGIN_STEPS:
            return None
        return float(times[after[0]])

    def _plan_malformed(self, rng: np.random.Generator) -> None:
        M, K = self.scenario.malformed, self.n_steps
        self.malformed: list[dict] = []
        self._malformed_at: dict[int, list[dict]] = {}
        for n in range(M):
            k = min(K - 1, int((n + 0.5) * K / M))
            c = int(rng.integers(0, self.n_cabinets))
            item = {"n": n, "step": k, "kind": MALFORMED_KINDS[n % len(MALFORMED_KINDS)],
                    "key": self.cabinet_ids[c], "id": bad_lamp_id(n)}
            self.malformed.append(item)
            self._malformed_at.setdefault(k, []).append({**item, "_c": c})

    # -------------------------------------------------------------- generation
    def _malformed_bytes(self, item: dict, base: int) -> bytes:
        kind, cabinet, bid = item["kind"], item["key"], item["id"]
        t = _iso(base + 30)
        if kind == "invalid_json":
            return (b'{"id":"' + bid.encode() + b'","type":"Streetlight","dateObserved":"' + t.encode()
                    + b'","powerCons')
        if kind == "non_finite":
            return (b'{"id":"' + bid.encode() + b'","type":"Streetlight","dateObserved":"' + t.encode()
                    + b'","powerState":"on","powerConsumption":1e999,"refStreetlightControlCabinet":"'
                    + cabinet.encode() + b'"}')
        r = {"id": bid, "type": "Streetlight", "dateObserved": t, "powerState": "on", "powerConsumption": 42.0,
             "illuminanceLevel": 1.0, "powerRating": 40.0, "refStreetlightControlCabinet": cabinet,
             "gatewayId": cabinet}
        if kind == "missing_field":
            del r["dateObserved"]
        elif kind == "negative_power":
            r["powerConsumption"] = -5.0
        elif kind == "wrong_type":
            r["powerConsumption"] = "42.0"
        elif kind == "bad_timestamp":
            r["dateObserved"] = "2026-13-45T25:61:99Z"
        elif kind == "timestamp_out_of_range":
            r["dateObserved"] = "1999-06-15T12:00:00Z"
        elif kind == "unknown_power_state":
            r["powerState"] = "dim"
        elif kind == "level_out_of_range":
            r["illuminanceLevel"] = 1.5
        else:  # pragma: no cover - bad_reading_in_envelope is built in steps()
            raise AssertionError(kind)
        return orjson.dumps(r)

    def steps(self) -> Iterator[tuple[float, list[tuple[bytes, bytes]]]]:
        """Yield ``(step_start_epoch_s, [(key, value), ...])`` every 15 city-minutes, in time order."""
        sc, N, C = self.scenario, self.n_lamps, self.n_cabinets
        rng = np.random.default_rng([sc.seed, 1])
        energy = np.round(rng.uniform(5_000.0, 50_000.0, C), 3)     # kWh on the cabinets' meters at the start
        ids = self.lamp_ids
        cabinets = self.cabinet_ids
        keys = [c.encode() for c in cabinets]
        ratings = self._rating.tolist()
        bounds = self._bounds.tolist()
        for k in range(self.n_steps):
            base = self.start + k * STEP_S
            noise = np.clip(rng.normal(0.0, 0.03 * sc.noise_scale, N), -MAX_NOISE * sc.noise_scale,
                            MAX_NOISE * sc.noise_scale)
            standby = rng.uniform(*STANDBY_W, N)
            single = rng.random(N) < sc.single_reading_share
            lit, reports_on = self._lit[k], self._reports_on[k]
            level = np.where(self._full_by_day[k], 1.0, self._level[k])
            commanded = np.where(reports_on, level, 0.0)
            power = np.where(lit, self._rating * level * self._factor[k] * (1.0 + noise), standby)
            power = np.round(power, 1)
            state = np.where(reports_on, np.where(level < 1.0, "low", "on"), "off").tolist()
            dates = [_iso(t) for t in self._times[k].tolist()]
            power_l, level_l = power.tolist(), commanded.tolist()
            readings = [{"id": ids[i], "type": "Streetlight", "dateObserved": dates[i], "powerState": state[i],
                         "powerConsumption": power_l[i], "illuminanceLevel": level_l[i], "powerRating": ratings[i],
                         "refStreetlightControlCabinet": cabinets[self._cabinet_of[i]],
                         "location": self._lamp_points[i]} for i in range(N)]
            cabinet_kw = np.add.reduceat(power, self._bounds[:-1]) / 1000.0
            energy = energy + cabinet_kw * STEP_S / 3600.0
            mal = self._malformed_at.get(k, ())
            out: list[tuple[bytes, bytes]] = []
            reports = self._reports[k].tolist()
            single_l = [single_i and reports_i for single_i, reports_i in zip(single.tolist(), reports)]
            for c in range(C):
                a, b = bounds[c], bounds[c + 1]
                envelope = [readings[i] for i in range(a, b) if reports[i] and not single_l[i]]
                if k % STEPS_PER_HOUR == 0 and (c, k) not in self._cabinet_silent:
                    envelope.append({"id": cabinets[c], "type": "StreetlightControlCabinet",
                                     "dateObserved": _iso(base + 5), "energyConsumed": round(float(energy[c]), 3),
                                     "totalActivePower": round(float(cabinet_kw[c]), 3),
                                     "workingMode": "automatic", "location": self._cabinet_points[c]})
                for it in mal:
                    if it["_c"] == c and it["kind"] == "bad_reading_in_envelope":
                        envelope.append({"id": it["id"], "type": "Lamp", "dateObserved": _iso(base + 30),
                                         "powerState": "on"})
                if envelope:
                    out.append((keys[c], orjson.dumps({"type": "ReadingBatch", "gatewayId": cabinets[c],
                                                       "location": self._cabinet_points[c],
                                                       "dateSent": _iso(base + 60 + c % 10),
                                                       "readings": envelope})))
                for i in range(a, b):
                    if single_l[i]:
                        out.append((keys[c], orjson.dumps({**readings[i], "gatewayId": cabinets[c]})))
                for it in mal:
                    if it["_c"] == c and it["kind"] != "bad_reading_in_envelope":
                        out.append((keys[c], self._malformed_bytes(it, base)))
            yield float(base), out

    def _place(self, rng: np.random.Generator) -> None:
        """Where the cabinets and lamps are (:mod:`streams.simulate.city`): a cabinet near the centre of each square
        of the city's grid, on a street corner; its lamps 30 m apart along the street that leaves it, east or
        south. ``cabinet_positions`` / ``lamp_positions``: (longitude, latitude) arrays, degrees."""
        east, north = city.district_centres(self.n_cabinets)
        corner = rng.integers(-3, 4, (2, self.n_cabinets)) * city.BLOCK_M
        c_east, c_north = east + corner[0], north + corner[1]
        rank = np.arange(self.n_lamps) - self._bounds[self._cabinet_of]
        eastward = (rng.random(self.n_cabinets) < 0.5)[self._cabinet_of]
        step = 30.0 * (rank + 1)
        self.cabinet_positions = city.to_degrees(c_east, c_north)
        self.lamp_positions = city.to_degrees(c_east[self._cabinet_of] + np.where(eastward, step, 0.0),
                                              c_north[self._cabinet_of] - np.where(eastward, 0.0, step))
        self._cabinet_points = [city.point(*p) for p in zip(*self.cabinet_positions)]
        self._lamp_points = [city.point(*p) for p in zip(*self.lamp_positions)]

    # ------------------------------------------------------------ ground truth
    def ground_truth(self) -> dict:
        return {
            "scenario": asdict(self.scenario),
            "start": self.start, "end": self.end, "start_time": _iso(self.start), "end_time": _iso(self.end),
            "steps": self.n_steps, "lamps": self.n_lamps, "cabinets": self.n_cabinets,
            "valid_readings": self.valid_readings,
            "incidents": [i.to_json() for i in self.incidents],
            "malformed": [dict(m) for m in self.malformed],
            "note": "incidents and malformed items are synthetic labels of our own making; lamps follow the "
                    "computed sunset and sunrise of the scenario's coordinates",
        }


def simulate_lighting(scenario: LightingScenario | None = None) -> LightingSimulation:
    """Plan a synthetic street-lighting run; iterate ``.steps()`` to stream its messages."""
    return LightingSimulation(scenario or LightingScenario())
