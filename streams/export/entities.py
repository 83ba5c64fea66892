"""Readings and alert events as NGSI-LD entities of the FIWARE Smart Data Models (pure functions).

Contract:

* :func:`observation_entity` turns one decoded reading (the wire format's dict, as
  :meth:`streams.ingest.Batch.reading` gives it) and its published subject into the
  key-values entity of its Smart Data Model: water -> ``WaterConsumptionObserved``,
  traffic -> ``TrafficFlowObserved``, waste -> ``WasteContainer``, lamp readings ->
  ``Streetlight``. A reading of a kind without a model here (a control cabinet's
  ``StreetlightControlCabinet`` reading: the model requires the lamp groups it feeds,
  which no reading carries) gives None.
* :func:`alert_entity` turns an alert CloudEvent (:func:`streams.alerts.alert_event`)
  into an SDM ``Alert``; :func:`is_restricted` says which events are never exported
  (those of detectors publishing to the restricted welfare topic).
* :func:`normalized` rewrites a key-values entity in the NGSI-LD normalized form
  (``Property`` / ``Relationship`` / ``GeoProperty`` with ``observedAt``), which every
  NGSI-LD broker accepts in a batch upsert.

Ids are ``urn:ngsi-ld:<Type>:<subject>`` where the subject is what alerts publish: a
household meter's pseudonym (``wm-<32 hex>``), never its raw id; a device id that is
already an NGSI-LD URN (``urn:ngsi-ld:WasteContainer:GC-000001``) is kept as it is. An
alert's id is ``urn:ngsi-ld:Alert:<episodeId>``: its raised and cleared events upsert the
same entity. ``@context`` lists the model's context and the NGSI-LD core context as URLs;
nothing is fetched.

``location`` (a GeoJSON Point) is copied when the reading has one. ``WasteContainer`` and
``Streetlight`` require a location in their model, so without it their entities are
valid NGSI-LD but not complete Smart Data Models entities (docs/ngsi-ld.md).
Units follow the models: ``waterConsumption`` is whole cubic metres (the model's integer;
the meter's register digits), flows in m3/h, power in W, speeds in km/h.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from streams.timeparse import reading_time

__all__ = ["CORE_CONTEXT", "MODEL_CONTEXTS", "SDM_SEVERITY", "SDM_CATEGORY", "entity_id", "observation_entity",
           "alert_entity", "is_restricted", "normalized", "domain_of_type"]

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
_SDM = "https://raw.githubusercontent.com/smart-data-models/{}/master/context.jsonld"
#: Entity type -> the JSON-LD context of its Smart Data Model (a URL; never fetched here).
MODEL_CONTEXTS = {
    "WaterConsumptionObserved": _SDM.format("dataModel.WaterConsumption"),
    "TrafficFlowObserved": _SDM.format("dataModel.Transportation"),
    "WasteContainer": _SDM.format("dataModel.WasteManagement"),
    "Streetlight": _SDM.format("dataModel.Streetlighting"),
    "Alert": _SDM.format("dataModel.Alert"),
}

#: The entity type of each domain's readings (the wire format's ``type``, which the schemas take from the models).
_DOMAIN_TYPES = {"water": "WaterConsumptionObserved", "traffic": "TrafficFlowObserved", "waste": "WasteContainer",
                 "lighting": "Streetlight"}

#: Reading fields copied as they are (the models' own names and units), per entity type.
_COPIED = {
    "WaterConsumptionObserved": ("dateObserved", "alarmInProgress", "alarmTamper", "alarmWaterQuality",
                                 "alarmStopsLeaks",
                                 # glasscity additions (schemas/water-reading.schema.json): m3/h, m3/h, a group id
                                 "maxFlowLastHour", "nominalFlow", "district", "deviceAlarm"),
    "TrafficFlowObserved": ("dateObserved", "dateObservedFrom", "dateObservedTo", "refRoadSegment", "laneId",
                            "intensity", "occupancy", "averageVehicleSpeed", "averageVehicleLength",
                            "averageHeadwayTime", "congested", "laneDirection", "positionAlongSegment"),
    "WasteContainer": ("dateObserved", "fillingLevel", "temperature", "dateLastEmptying"),
    "Streetlight": ("dateObserved", "powerState", "powerConsumption", "illuminanceLevel", "powerRating",
                    "refStreetlightControlCabinet"),
}
#: The model's enum of alarmFlowPersistence (the wire format takes any short text; only these are copied).
_FLOW_PERSISTENCE = frozenset({"Nothing to report", "No persistence", "In progress impacting persistence",
                               "In progress persistence", "Past Persistence during the period"})

#: glasscity severities -> the Alert model's severity enum.
SDM_SEVERITY = {"info": "informational", "warning": "medium", "critical": "critical"}

#: Alert model category per domain, and where a detector's alerts fall elsewhere (the model's enum:
#: traffic, naturalDisaster, weather, environment, health, security, agriculture).
SDM_CATEGORY = {"water": "environment", "traffic": "traffic", "waste": "environment", "lighting": "security"}
_DETECTOR_CATEGORY = {
    "water.no_use_24h": "health", "water.routine_change": "health",   # welfare checks
    "water.backflow": "health",                                        # water flowing back can contaminate the network
    "waste.fire": "security", "lighting.day_burner": "environment",   # a lamp burning by day wastes energy
}
#: Alert model subCategory where one of its values names what the detector finds.
_DETECTOR_SUBCATEGORY = {"traffic.incident": "hazardOnRoad", "waste.fire": "buildingFire"}

#: What an alert's subject is (data.subjectKind) -> the type of the entity it names (the alert's alertSource).
_SUBJECT_TYPES = {"water_meter": "WaterConsumptionObserved", "traffic_detector": "TrafficFlowObserved",
                  "waste_container": "WasteContainer", "streetlight": "Streetlight", "gateway": "Gateway",
                  "district": "District", "feed": "Feed"}


def domain_of_type(entity_type: str) -> str | None:
    """The domain whose readings become entities of ``entity_type``."""
    return next((d for d, t in _DOMAIN_TYPES.items() if t == entity_type), None)


def entity_id(entity_type: str, subject: str) -> str:
    """``urn:ngsi-ld:<Type>:<subject>``; a subject that is already a URN is its own id."""
    return subject if subject.startswith("urn:") else f"urn:ngsi-ld:{entity_type}:{subject}"


def _contexts(entity_type: str) -> list[str]:
    # the core context last, so a model's terms can never redefine a core term
    return [MODEL_CONTEXTS[entity_type], CORE_CONTEXT]


def _point(location) -> dict | None:
    """A GeoJSON Point with finite [longitude, latitude(, altitude)], else None."""
    if not isinstance(location, dict) or location.get("type") != "Point":
        return None
    coordinates = location.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) not in (2, 3) or not all(
            type(c) in (int, float) and math.isfinite(c) for c in coordinates):
        return None
    return {"type": "Point", "coordinates": list(coordinates)}


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def observation_entity(domain: str, reading: dict, subject: str) -> dict | None:
    """The key-values entity of one valid reading of ``domain``; ``subject`` is its published subject
    (the pseudonym for a water meter). None when the reading's kind has no model here (see module doc)."""
    entity_type = _DOMAIN_TYPES.get(domain)
    if entity_type is None:
        raise ValueError(f"no Smart Data Model for domain {domain!r}; known: {', '.join(_DOMAIN_TYPES)}")
    if reading.get("type") != entity_type:
        return None
    entity = {"id": entity_id(entity_type, subject), "type": entity_type}
    for name in _COPIED[entity_type]:
        value = reading.get(name)
        if _present(value):
            entity[name] = value
    if entity_type == "WaterConsumptionObserved":
        # the model's integer of cubic metres: the register's whole digits (the reading keeps litres)
        entity["waterConsumption"] = int(math.floor(reading["waterConsumption"]))
        if reading.get("alarmFlowPersistence") in _FLOW_PERSISTENCE:
            entity["alarmFlowPersistence"] = reading["alarmFlowPersistence"]
    elif entity_type in ("WasteContainer", "Streetlight"):
        # the wire format sends status only when it is not ok (and the models require one)
        entity["status"] = reading.get("status") or "ok"
        if entity_type == "WasteContainer" and _present(reading.get("nextCollectionEpoch")):
            entity["nextActuationDeadline"] = _iso(reading["nextCollectionEpoch"])
    point = _point(reading.get("location"))
    if point is not None:
        if _personal(domain):
            # a household's exact position is its address: only its 250 m cell's centre leaves the pipeline
            # (docs/privacy.md), the same snapping the control-room plan uses
            from streams.pipeline.positions import snap_to_cell

            lon, lat = snap_to_cell([point["coordinates"][0]], [point["coordinates"][1]])
            point = {"type": "Point", "coordinates": [float(lon[0]), float(lat[0])]}
        entity["location"] = point
    entity["@context"] = _contexts(entity_type)
    return entity


