"""Feed-level detectors: whole gateways or head-ends going quiet."""
