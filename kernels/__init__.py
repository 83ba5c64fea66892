"""Pure Numba kernels: arrays and scalars in, arrays out.

Contract: every kernel is a private ``@njit`` function ``_name(...)`` that writes
into preallocated arrays and does no I/O, next to a public wrapper ``name(...)``
that validates dtypes and shapes and then calls it. Nothing here knows Kafka,
Faust, dicts of state or the wire format. Numba flags and numeric constants live
in :mod:`kernels.config`.
"""

from kernels.water import (
    apply_meter_readings,
    sweep_gateway_outage,
    sweep_meter_silent,
    sweep_no_use,
    warm_up,
)

__all__ = [
    "apply_meter_readings",
    "sweep_gateway_outage",
    "sweep_meter_silent",
    "sweep_no_use",
    "warm_up",
]
