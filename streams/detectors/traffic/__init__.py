"""Traffic detectors: one per file, each wrapping kernels of :mod:`kernels.traffic`."""
