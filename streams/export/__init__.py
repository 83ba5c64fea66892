"""Standard exports: glasscity's readings and alerts as NGSI-LD entities of the FIWARE Smart Data Models.

:mod:`streams.export.entities` holds the pure mapping (reading -> WaterConsumptionObserved,
TrafficFlowObserved, WasteContainer or Streetlight; alert event -> Alert; key-values ->
normalized), :mod:`streams.export.sources` where entities come from (a file, the topics),
:mod:`streams.export.post` the batch upsert to an NGSI-LD broker, and
:mod:`streams.export.cli` the ``glasscity export`` command. Knows no Faust.
"""

from streams.export.entities import alert_entity, normalized, observation_entity
from streams.export.post import PostReport, post_entities
from streams.export.sources import ExportReport, message_entities

__all__ = ["alert_entity", "normalized", "observation_entity", "PostReport", "post_entities", "ExportReport",
           "message_entities"]
