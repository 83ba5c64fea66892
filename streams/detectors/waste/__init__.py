"""Waste detectors: one per file, each wrapping a kernel of :mod:`kernels.waste` (or, for ``waste.silent``,
the shared absence sweep of :mod:`kernels.absence`)."""
