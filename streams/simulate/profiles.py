"""Hourly household water-use profiles derived from real smart-meter data.

Source: DAIAD project, swm_trialA (CC-BY-SA 4.0): roughly hourly readings of the
cumulative index (litres) of 92 households in Alicante (ES), 2016-03 to 2017-02.

For every household with enough clean data, a profile holds, for each
(weekday 0-6 Monday=0, hour 0-23) of the local clock:

* ``mean`` -- mean litres used in that hour, zero hours included;
* ``p``    -- probability that the hour has any use at all.

Each reading interval (previous reading, this reading] is attributed to the
weekday/hour of its midpoint. Intervals that cannot be trusted are dropped:
negative differences, gaps longer than 2 h (or shorter than 10 min), more than
2000 L per hour. Differences over intervals other than one hour are scaled to
litres per hour. Households with fewer than ``MIN_HOURS`` clean hours, or with a
(weekday, hour) cell seen fewer than ``MIN_CELL`` times, are skipped. Household
keys are not kept: profiles are numbered 0..n-1.

Rebuild the committed file with::

    python -m streams.simulate.profiles --input swm_trialA.zip \\
        --output streams/simulate/daiad_profiles.json
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

__all__ = [
    "ATTRIBUTION",
    "DEFAULT_PROFILES_PATH",
    "Profiles",
    "build_profiles",
    "load_profiles",
    "main",
]

ATTRIBUTION = "DAIAD project, swm_trialA, CC-BY-SA 4.0"
DEFAULT_PROFILES_PATH = Path(__file__).with_name("daiad_profiles.json")

MAX_GAP_S = 2 * 3600
MIN_GAP_S = 600
MAX_LITRES_PER_HOUR = 2000.0
MIN_HOURS = 24 * 7 * 8  # eight weeks of clean hours
MIN_CELL = 4  # each (weekday, hour) cell seen at least this often


@dataclass(frozen=True)
class Profiles:
    """Profiles as arrays: ``mean`` and ``p`` of shape (n_profiles, 7, 24)."""

    mean: np.ndarray
    p: np.ndarray
    attribution: str = ATTRIBUTION

    def __len__(self) -> int:
        return int(self.mean.shape[0])


def _read_csv(zip_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (household index, local epoch seconds, cumulative index litres)."""
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if n.endswith(".csv")]
        if not names:
            raise ValueError(f"{zip_path}: no .csv file inside the archive")
        with zf.open(names[0]) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8").read()
    lines = text.splitlines()
    header = lines[0].lower()
    if "user key" not in header or "meter reading" not in header:
        raise ValueError(f"{zip_path}: unexpected header {lines[0]!r}")
    keys: dict[str, int] = {}
    hh = np.empty(len(lines) - 1, dtype=np.int32)
    iso = []
    reading = np.empty(len(lines) - 1, dtype=np.float64)
    n = 0
    for line in lines[1:]:
        parts = line.split(";")
        if len(parts) < 3:
            continue
        key, dt, value = parts[0], parts[1], parts[2]
        try:
            reading[n] = float(value)
        except ValueError:
            continue
        # DD/MM/YYYY HH:MM:SS -> YYYY-MM-DDTHH:MM:SS (local clock, kept naive)
        iso.append(f"{dt[6:10]}-{dt[3:5]}-{dt[0:2]}T{dt[11:19]}")
        hh[n] = keys.setdefault(key, len(keys))
        n += 1
    t = np.array(iso, dtype="datetime64[s]").astype(np.int64)
    return hh[:n], t, reading[:n]