def _personal(domain: str) -> bool:
    from streams.domains import DOMAINS

    return DOMAINS[domain].subject_pseudonym is not None


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_restricted(event: dict) -> bool:
    """Whether the event comes from a detector that publishes to the restricted welfare topic (never exported)."""
    from streams.detectors import REGISTRY

    detector = REGISTRY.get(event.get("data", {}).get("detector"))
    return detector is not None and detector.declaration.alert_topic != "alerts.v1"


def alert_entity(event: dict, location: dict | None = None) -> dict:
    """The SDM ``Alert`` of one alert CloudEvent (schemas/alert.schema.json).

    ``validFrom`` is the episode's start; a cleared event adds ``validTo`` (when it cleared).
    ``alertSource`` is the entity the alert is about (the observation entity of a meter, bin,
    lamp or traffic detector; a gateway, district or feed otherwise). ``data`` keeps the
    detector, state, episode and details. ``location``: a GeoJSON Point, when known.
    """
    data = event["data"]
    detector = data["detector"]
    entity = {
        "id": f"urn:ngsi-ld:Alert:{data['episodeId']}",
        "type": "Alert",
        "category": _DETECTOR_CATEGORY.get(detector, SDM_CATEGORY[data["domain"]]),
        "severity": SDM_SEVERITY[data["severity"]],
        "dateIssued": event["time"],
        "alertSource": entity_id(_SUBJECT_TYPES[data["subjectKind"]], event["subject"]),
        "description": data["description"],
        "validFrom": data["episodeStart"],
        "source": event["source"],
        "data": {key: data[key] for key in ("detector", "domain", "state", "subjectKind", "episodeId", "details")
                 if key in data} | {"eventId": event["id"]},
    }
    if detector in _DETECTOR_SUBCATEGORY:
        entity["subCategory"] = _DETECTOR_SUBCATEGORY[detector]
    if data["state"] == "cleared":
        entity["validTo"] = event["time"]
    point = _point(location)
    if point is not None:
        entity["location"] = point
    entity["@context"] = _contexts("Alert")
    return entity


