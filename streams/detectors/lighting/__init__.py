"""Lighting detectors: one per file, each wrapping a kernel of :mod:`kernels.lighting`.

Alarm names follow the TALQ smart-city lighting vocabulary where it has one
(``Declaration.alarm_name``). Subjects are lamp ids (``Streetlight`` readings);
control-cabinet readings are read by none of them.
"""
