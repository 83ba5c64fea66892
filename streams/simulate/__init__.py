"""Synthetic city data for demos, tests and benchmarks (pure Python + numpy, no Kafka).

Contract of the water city (``streams.simulate.water``):

* ``simulate_water(WaterScenario(...))`` plans a run; ``.hours()`` yields, in time
  order, one ``(hour_start_epoch_s, [(kafka_key, kafka_value), ...])`` per city-hour,
  ready to produce to the water readings topic. Keys are district ids (utf-8); values
  are the wire format of ``schemas/water-reading.schema.json`` (a ``ReadingBatch``
  envelope per gateway and hour, plus single-reading messages and malformed items).
* Ground truth -- ``incidents``, ``malformed``, ``valid_readings`` -- is known right
  after construction, before any message is generated; ``ground_truth()`` returns it
  as JSON. Incidents and malformed items are labels of our own making.
* Malformed items are always extra: each yields exactly one dead-letter record and
  never replaces a valid reading. Their meter ids are ``urn:ngsi-ld:WaterMeter:BAD-{n}``.
* The same scenario with an explicit ``start`` gives byte-identical messages.
* Memory is bounded by one hour of messages.

Household rhythms come from real data: ``daiad_profiles.json``, derived by
``streams.simulate.profiles`` from the DAIAD project's swm_trialA (CC-BY-SA 4.0).
"""

# Imported lazily so ``python -m streams.simulate.profiles`` runs without a warning.
_EXPORTS = {
    "ATTRIBUTION": "profiles",
    "Profiles": "profiles",
    "build_profiles": "profiles",
    "load_profiles": "profiles",
    "INCIDENT_KINDS": "water",
    "MALFORMED_KINDS": "water",
    "Incident": "water",
    "WaterScenario": "water",
    "WaterSimulation": "water",
    "simulate_water": "water",
}


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)


__all__ = [
    "ATTRIBUTION",
    "INCIDENT_KINDS",
    "MALFORMED_KINDS",
    "Incident",
    "Profiles",
    "WaterScenario",
    "WaterSimulation",
    "build_profiles",
    "load_profiles",
    "simulate_water",
]