def build_profiles(zip_path: str | Path) -> dict:
    """Derive the profile document (JSON-able dict) from the DAIAD zip archive."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"DAIAD archive not found: {zip_path}")
    hh, t, reading = _read_csv(zip_path)
    order = np.lexsort((t, hh))
    hh, t, reading = hh[order], t[order], reading[order]

    same = hh[1:] == hh[:-1]
    gap = (t[1:] - t[:-1]).astype(np.float64)
    diff = reading[1:] - reading[:-1]
    ok = same & (gap >= MIN_GAP_S) & (gap <= MAX_GAP_S) & (diff >= 0)
    rate = np.where(ok, diff * 3600.0 / np.where(gap > 0, gap, 1.0), 0.0)
    ok &= rate <= MAX_LITRES_PER_HOUR
    mid = t[:-1] + (t[1:] - t[:-1]) // 2
    hour = (mid // 3600) % 24
    weekday = ((mid // 86400) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    h_ok, rate_ok = hh[1:][ok], rate[ok]
    cell = weekday[ok] * 24 + hour[ok]

    n_hh = int(hh.max()) + 1 if hh.size else 0
    flat = h_ok.astype(np.int64) * 168 + cell
    count = np.bincount(flat, minlength=n_hh * 168).reshape(n_hh, 168)
    total = np.bincount(flat, weights=rate_ok, minlength=n_hh * 168).reshape(n_hh, 168)
    used = np.bincount(flat, weights=(rate_ok > 0).astype(float), minlength=n_hh * 168)
    used = used.reshape(n_hh, 168)

    households = []
    skipped = 0
    # Stable order independent of the file's key order: sort kept households by volume.
    for i in range(n_hh):
        c = count[i]
        if c.sum() < MIN_HOURS or c.min() < MIN_CELL:
            skipped += 1
            continue
        mean = total[i] / c
        p = used[i] / c
        households.append((mean.reshape(7, 24), p.reshape(7, 24), int(c.sum())))
    households.sort(key=lambda x: (-float(x[0].sum()), x[2]))
    return {
        "attribution": ATTRIBUTION,
        "source": "swm_trialA.csv (DAIAD project data repository)",
        "description": (
            "Hourly water-use profiles of real households: for each profile, mean[weekday][hour] "
            "= mean litres used in that local hour (zero hours included) and p[weekday][hour] = "
            "probability that the hour has any use; weekday 0 = Monday. Interval (previous, this "
            "reading] attributed to its midpoint; dropped: negative diffs, gaps > 2 h or < 10 min, "
            f"> {MAX_LITRES_PER_HOUR:g} L/h. Households with < {MIN_HOURS} clean hours or a cell "
            f"seen < {MIN_CELL} times skipped. Household keys are not kept."
        ),
        "households_in_source": n_hh,
        "households_skipped": skipped,
        "profiles": [
            {
                "hours": n,
                "mean": np.round(mean, 1).tolist(),
                "p": np.round(p, 2).tolist(),
            }
            for mean, p, n in households
        ],
    }


def load_profiles(path: str | Path | None = None) -> Profiles:
    """Load the committed profile file (default: ``daiad_profiles.json`` beside this module)."""
    doc = orjson.loads(Path(path or DEFAULT_PROFILES_PATH).read_bytes())
    profs = doc["profiles"]
    if not profs:
        raise ValueError("profile file holds no profiles")
    mean = np.array([p["mean"] for p in profs], dtype=np.float64)
    p = np.clip(np.array([p["p"] for p in profs], dtype=np.float64), 0.0, 1.0)
    if mean.shape[1:] != (7, 24) or p.shape != mean.shape:
        raise ValueError(f"bad profile shapes {mean.shape} / {p.shape}")
    return Profiles(mean=mean, p=p, attribution=doc.get("attribution", ATTRIBUTION))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m streams.simulate.profiles",
        description="Derive hourly water-use profiles from the DAIAD swm_trialA archive.",
    )
    ap.add_argument("--input", default=None, help="path to swm_trialA.zip (required)")
    ap.add_argument("--output", default=str(DEFAULT_PROFILES_PATH), help="profile JSON to write")
    args = ap.parse_args(argv)
    if args.input is None:
        ap.error("--input is required: the path to the DAIAD swm_trialA.zip archive "
                 "(DAIAD project data repository, CC-BY-SA 4.0)")
    try:
        doc = build_profiles(args.input)
    except (FileNotFoundError, ValueError, zipfile.BadZipFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = orjson.dumps(doc)
    Path(args.output).write_bytes(data + b"\n")
    print(f"wrote {len(doc['profiles'])} profiles ({len(data)} bytes) to {args.output}; "
          f"skipped {doc['households_skipped']} households")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
