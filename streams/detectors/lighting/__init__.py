"""Lighting detectors: one per file, each wrapping a kernel of :mod:`kernels.lighting` (or, for
``lighting.silent``, the shared absence sweep of :mod:`kernels.absence`).

Alarm names follow the TALQ smart-city lighting vocabulary where it has one
(``Declaration.alarm_name``). Subjects are lamp ids (``Streetlight`` readings); control-cabinet
readings are read only by ``lighting.silent``, which also judges a cabinet that stops reporting.
"""
