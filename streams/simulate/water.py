"""Synthetic water city: hourly meter readings with labelled incidents and bad input.

``simulate_water(WaterScenario(...))`` returns a :class:`WaterSimulation` whose
:meth:`WaterSimulation.hours` streams, city-hour by city-hour, the Kafka
``(key, value)`` pairs of the ``glasscity.water.readings.v1`` topic: one
``ReadingBatch`` envelope per gateway and hour, a few single-reading messages,
and injected malformed items. Everything about the run that a detector should
find -- incidents, malformed items, the number of valid readings -- is known right
after construction (see :meth:`WaterSimulation.ground_truth`). The labels are of
our own making; the households' daily rhythms come from real DAIAD data.

Time model. City-hour ``h`` starts at ``start + h*3600``. Meter ``m`` reports at
``t = start + h*3600 + offset_m`` (fixed offset 0-59 s). The reading's index
includes the litres used since its previous reading; that use is drawn from the
meter's household profile at the weekday/hour (UTC clock of the city) of the
interval's midpoint ``t - 1800``. The city clock is UTC: profile hours are
applied to UTC hours.

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

INCIDENT_KINDS = ("no_use", "meter_silent", "gateway_outage")
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
MAX_LITRES_PER_HOUR = 2000


def meter_id(i: int) -> str:
    return f"urn:ngsi-ld:WaterMeter:GC-{i:06d}"


def gateway_id(g: int) -> str:
    return f"gw-{g:04d}"


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
    """

    kind: str
    subject: str
    gateway: str
    start: float
    end: float | None

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "gateway": self.gateway,
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
        if min(sc.no_use, sc.meter_silent, sc.gateway_outage, sc.malformed) < 0:
            raise ValueError("incident and malformed counts must be >= 0")
        if sc.seed < 0:
            raise ValueError("seed must be >= 0")
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

        rng = np.random.default_rng([sc.seed, 0])
        self._offsets = rng.integers(0, 60, N).astype(np.int64)
        self._init_index = rng.integers(10_000, 500_001, N).astype(np.int64)  # litres
        self._scale = rng.uniform(0.6, 1.6, N)
        self._profile_of = np.arange(N) % P

        self._plan_incidents(rng)
        self._plan_malformed(rng)

        missing = sum(b - a for _, a, b in self._silent)
        for g, a, b in self._outage:
            missing += (b - a) * int(self._gw_bounds[g + 1] - self._gw_bounds[g])
        self.valid_readings: int = N * H - missing

    # ---------------------------------------------------------------- planning
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
                    "key": self.gateway_ids[g], "id": bad_meter_id(n)}
            self.malformed.append(item)
            self._malformed_at.setdefault(h, []).append({**item, "_g": g})

    # -------------------------------------------------------------- generation
    def _malformed_bytes(self, item: dict, base: int) -> bytes:
        kind, gw, bid = item["kind"], item["key"], item["id"]
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
        offsets, scale, prof = self._offsets, self._scale, self._profile_of
        bounds = self._gw_bounds
        gw_bytes = [g.encode() for g in self.gateway_ids]
        share = sc.single_reading_share
        no_use_s = {}
        for m, s, r in self._no_use:
            no_use_s.setdefault(s, []).append(m)
        for h in range(H):
            base = self.start + h * 3600
            # ---- usage since the previous reading (hour 0 shows the initial index)
            mid = base + offsets - 1800
            cell = (((mid // 86400) + 3) % 7) * 24 + (mid // 3600) % 24
            mean = self._prof_mean[prof, cell]
            p = self._prof_p[prof, cell]
            u_draw = rng.random(N)
            g_draw = rng.gamma(1.5, 1.0, N)
            small = rng.integers(1, 6, N)
            single_draw = rng.random(N)
            if h == 0:
                amount = np.zeros(N, dtype=np.int64)
            else:
                cond = mean / np.maximum(p, 0.01) * scale / 1.5
                amount = np.where(u_draw < p, np.maximum(1, np.rint(g_draw * cond)), 0)
                amount = np.minimum(amount, MAX_LITRES_PER_HOUR).astype(np.int64)
                forced = (amount == 0) & (idle >= MAX_IDLE_HOURS)
                amount[forced] = small[forced]
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
            idle = np.where(amount > 0, 0, idle + 1)
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
            readings = [
                {"id": i, "type": READING_TYPE, "dateObserved": d, "waterConsumption": v}
                for i, d, v in zip(ids_l, dates_l, vals_l)
            ]
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
                key = gw_bytes[g]
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
                        "type": BATCH_TYPE, "gatewayId": gw,
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
