"""Pure Numba kernels: arrays and scalars in, arrays out.

Contract: every kernel is a private ``@njit`` function ``_name(...)`` that writes
into preallocated arrays and does no I/O, next to a public wrapper ``name(...)``
that validates dtypes and shapes and then calls it. Nothing here knows Kafka,
Faust, dicts of state or the wire format. Numba flags and numeric constants live
in :mod:`kernels.config`.
"""

from kernels.lighting import (
    lighting_energy,
    night_seconds,
    solar_elevation,
    sun_times,
    update_cycling,
    update_day_burner,
    update_lamp_failure,
    update_power_out_of_range,
    warm_up_lighting,
)
from kernels.waste import (
    fill_slope_and_level,
    sweep_collection_late,
    update_collection_late,
    update_fill_forecast,
    update_fire,
    update_overflow,
    update_stuck_level,
    warm_up_waste,
)
from kernels.water_flow import (
    backflow,
    burst,
    continuous_flow,
    device_alarm,
    night_flow_accumulate,
    sweep_night_flow,
    warm_up_flow,
)
from kernels.traffic import (
    adjacent_downstream,
    apply_traffic_readings,
    sweep_incident,
    traffic_channels,
    update_stuck,
    warm_up_traffic,
)
from kernels.series import score_series, score_series_episodes, sweep_series_episodes, warm_up_series
from kernels.absence import close_absence, sweep_absence, warm_up_absence
from kernels.cadence import learn_cadence, silence_limits, warm_up_cadence
from kernels.routine import routine_change, warm_up_routine
from kernels.timestamps import iso_utc_seconds, warm_up_timestamps
from kernels.previous import previous_readings, warm_up_previous
from kernels.water import (
    apply_meter_readings,
    sweep_meter_silent,
    sweep_no_use,
)
from kernels.water import warm_up as warm_up_water

__all__ = [
    "adjacent_downstream",
    "apply_traffic_readings",
    "score_series",
    "score_series_episodes",
    "sweep_series_episodes",
    "warm_up_series",
    "sweep_incident",
    "traffic_channels",
    "update_stuck",
    "warm_up_traffic",
    "solar_elevation",
    "sun_times",
    "update_cycling",
    "update_day_burner",
    "update_lamp_failure",
    "update_power_out_of_range",
    "warm_up_lighting",
    "lighting_energy",
    "night_seconds",
    "backflow",
    "burst",
    "continuous_flow",
    "device_alarm",
    "night_flow_accumulate",
    "routine_change",
    "warm_up_routine",
    "warm_up_timestamps",
    "iso_utc_seconds",
    "previous_readings",
    "warm_up_previous",
    "sweep_night_flow",
    "warm_up_flow",
    "apply_meter_readings",
    "close_absence",
    "sweep_absence",
    "learn_cadence",
    "silence_limits",
    "warm_up_cadence",
    "sweep_meter_silent",
    "sweep_no_use",
    "warm_up",
    "fill_slope_and_level",
    "sweep_collection_late",
    "update_collection_late",
    "update_fill_forecast",
    "update_fire",
    "update_overflow",
    "update_stuck_level",
    "warm_up_waste",
]


def warm_up() -> None:
    """Compile (or load from the cache) every domain's kernels at worker start, so no batch waits
    for Numba. Each kernel module warms its own kernels; a new module adds its warm-up here."""
    for warm in (warm_up_previous, warm_up_cadence, warm_up_absence, warm_up_water, warm_up_flow, warm_up_routine,
                 warm_up_traffic, warm_up_series, warm_up_waste, warm_up_lighting, warm_up_timestamps):
        warm()
