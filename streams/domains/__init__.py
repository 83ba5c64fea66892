"""Domains: what each sensor domain reads and which detectors run on it.

``DOMAINS`` maps a domain name to its :class:`Domain` (wire format, columns,
groups, tracker, detectors in run order, simulator). The worker runs one agent
per selected domain; the demo, replay and the quality harness read the same map.
"""

from streams.domains.base import Column, Domain
from streams.domains.waste import WASTE
from streams.domains.lighting import LIGHTING
from streams.domains.water import WATER
from streams.domains.traffic import TRAFFIC

__all__ = ["Column", "Domain", "DOMAINS", "select_domains"]

DOMAINS: dict[str, Domain] = {d.name: d for d in (WATER, TRAFFIC, WASTE, LIGHTING)}


def select_domains(names: str) -> list[Domain]:
    """Domains named in a comma-separated list ("" = all), in registry order."""
    from streams.config import SettingsError

    wanted = [n.strip() for n in names.split(",") if n.strip()] or list(DOMAINS)
    unknown = [n for n in wanted if n not in DOMAINS]
    if unknown:
        raise SettingsError(f"unknown domain(s) {', '.join(unknown)}; known: {', '.join(DOMAINS)}")
    return [DOMAINS[n] for n in DOMAINS if n in wanted]
