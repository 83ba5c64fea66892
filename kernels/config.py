"""Numba flags and the numeric constants the kernels share.

``NJIT`` is the one set of compile options every kernel uses: ``cache=True`` so a
worker or the demo does not pay seconds of compilation on each start (the cache
goes to ``NUMBA_CACHE_DIR`` when set, else beside the module), ``nogil`` so a
kernel does not hold the GIL while it runs.
"""

import numpy as np

__all__ = ["NJIT", "MIN_USE_M3", "READING_CODES", "TRANSITION_CODES",
           "APPLIED_USE", "APPLIED_FLAT", "APPLIED_NEW", "APPLIED_BACKWARDS", "SKIPPED_STALE", "SKIPPED_INVALID",
           "NO_CHANGE", "RAISED", "CLEARED", "NOT_SET"]

NJIT = {"cache": True, "nogil": True, "fastmath": False}

#: Smallest rise of a cumulative index (m3) that counts as use: half a litre, below
#: the 1 L resolution of household meters, so rounding noise is never "use".
MIN_USE_M3 = 0.0005

#: Per-reading outcome codes written by ``apply_meter_readings``.
APPLIED_USE = 0        # index rose by at least MIN_USE_M3: water was used
APPLIED_FLAT = 1       # index unchanged: reported, no use
APPLIED_NEW = 2        # first reading of a meter: baseline set
APPLIED_BACKWARDS = 3  # index went down (meter swap, reverse flow): baseline reset, not use
SKIPPED_STALE = 4      # not newer than the meter's last reading (duplicate or out of order)
SKIPPED_INVALID = 5    # timestamp or index not finite, or slot out of range
READING_CODES = ("use", "flat", "new", "backwards", "stale", "invalid")

#: Per-subject transition codes written by the sweep kernels.
NO_CHANGE = 0
RAISED = 1
CLEARED = 2
TRANSITION_CODES = ("none", "raised", "cleared")

#: Marks "no value" in float64 state arrays (no episode open, never seen).
NOT_SET = np.nan