#: Attributes that point at another entity (NGSI-LD Relationships).
_RELATIONSHIPS = frozenset({"refRoadSegment", "refStreetlightControlCabinet", "alertSource"})
#: Attributes that are the observation's time itself, not an observed value.
_TIMES = frozenset({"dateObserved", "dateIssued"})


def normalized(entity: dict) -> dict:
    """The NGSI-LD normalized form of a key-values entity: ``{"type": "Property", "value": ...}`` per
    attribute (``Relationship`` with ``object`` for references, ``GeoProperty`` for ``location``); every
    measured Property carries ``observedAt`` (the reading's ``dateObserved``) when there is one."""
    observed = entity.get("dateObserved")
    if observed is not None:   # NGSI-LD wants observedAt in UTC
        seconds = reading_time(observed)
        observed = _iso(seconds) if seconds is not None else None
    out = {"id": entity["id"], "type": entity["type"]}
    for name, value in entity.items():
        if name in ("id", "type", "@context"):
            continue
        if name in _RELATIONSHIPS:
            out[name] = {"type": "Relationship", "object": value}
        elif name == "location":
            out[name] = {"type": "GeoProperty", "value": value}
        else:
            out[name] = {"type": "Property", "value": value}
            if observed is not None and name not in _TIMES:
                out[name]["observedAt"] = observed
    if "@context" in entity:
        out["@context"] = entity["@context"]
    return out
