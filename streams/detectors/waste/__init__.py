"""Waste detectors: one per file, each wrapping a kernel of :mod:`kernels.waste`."""
