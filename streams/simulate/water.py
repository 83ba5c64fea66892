"""Synthetic water city: hourly meter readings with labelled incidents and bad input.

``simulate_water(WaterScenario(...))`` returns a :class:`WaterSimulation` whose
:meth:`WaterSimulation.hours` streams, city-hour by city-hour, the Kafka
``(key, value)`` pairs of the ``glasscity.water.readings.v1`` topic: one
``ReadingBatch`` envelope per gateway and hour, a few single-reading messages,
and injected malformed items. Messages are keyed by the gateway's district, so a
district's readings stay on one partition (its night flow is summed there).
Everything about the run that a detector should find -- incidents, malformed
items, the number of valid readings -- is known right after construction (see
:meth:`WaterSimulation.ground_truth`). The labels are of our own making; the
households' daily rhythms come from real DAIAD data.

Time model. City-hour ``h`` starts at ``start + h*3600``. Meter ``m`` reports at
``t = start + h*3600 + offset_m`` (fixed offset 0-59 s). The reading's index
includes the litres used since its previous reading; that use is drawn from the
meter's household profile at the weekday/hour (UTC clock of the city) of the
interval's midpoint ``t - 1800``. The city clock is UTC: profile hours are
applied to UTC hours.

Readings carry the meter's nominal flow Q3 (``nominalFlow``: 2.5 or 4 m3/h), the
peak flow of the hour (``maxFlowLastHour``, m3/h), the ``district`` (whole gateways
per district) and, while a device alarm is on, ``deviceAlarm``.

Normal households are bounded so that they never look like an incident: at most
400 L in an hour and a peak below 0.9 m3/h (under the burst limit of half of Q3),
never 12 idle hours in a row (no-use) and never more than 20 flowing hours in a row
(the meters' 24 h continuous-flow rule); their index never goes down. ``noise_scale``
(default 1) widens the random spread of normal hours' peak flow around 0.6 m3/h, the one
measured value with noise (the index is a counter); at 3 peaks reach 1.5 m3/h (still below
the burst volume, which the 400 L bound keeps out of reach).

Incident kinds besides no-use, silent meters and gateway outages: ``continuous_flow``
(a leak of 5-40 L/h behind the meter for more than a day), ``burst`` (0.7-1.2 x Q3 for
1-3 daytime hours), ``backflow`` (the index falls 5-30 L/h for 2-4 daytime hours),
``device_alarm`` (the meter reports leak, burst, dry, reverse or tamper for some hours)
and ``night_flow`` (40 % of a district's households start small intermittent leaks of
15-30 L/h: the district's 02:00-04:00 minimum flow rises while no meter flows for a
whole day). The counts of these five default to ``None``: planted (see
``DEFAULT_FLOW_INCIDENTS``) in runs of at least 3 days -- the demo's length, and the
least in which a district has two normal nights before a risen one -- and absent in
shorter runs unless asked for.

``routine_change`` (0 by default: its detector, ``water.routine_change``, ships dormant and needs
weeks of history) shifts a household's whole daily rhythm by 8, 12 or 16 hours -- its use at each
hour is drawn from its profile at that many hours later, as a night-shift routine or a disturbed one
would -- from a UTC midnight at least ``ROUTINE_LEAD_DAYS`` days into the run, for
``ROUTINE_SHIFT_DAYS`` days (every other one) or until the run ends.

Memory is bounded by one hour of messages; per-hour work is vectorised with numpy.
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
from .profiles import ATTRIBUTION, Profiles, load_profiles

__all__ = [
    "INCIDENT_KINDS",
    "MALFORMED_KINDS",
    "Incident",
    "WaterScenario",
    "WaterSimulation",
    "bad_meter_id",
    "gateway_id",
    "meter_id",
    "simulate_water",
]

INCIDENT_KINDS = ("no_use", "meter_silent", "gateway_outage", "continuous_flow", "burst", "backflow", "night_flow",
                  "device_alarm", "routine_change")
#: Counts planted by default (count None) in runs of at least DEFAULT_FLOW_DAYS days.
DEFAULT_FLOW_INCIDENTS = {"continuous_flow": 4, "burst": 4, "backflow": 4, "night_flow": 4, "device_alarm": 5}
DEFAULT_FLOW_DAYS = 3.0
MALFORMED_KINDS = (
    "invalid_json",
    "missing_field",
    "negative_index",
    "wrong_type",
    "bad_timestamp",
    "non_finite",
    "timestamp_out_of_range",
    "bad_reading_in_envelope",
)

READING_TYPE = "WaterConsumptionObserved"
BATCH_TYPE = "ReadingBatch"

MIN_HOURS_NO_USE = 36
MIN_HOURS_SILENT = 15
MIN_HOURS_OUTAGE = 13
INCIDENT_LEAD_HOURS = 4  # incidents start >= 4 h after the run starts
END_MARGIN_HOURS = 3  # incidents that end do so >= 3 h before the run ends
NO_USE_HOURS = 24  # detectors look for 24 h without use
MAX_IDLE_HOURS = 11  # a normal household never has 12 consecutive hours without use
MAX_LITRES_PER_HOUR = 400  # below the burst volume of the smallest meter (0.5 x 2.5 m3/h x 30 min)
MAX_BUSY_HOURS = 20  # a normal household never has 21 flowing hours in a row (continuous-flow rule: 24)
NOMINAL_FLOWS = (2.5, 4.0)  # m3/h: Q3 of DN15 and DN20 household meters
NORMAL_PEAK = (0.3, 0.9)  # m3/h: a tap to a shower
CONTINUOUS_LEAK_LITRES = (5, 40)
BURST_SHARE = (0.7, 1.2)  # of Q3
BACKFLOW_LITRES = (5, 30)
NIGHT_LEAK_SHARE = 0.4  # share of a district's households with a new leak
NIGHT_LEAK_LITRES = (15, 30)
#: An intermittent leak rests at one daytime hour a day (readings at 09-17 UTC), each household at its own,
#: so that the busy-hours rule (next rest 21 h later: 06-14 UTC) never silences them together at night.
NIGHT_LEAK_QUIET_HOURS = (9, 17)
DAYTIME_HOURS = (7, 17)  # bursts and backflow start within these UTC hours (away from the night window)
NIGHT_START_HOUR = 2  # the night-flow window: 02:00-04:00
DEVICE_ALARM_KINDS = ("leak", "burst", "dry", "reverse", "tamper")  # kernels.water_flow.DEVICE_ALARMS, "none" aside
#: A routine change starts at a UTC midnight at least this many days into the run: the detector learns the usual
#: routine over 14 usable days and how far its days usually are from it over the 7 days before those end.
ROUTINE_LEAD_DAYS = 21
ROUTINE_SHIFT_DAYS = 7  # a routine that returns does so after a week
ROUTINE_SEEN_DAYS = 5  # a change starts at least this many days before the run ends: three to judge, and margin
ROUTINE_SHIFT_HOURS = (8, 12, 16)


def meter_id(i: int) -> str:
    return f"urn:ngsi-ld:WaterMeter:GC-{i:06d}"


def gateway_id(g: int) -> str:
    return f"gw-{g:04d}"


def district_id(d: int) -> str:
    return f"district-{d:02d}"


def bad_meter_id(n: int) -> str:
    """Id carried by malformed readings: a worker that accepts one creates a stranger meter."""
    return f"urn:ngsi-ld:WaterMeter:BAD-{n}"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass(frozen=True)
class WaterScenario:
    households: int = 1000
    days: float = 3.0
    households_per_gateway: int = 50
    seed: int = 42
    start: float | None = None  # epoch s UTC of city-hour 0; None -> floor(now to the hour) - days
    no_use: int = 5  # injected incidents of each kind
    meter_silent: int = 3
    gateway_outage: int = 1
    malformed: int = 20  # malformed items mixed in
    single_reading_share: float = 0.02  # share of readings sent as single-reading messages
    districts: int = 10  # network districts, each of whole gateways (fewer when there are fewer gateways)
    continuous_flow: int | None = None  # None: DEFAULT_FLOW_INCIDENTS when days >= DEFAULT_FLOW_DAYS, else 0
    burst: int | None = None
    backflow: int | None = None
    night_flow: int | None = None  # districts with a night-flow rise
    device_alarm: int | None = None
    routine_change: int = 0  # households whose daily rhythm shifts (needs ROUTINE_LEAD_DAYS + a few days)
    #: x the random spread of the measured peak flow (maxFlowLastHour) of normal hours around the middle of
    #: NORMAL_PEAK (the index is a counter: no measurement noise); incidents' flows are not scaled.
    noise_scale: float = 1.0


@dataclass(frozen=True)
class Incident:
    """A labelled incident.

    * ``no_use``: ``start`` = dateObserved of the last reading whose index increased
      before the freeze; ``end`` = dateObserved of the first reading with an increased
      index again, or None. The meter keeps reporting throughout.
    * ``meter_silent``: ``start`` = dateObserved of the last reading before the gap
      (>= 6 missing hours); ``end`` = dateObserved of the first reading after it, or
      None. Use continues silently: the index has grown when the meter comes back.
    * ``gateway_outage``: ``start`` = max dateObserved the gateway sent in the hour
      before the outage; ``end`` = min dateObserved it sent in the first hour after.
    * ``continuous_flow``: ``start`` = the reading after which the leak runs (its own
      interval is still); ``end`` = the first reading after the repair (its interval
      is still), or None.
    * ``burst``: ``start`` = when the burst began (within the hour after a reading);
      ``end`` = the first reading whose interval is normal again, or None.
    * ``backflow``: ``start`` = the last reading before the index falls; ``end`` = the
      first reading that does not fall, or None.
    * ``device_alarm``: ``start`` = the first reading carrying the alarm; ``end`` = the
      second reading without it (alarms end after two quiet readings), or None.
    * ``night_flow`` (subject = the district): ``start`` = 02:00 of the first night
      whose minimum flow rose; ``end`` = 02:00 of the first normal night after the
      leaks were repaired, or None.
    * ``routine_change``: ``start`` = 00:00 UTC of the first day of the shifted rhythm;
      ``end`` = 00:00 UTC of the first day back to the usual one, or None.
    """

    kind: str
    subject: str
    gateway: str
    start: float
    end: float | None
    district: str = ""

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "gateway": self.gateway,
            "district": self.district,
            "start": self.start,
            "end": self.end,
            "start_time": _iso(self.start),
            "end_time": None if self.end is None else _iso(self.end),
        }


class WaterSimulation:
    """A fully planned run. ``incidents``, ``malformed`` and ``valid_readings`` are
    computed at construction; :meth:`hours` may be iterated any number of times and
    yields the same bytes each time."""

    domain = "water"

    def __init__(self, scenario: WaterScenario, profiles: Profiles | None = None):
        self.scenario = scenario
        sc = scenario
        if sc.households < 1:
            raise ValueError("households must be >= 1")
        if sc.households_per_gateway < 1:
            raise ValueError("households_per_gateway must be >= 1")
        if not (0.0 <= sc.single_reading_share <= 1.0):
            raise ValueError("single_reading_share must be within [0, 1]")
        if sc.districts < 1:
            raise ValueError("districts must be >= 1")
        self.flow_counts = {kind: (getattr(sc, kind) if getattr(sc, kind) is not None
                                   else default if sc.days >= DEFAULT_FLOW_DAYS else 0)
                            for kind, default in DEFAULT_FLOW_INCIDENTS.items()}
        if min(sc.no_use, sc.meter_silent, sc.gateway_outage, sc.malformed, sc.routine_change,
               *self.flow_counts.values()) < 0:
            raise ValueError("incident and malformed counts must be >= 0")
        if sc.seed < 0:
            raise ValueError("seed must be >= 0")
        if not sc.noise_scale >= 0:
            raise ValueError("noise_scale must be >= 0")
        self.n_hours = H = int(round(sc.days * 24))
        if H < 1:
            raise ValueError(f"days={sc.days} gives no city-hour")
        if sc.no_use > 0 and H < MIN_HOURS_NO_USE:
            raise ValueError(
                f"scenario too short: no_use incidents need >= {MIN_HOURS_NO_USE} city-hours "
                f"(24 h of no use plus lead and margins), got {H} (days={sc.days})")
        if sc.meter_silent > 0 and H < MIN_HOURS_SILENT:
            raise ValueError(
                f"scenario too short: meter_silent incidents need >= {MIN_HOURS_SILENT} "
                f"city-hours, got {H}")
        if sc.gateway_outage > 0 and H < MIN_HOURS_OUTAGE:
            raise ValueError(
                f"scenario too short: gateway_outage incidents need >= {MIN_HOURS_OUTAGE} "
                f"city-hours, got {H}")

        if sc.start is None:
            now_hour = math.floor(time.time() / 3600) * 3600
            start = now_hour - H * 3600
        else:
            start = math.floor(sc.start)
        self.start: int = int(start)
        self.end: int = self.start + H * 3600  # end of the run (exclusive)

        self.profiles = profiles if profiles is not None else load_profiles()
        P = len(self.profiles)
        self._prof_mean = self.profiles.mean.reshape(P, 168)
        self._prof_p = self.profiles.p.reshape(P, 168)

        N = sc.households
        hpg = sc.households_per_gateway
        G = -(-N // hpg)
        self.n_meters, self.n_gateways = N, G
        self.meter_ids = [meter_id(i) for i in range(N)]
        self.gateway_ids = [gateway_id(g) for g in range(G)]
        self.meter_gateway = {self.meter_ids[i]: self.gateway_ids[i // hpg] for i in range(N)}
        self._ids_obj = np.array(self.meter_ids, dtype=object)
        self._gw_bounds = np.minimum(np.arange(G + 1) * hpg, N)
        D = max(1, min(sc.districts, G))
        self.n_districts = D
        self._gw_district = np.arange(G) * D // G
        self.district_ids = [district_id(d) for d in range(D)]
        self.meter_district = np.repeat(self._gw_district, np.diff(self._gw_bounds))
        self._key_of_gw = [self.district_ids[d].encode() for d in self._gw_district]
        self._place(np.random.default_rng([sc.seed, city.POSITION_STREAM]))

        rng = np.random.default_rng([sc.seed, 0])
        self._offsets = rng.integers(0, 60, N).astype(np.int64)
        self._init_index = rng.integers(10_000, 500_001, N).astype(np.int64)  # litres
        self._scale = rng.uniform(0.6, 1.6, N)
        self._profile_of = np.arange(N) % P

        self._plan_incidents(rng)
        self._plan_flow_incidents(np.random.default_rng([sc.seed, 2]))
        self._plan_routine_changes(np.random.default_rng([sc.seed, 4]))
        self._plan_malformed(rng)

        missing = sum(b - a for _, a, b in self._silent)
        for g, a, b in self._outage:
            missing += (b - a) * int(self._gw_bounds[g + 1] - self._gw_bounds[g])
        self.valid_readings: int = N * H - missing

    # ---------------------------------------------------------------- planning
    def _place(self, rng: np.random.Generator) -> None:
        """Where the gateways and meters are (:mod:`streams.simulate.city`): each district a square of the city's
        grid, its gateways within 400 m of its centre, each gateway's meters along the streets within 300 m of it.
        ``gateway_positions`` / ``meter_positions``: (longitude, latitude) arrays, degrees."""
        east, north = city.district_centres(self.n_districts)
        gw_east, gw_north = city.scatter(rng, east[self._gw_district], north[self._gw_district], 400.0)
        gateway_of_meter = np.repeat(np.arange(self.n_gateways), np.diff(self._gw_bounds))
        meter_east, meter_north = city.along_streets(rng, gw_east[gateway_of_meter], gw_north[gateway_of_meter],
                                                     self.n_meters, 300.0, 15.0)
        self.gateway_positions = city.to_degrees(gw_east, gw_north)
        self.meter_positions = city.to_degrees(meter_east, meter_north)
        self._gateway_points = [city.point(*p) for p in zip(*self.gateway_positions)]
        self._meter_points = [city.point(*p) for p in zip(*self.meter_positions)]

    def _t(self, m: int, h: int) -> int:
        return self.start + h * 3600 + int(self._offsets[m])

    def _plan_incidents(self, rng: np.random.Generator) -> None:
        sc, H, N, G = self.scenario, self.n_hours, self.n_meters, self.n_gateways
        lead = INCIDENT_LEAD_HOURS
        incidents: list[Incident] = []
        self._outage: list[tuple[int, int, int]] = []  # (gateway, first silent hour, resume hour)
        self._silent: list[tuple[int, int, int]] = []  # (meter, first missing hour, resume hour)
        self._no_use: list[tuple[int, int, int]] = []  # (meter, last increase hour s, resume hour)

        if sc.gateway_outage > G:
            raise ValueError(f"gateway_outage={sc.gateway_outage} exceeds the {G} gateways")
        out_gws = sorted(rng.choice(G, sc.gateway_outage, replace=False).tolist())
        excluded = np.zeros(N, dtype=bool)
        for g in out_gws:
            a, b = int(self._gw_bounds[g]), int(self._gw_bounds[g + 1])
            excluded[a:b] = True
        eligible = np.flatnonzero(~excluded)
        need = sc.no_use + sc.meter_silent
        if need > eligible.size:
            raise ValueError(
                f"{need} meter incidents need as many meters outside outage gateways; "
                f"only {eligible.size} available")
        chosen = rng.choice(eligible, need, replace=False).tolist() if need else []

        for i, m in enumerate(chosen[: sc.no_use]):
            resume = i % 2 == 0
            s = int(rng.integers(lead, H - 31 + 1))  # start + 24 h + 6 h <= end of run
            if resume:
                r = int(rng.integers(s + NO_USE_HOURS + END_MARGIN_HOURS, H - 4 + 1))
            else:
                r = H
            self._no_use.append((m, s, r))
            incidents.append(Incident("no_use", self.meter_ids[m], self.meter_gateway[self.meter_ids[m]],
                                      float(self._t(m, s)), float(self._t(m, r)) if r < H else None))

        for i, m in enumerate(chosen[sc.no_use:]):
            resume = i % 2 == 0
            if resume:
                s = int(rng.integers(lead, H - 11 + 1))
                k = int(rng.integers(6, min(24, H - 5 - s) + 1))  # missing hours
                r = s + 1 + k  # first reading after the gap, <= H - 4
            else:
                s = int(rng.integers(max(lead, H - 31), H - 7 + 1))
                r = H
            self._silent.append((m, s + 1, r))
            incidents.append(Incident("meter_silent", self.meter_ids[m],
                                      self.meter_gateway[self.meter_ids[m]],
                                      float(self._t(m, s)), float(self._t(m, r)) if r < H else None))

        for g in out_gws:
            L = int(rng.integers(4, 9))
            L = min(L, H - 9)  # o >= lead + 1, o + L <= H - 4
            o = int(rng.integers(lead + 1, H - 4 - L + 1))
            self._outage.append((g, o, o + L))
            a, b = int(self._gw_bounds[g]), int(self._gw_bounds[g + 1])
            offs = self._offsets[a:b]
            incidents.append(Incident(
                "gateway_outage", self.gateway_ids[g], self.gateway_ids[g],
                float(self.start + (o - 1) * 3600 + int(offs.max())),
                float(self.start + (o + L) * 3600 + int(offs.min()))))
        self.incidents: list[Incident] = incidents

    def _night_hours(self) -> list[int]:
        """City-hours at 02:00 of the nights a district can be judged on: readings at 02, 03 and 04 h
        and, to let the night close, until 06 h, before the run's end margin."""
        first = (NIGHT_START_HOUR - (self.start // 3600) % 24) % 24
        return [h for h in range(first, self.n_hours, 24) if h + 4 + END_MARGIN_HOURS <= self.n_hours]

    def _daytime_hour(self, rng, low: int, high: int) -> int | None:
        """A city-hour in [low, high] whose UTC hour is within DAYTIME_HOURS, or None."""
        hours = [h for h in range(max(low, 0), high + 1)
                 if DAYTIME_HOURS[0] <= (self.start // 3600 + h) % 24 <= DAYTIME_HOURS[1]]
        return int(rng.choice(hours)) if hours else None

    def _plan_flow_incidents(self, rng: np.random.Generator) -> None:
        """Continuous flow, bursts, backflow, device alarms and district night-flow rises."""
        sc, H, N = self.scenario, self.n_hours, self.n_meters
        counts = self.flow_counts
        lead = INCIDENT_LEAD_HOURS
        self._nominal = np.asarray(NOMINAL_FLOWS)[(rng.random(N) < 0.2).astype(np.int64)]
        self._leak: list[tuple[int, int, int, int]] = []  # (meter, first leaking hour, repair hour, L/h)
        self._burst: list[tuple[int, int, int, int, float]] = []  # (meter, hour s, hours, offset s, m3/h)
        self._backflow: list[tuple[int, int, int, int]] = []  # (meter, hour s, hours, L/h)
        self._alarm: list[tuple[int, int, int, int]] = []  # (meter, first hour, first quiet hour, code)
        # meter -> (first hour, repair hour, L/h, UTC hour of its daily rest)
        self._night_leak: dict[int, tuple[int, int, int, int]] = {}
        outage = {g for g, _a, _b in self._outage}
        used = {m for m, _s, _r in self._no_use} | {m for m, _a, _b in self._silent}
        free = [m for m in range(N) if m not in used
                and int(np.searchsorted(self._gw_bounds, m, side="right")) - 1 not in outage]
        per_meter = counts["continuous_flow"] + counts["burst"] + counts["backflow"] + counts["device_alarm"]
        if per_meter > len(free):
            raise ValueError(f"{per_meter} flow incidents need as many meters without other incidents; "
                             f"only {len(free)} available")
        chosen = [int(m) for m in rng.choice(free, per_meter, replace=False)] if per_meter else []
        incidents = self.incidents

        def add(kind, m, start, end):
            meter = self.meter_ids[m]
            incidents.append(Incident(kind, meter, self.meter_gateway[meter], float(start),
                                      None if end is None else float(end),
                                      self.district_ids[self.meter_district[m]]))

        take = iter(chosen)
        if counts["continuous_flow"] and H < lead + NO_USE_HOURS + 2:
            raise ValueError(f"scenario too short: continuous_flow incidents need >= {lead + NO_USE_HOURS + 2} "
                             f"city-hours, got {H}")
        for i in range(counts["continuous_flow"]):
            m = next(take)
            s = int(rng.integers(lead, H - NO_USE_HOURS - 2 + 1))
            r = H
            if i % 2 == 0 and s + NO_USE_HOURS + 2 + END_MARGIN_HOURS + 1 <= H - END_MARGIN_HOURS:
                r = int(rng.integers(s + NO_USE_HOURS + 2, H - END_MARGIN_HOURS + 1))
            self._leak.append((m, s, r, int(rng.integers(*CONTINUOUS_LEAK_LITRES, endpoint=True))))
            add("continuous_flow", m, self._t(m, s), self._t(m, r) if r < H else None)
        for kind, plan in (("burst", self._burst), ("backflow", self._backflow)):
            for i in range(counts[kind]):
                m = next(take)
                length = int(rng.integers(1, 4) if kind == "burst" else rng.integers(2, 5))
                s = self._daytime_hour(rng, lead, H - END_MARGIN_HOURS - length - 2)
                if s is None:
                    raise ValueError(f"scenario too short: {kind} incidents need a daytime hour")
                if kind == "burst":
                    offset = int(rng.integers(0, 1201))
                    flow = float(np.round(rng.uniform(*BURST_SHARE) * self._nominal[m], 3))
                    plan.append((m, s, length, offset, flow))
                    add(kind, m, self._t(m, s) + offset, self._t(m, s + length + 1))
                else:
                    plan.append((m, s, length, int(rng.integers(*BACKFLOW_LITRES, endpoint=True))))
                    add(kind, m, self._t(m, s), self._t(m, s + length + 1))
        for i in range(counts["device_alarm"]):
            m = next(take)
            s = int(rng.integers(lead, H - 6))
            r = H if i % 2 else min(H, s + int(rng.integers(2, 9)))
            self._alarm.append((m, s, r, 1 + i % len(DEVICE_ALARM_KINDS)))
            add("device_alarm", m, self._t(m, s), self._t(m, r + 1) if r + 1 < H else None)
            if r + 1 >= H:
                self._alarm[-1] = (m, s, H, self._alarm[-1][3])
        # night flow: districts whose households start small leaks between two judged nights
        nights = self._night_hours()
        if sc.night_flow is None:   # planted by default only where the run allows it
            counts["night_flow"] = min(counts["night_flow"], self.n_districts) if len(nights) >= 3 else 0
        if counts["night_flow"]:
            if len(nights) < 3:
                raise ValueError("scenario too short: night_flow incidents need three 02:00-04:00 nights in the "
                                 f"run (two to learn the level, one risen), got {len(nights)}")
            if counts["night_flow"] > self.n_districts:
                raise ValueError(f"night_flow={counts['night_flow']} exceeds the {self.n_districts} districts")
            taken = set(chosen)
            for i, d in enumerate(sorted(rng.choice(self.n_districts, counts["night_flow"], replace=False))):
                k = int(rng.integers(2, len(nights)))            # the first risen night
                rise = nights[k]
                begins = int(rng.integers(rise - 16, rise - 5))   # leaks start the day before the risen night
                repair = H
                if i % 2 == 0 and k + 1 < len(nights):
                    repair = int(rng.integers(rise + 3, nights[k + 1] - 2))   # fixed before the next night
                members = [m for m in np.flatnonzero(self.meter_district == d).tolist()
                           if m not in taken and m not in used]
                leaky = rng.choice(members, int(round(NIGHT_LEAK_SHARE * len(members))), replace=False)
                for m in sorted(int(x) for x in leaky):
                    self._night_leak[m] = (begins, repair, int(rng.integers(*NIGHT_LEAK_LITRES, endpoint=True)),
                                           int(rng.integers(*NIGHT_LEAK_QUIET_HOURS, endpoint=True)))
                district = self.district_ids[d]
                gateways = [self.gateway_ids[g] for g in np.flatnonzero(self._gw_district == d)]
                incidents.append(Incident("night_flow", district, gateways[0], float(self.start + rise * 3600),
                                          None if repair >= H else float(self.start + nights[k + 1] * 3600),
                                          district))

    def _plan_routine_changes(self, rng: np.random.Generator) -> None:
        """Households whose daily rhythm shifts, on meters without any other incident."""
        self._routine: list[tuple[int, int, float, int]] = []  # (meter, first shifted s, back s or inf, hours)
        count = self.scenario.routine_change
        if not count:
            return
        first = -(-self.start // 86400) * 86400 + ROUTINE_LEAD_DAYS * 86400   # a UTC midnight
        last = self.end - ROUTINE_SEEN_DAYS * 86400   # starts leave days of the new rhythm to be seen in
        if first > last:
            raise ValueError(f"scenario too short: routine_change incidents need >= "
                             f"{ROUTINE_LEAD_DAYS + ROUTINE_SEEN_DAYS + 1} days (the detector's warm-up, then days of "
                             f"the new rhythm), got {self.scenario.days}")
        outage = {g for g, _a, _b in self._outage}
        taken = ({m for m, _s, _r in self._no_use} | {m for m, _a, _b in self._silent} | set(self._night_leak)
                 | {m for m, *_rest in self._leak} | {m for m, *_rest in self._burst}
                 | {m for m, *_rest in self._backflow} | {m for m, *_rest in self._alarm})
        free = [m for m in range(self.n_meters) if m not in taken
                and int(np.searchsorted(self._gw_bounds, m, side="right")) - 1 not in outage]
        if count > len(free):
            raise ValueError(f"{count} routine changes need as many meters without other incidents; "
                             f"only {len(free)} available")
        # a routine that returns leaves its first day back and the reading that closes it within the run
        last_returning = self.end - (ROUTINE_SHIFT_DAYS + 1) * 86400 - END_MARGIN_HOURS * 3600
        for i, m in enumerate(sorted(int(x) for x in rng.choice(free, count, replace=False))):
            returns = i % 2 == 0 and first <= last_returning
            latest = last_returning if returns else last
            start = int(first + 86400 * rng.integers(0, (latest - first) // 86400 + 1))
            back = start + ROUTINE_SHIFT_DAYS * 86400
            hours = int(ROUTINE_SHIFT_HOURS[int(rng.integers(0, len(ROUTINE_SHIFT_HOURS)))])
            self._routine.append((m, start, float(back) if returns else math.inf, hours))
            meter = self.meter_ids[m]
            self.incidents.append(Incident("routine_change", meter, self.meter_gateway[meter], float(start),
                                           float(back) if returns else None,
                                           self.district_ids[self.meter_district[m]]))

    def _reporting(self, h: int) -> np.ndarray:
        rep = np.ones(self.n_meters, dtype=bool)
        for m, a, b in self._silent:
            if a <= h < b:
                rep[m] = False
        for g, a, b in self._outage:
            if a <= h < b:
                rep[self._gw_bounds[g]: self._gw_bounds[g + 1]] = False
        return rep

    def _plan_malformed(self, rng: np.random.Generator) -> None:
        M, H = self.scenario.malformed, self.n_hours
        self.malformed: list[dict] = []
        self._malformed_at: dict[int, list[dict]] = {}
        bounds = self._gw_bounds
        for n in range(M):
            h = min(H - 1, int((n + 0.5) * H / M))
            rep = self._reporting(h)
            per_gw = np.add.reduceat(rep.astype(np.int64), bounds[:-1])
            candidates = np.flatnonzero(per_gw > 0)
            if candidates.size == 0:
                raise ValueError(f"no gateway is sending in city-hour {h}; cannot place malformed items")
            g = int(rng.choice(candidates))
            item = {"n": n, "hour": h, "kind": MALFORMED_KINDS[n % len(MALFORMED_KINDS)],
                    "key": self._key_of_gw[g].decode(), "gateway": self.gateway_ids[g], "id": bad_meter_id(n)}
            self.malformed.append(item)
            self._malformed_at.setdefault(h, []).append({**item, "_g": g})

    # -------------------------------------------------------------- generation
    def _malformed_bytes(self, item: dict, base: int) -> bytes:
        kind, gw, bid = item["kind"], item["gateway"], item["id"]
        t = _iso(base + 30)
        if kind == "invalid_json":
            return (b'{"id":"' + bid.encode() + b'","type":"WaterConsumptionObserved",'
                    b'"dateObserved":"' + t.encode() + b'","waterConsump')
        if kind == "non_finite":
            return (b'{"id":"' + bid.encode() + b'","type":"WaterConsumptionObserved",'
                    b'"dateObserved":"' + t.encode() + b'","waterConsumption":1e999,'
                    b'"gatewayId":"' + gw.encode() + b'"}')
        r = {"id": bid, "type": READING_TYPE, "dateObserved": t, "waterConsumption": 123.456,
             "gatewayId": gw}
        if kind == "missing_field":
            del r["dateObserved"]
        elif kind == "negative_index":
            r["waterConsumption"] = -12.345
        elif kind == "wrong_type":
            r["waterConsumption"] = "123.456"
        elif kind == "bad_timestamp":
            r["dateObserved"] = "2026-13-45T25:61:99Z"
        elif kind == "timestamp_out_of_range":
            r["dateObserved"] = "1999-06-15T12:00:00Z"
        else:  # pragma: no cover - bad_reading_in_envelope is built in hours()
            raise AssertionError(kind)
        return orjson.dumps(r)

    def hours(self) -> Iterator[tuple[float, list[tuple[bytes, bytes]]]]:
        """Yield ``(hour_start_epoch_s, [(key, value), ...])`` for every city-hour, in order."""
        sc, N, H = self.scenario, self.n_meters, self.n_hours
        rng = np.random.default_rng([sc.seed, 1])
        index = self._init_index.copy()
        idle = np.zeros(N, dtype=np.int64)  # consecutive hours without use
        busy = np.zeros(N, dtype=np.int64)  # consecutive hours with use
        flow_rng = np.random.default_rng([sc.seed, 3])
        nominal_l = self._nominal.tolist()
        district_l = [self.district_ids[d] for d in self.meter_district.tolist()]
        location_l = self._meter_points
        night_leak = np.zeros(N, dtype=np.int64)
        night_begin = np.full(N, H + 1, dtype=np.int64)
        night_repair = np.zeros(N, dtype=np.int64)
        night_quiet = np.full(N, -1, dtype=np.int64)
        for m, (b, r, litres, quiet) in self._night_leak.items():
            night_leak[m], night_begin[m], night_repair[m], night_quiet[m] = litres, b, r, quiet
        first_hour = (self.start // 3600) % 24
        alarms = {}
        for m, a, r, code in self._alarm:
            for hh in range(a, r):
                alarms.setdefault(hh, []).append((m, DEVICE_ALARM_KINDS[code - 1]))
        offsets, scale, prof = self._offsets, self._scale, self._profile_of
        bounds = self._gw_bounds
        gw_keys = self._key_of_gw
        share = sc.single_reading_share
        no_use_s = {}
        for m, s, r in self._no_use:
            no_use_s.setdefault(s, []).append(m)
        for h in range(H):
            base = self.start + h * 3600
            # ---- usage since the previous reading (hour 0 shows the initial index)
            mid = base + offsets - 1800
            cell = (((mid // 86400) + 3) % 7) * 24 + (mid // 3600) % 24
            for m, a, b, hours in self._routine:   # a shifted rhythm: this hour's use is that of hours later
                if a <= mid[m] < b:
                    later = mid[m] + hours * 3600
                    cell[m] = (((later // 86400) + 3) % 7) * 24 + (later // 3600) % 24
            mean = self._prof_mean[prof, cell]
            p = self._prof_p[prof, cell]
            u_draw = rng.random(N)
            g_draw = rng.gamma(1.5, 1.0, N)
            small = rng.integers(1, 6, N)
            single_draw = rng.random(N)
            peak = flow_rng.uniform(*NORMAL_PEAK, N)
            if sc.noise_scale != 1.0:
                middle = sum(NORMAL_PEAK) / 2
                peak = np.maximum(middle + sc.noise_scale * (peak - middle), 0.0)
            if h == 0:
                amount = np.zeros(N, dtype=np.int64)
            else:
                cond = mean / np.maximum(p, 0.01) * scale / 1.5
                amount = np.where(u_draw < p, np.maximum(1, np.rint(g_draw * cond)), 0)
                amount = np.minimum(amount, MAX_LITRES_PER_HOUR).astype(np.int64)
                forced = (amount == 0) & (idle >= MAX_IDLE_HOURS)
                amount[forced] = small[forced]
                leaking = (night_begin < h) & (h <= night_repair)   # intermittent night-flow leaks
                amount = np.where(leaking, amount + night_leak, amount)
                amount[night_quiet == (first_hour + h) % 24] = 0
                amount[busy >= MAX_BUSY_HOURS] = 0  # households and intermittent leaks rest now and then
                for m in no_use_s.get(h, ()):  # last increase before the freeze
                    if amount[m] == 0:
                        amount[m] = small[m]
                for m, s, r in self._no_use:
                    if s < h < r:
                        amount[m] = 0
                    elif h == r and amount[m] == 0:
                        amount[m] = small[m]
                for m, a, r in self._silent:  # the index has grown when it comes back
                    if h == r and amount[m] == 0:
                        amount[m] = small[m]
            peak = np.where(amount > 0, np.maximum(peak, amount / 1000.0), 0.0)
            if h > 0:
                for m, s, r, litres in self._leak:  # runs on through the hour; the repair hour is still
                    if s < h < r:
                        amount[m] += litres
                        peak[m] = max(peak[m], amount[m] / 1000.0)
                    elif h == r or h == s:   # still before the leak and after its repair
                        amount[m], peak[m] = 0, 0.0
                for m, s, length, offset, flow in self._burst:
                    if s < h <= s + length:
                        part = (3600 - offset) / 3600.0 if h == s + 1 else 1.0
                        amount[m] += int(round(flow * part * 1000))
                        peak[m] = flow
                for m, s, length, litres in self._backflow:
                    if s < h <= s + length:
                        amount[m], peak[m] = -litres, litres / 1000.0
            idle = np.where(amount > 0, 0, idle + 1)
            busy = np.where(amount > 0, busy + 1, 0)
            index += amount

            # ---- what is sent this hour
            reporting = self._reporting(h)
            rep = np.flatnonzero(reporting)
            single = single_draw[rep] < share
            mal = self._malformed_at.get(h, ())
            env_bad = {it["_g"]: it for it in mal if it["kind"] == "bad_reading_in_envelope"}
            for g in env_bad:  # keep at least one real sibling in that envelope
                a, b = np.searchsorted(rep, (bounds[g], bounds[g + 1]))
                if b > a and single[a:b].all():
                    single[a] = False
            dates = np.array([_iso(base + o) for o in range(60)], dtype=object)
            ids_l = self._ids_obj[rep].tolist()
            dates_l = dates[offsets[rep]].tolist()
            vals_l = (index[rep] / 1000.0).tolist()
            peak_l = np.round(peak[rep], 3).tolist()
            readings = [
                {"id": i, "type": READING_TYPE, "dateObserved": d, "waterConsumption": v, "maxFlowLastHour": f,
                 "nominalFlow": nominal_l[m], "district": district_l[m], "location": location_l[m]}
                for i, d, v, f, m in zip(ids_l, dates_l, vals_l, peak_l, rep.tolist())
            ]
            if h in alarms:
                position = {m: j for j, m in enumerate(rep.tolist())}
                for m, kind in alarms[h]:
                    if m in position:
                        readings[position[m]]["deviceAlarm"] = kind
            cuts = np.searchsorted(rep, bounds).tolist()
            single_pos = np.flatnonzero(single)
            single_cut = np.searchsorted(single_pos, cuts).tolist()
            single_pos_l = single_pos.tolist()
            mal_by_gw: dict[int, list[dict]] = {}
            for it in mal:
                mal_by_gw.setdefault(it["_g"], []).append(it)

            out: list[tuple[bytes, bytes]] = []
            for g in range(self.n_gateways):
                a, b = cuts[g], cuts[g + 1]
                sa, sb = single_cut[g], single_cut[g + 1]
                key = gw_keys[g]
                gw = self.gateway_ids[g]
                if sa == sb:
                    env = readings[a:b]
                    singles = []
                else:
                    sset = set(single_pos_l[sa:sb])
                    env = [readings[j] for j in range(a, b) if j not in sset]
                    singles = [readings[j] for j in single_pos_l[sa:sb]]
                bad = env_bad.get(g)
                if bad is not None:
                    env = env + [{"id": bad["id"], "type": READING_TYPE,
                                  "dateObserved": _iso(base + 30), "waterConsumption": -1.0}]
                if env:
                    out.append((key, orjson.dumps({
                        "type": BATCH_TYPE, "gatewayId": gw, "location": self._gateway_points[g],
                        "dateSent": _iso(base + 60 + g % 10), "readings": env})))
                for r in singles:
                    out.append((key, orjson.dumps({**r, "gatewayId": gw})))
                for it in mal_by_gw.get(g, ()):
                    if it["kind"] != "bad_reading_in_envelope":
                        out.append((key, self._malformed_bytes(it, base)))
            yield float(base), out

    # ------------------------------------------------------------ ground truth
    def steps(self) -> Iterator[tuple[float, list[tuple[bytes, bytes]]]]:
        """The common simulation interface: (city time, messages) in time order; here, one per hour."""
        return self.hours()

    def ground_truth(self) -> dict:
        scen = asdict(self.scenario)
        return {
            "scenario": scen,
            "start": self.start,
            "end": self.end,
            "start_time": _iso(self.start),
            "end_time": _iso(self.end),
            "hours": self.n_hours,
            "meters": self.n_meters,
            "gateways": self.n_gateways,
            "districts": self.n_districts,
            "valid_readings": self.valid_readings,
            "incidents": [i.to_json() for i in self.incidents],
            "malformed": [dict(m) for m in self.malformed],
            "profiles": {"count": len(self.profiles), "attribution": ATTRIBUTION},
            "note": "incidents and malformed items are synthetic labels of our own making; "
                    "household rhythms are derived from real DAIAD data",
        }


def simulate_water(scenario: WaterScenario, profiles: Profiles | None = None) -> WaterSimulation:
    """Plan a synthetic water-city run; iterate ``.hours()`` to stream its messages."""
    return WaterSimulation(scenario, profiles)
