"""Liveness and readiness of one worker process, as served on /healthz and /readyz.

Contract:

* :class:`Liveness` — the worker's event loop calls :meth:`Liveness.beat` about once a
  second. The process is *alive* while the last beat is younger than ``stale_after_s``;
  a loop wedged by a blocking call stops beating and /healthz turns 503, although the
  HTTP server (its own thread) still answers.
* :class:`Readiness` — the Faust app reports, per domain, the partitions it was
  assigned on each rebalance, each partition whose state it finished restoring, and the
  partitions it lost. The worker is *ready* once every expected domain has had an
  assignment and every assigned partition is restored. It is not ready before the first
  assignment, nor between a revocation and the next assignment (a rebalance in flight).
  A domain assigned no partition at all (more workers than partitions) is ready: there
  is nothing for it to restore.

Both are thread-safe: the event loop writes, the HTTP server's threads read. The
module-level :data:`READINESS` and :data:`LIVENESS` are the worker's instances.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Callable

__all__ = ["Readiness", "Liveness", "READINESS", "LIVENESS"]


class Readiness:
    """Which partitions of which domain are assigned and restored; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expected: set[str] = set()
        self._assigned: dict[str, set[int]] = {}    # domain -> its current assignment
        self._restored: dict[str, set[int]] = {}    # domain -> assigned partitions whose state is restored
        self._awaiting: set[str] = set()            # domains revoked and not yet reassigned

    def expect(self, domains: Iterable[str]) -> None:
        """Domains this worker runs: each must have had an assignment before the worker is ready.

        Without it, the first domain's assignment could report the worker ready while
        the other domains of the same rebalance are still being assigned.
        """
        with self._lock:
            self._expected = set(domains)

    def assigned(self, domain: str, partitions: Iterable[int]) -> None:
        """The domain's whole current assignment, after a rebalance.

        Partitions no longer in it are forgotten; partitions new to it wait for
        :meth:`restored`; partitions kept from before stay restored.
        """
        current = set(partitions)
        with self._lock:
            self._assigned[domain] = current
            self._restored[domain] = self._restored.get(domain, set()) & current
            self._awaiting.discard(domain)

    def restored(self, domain: str, partition: int) -> None:
        """The partition's state is restored. Ignored if the partition is not assigned any more
        (a restore that finished after its partition was revoked must not count)."""
        with self._lock:
            if partition in self._assigned.get(domain, ()):
                self._restored[domain].add(partition)

    def revoked(self, domain: str, partitions: Iterable[int]) -> None:
        """The partitions were taken away: not ready until the next :meth:`assigned`."""
        gone = set(partitions)
        with self._lock:
            self._assigned[domain] = self._assigned.get(domain, set()) - gone
            self._restored[domain] = self._restored.get(domain, set()) - gone
            self._awaiting.add(domain)

    def ready(self) -> bool:
        with self._lock:
            return not self._missing_locked()

    def status(self) -> dict:
        """JSON-able: ``ready``, what is ``missing`` (human-readable), and per domain the
        ``assigned`` and ``restoring`` partitions."""
        with self._lock:
            missing = self._missing_locked()
            domains = {domain: {"assigned": sorted(self._assigned.get(domain, ())),
                                "restoring": sorted(self._assigned.get(domain, set())
                                                    - self._restored.get(domain, set()))}
                       for domain in sorted(self._expected | set(self._assigned))}
        return {"ready": not missing, "missing": missing, "domains": domains}

    def _missing_locked(self) -> list[str]:
        if not self._assigned and not self._expected:
            return ["no partition assignment yet"]
        missing = []
        for domain in sorted(self._expected | set(self._assigned)):
            if domain not in self._assigned:
                missing.append(f"{domain}: no partition assignment yet")
            elif domain in self._awaiting:
                missing.append(f"{domain}: rebalancing (partitions revoked, not yet reassigned)")
            else:
                pending = sorted(self._assigned[domain] - self._restored[domain])
                if pending:
                    missing.append(f"{domain}: state of partition(s) {', '.join(map(str, pending))} "
                                   f"not restored yet")
        return missing


class Liveness:
    """The event loop's heartbeat; see the module docstring."""

    def __init__(self, stale_after_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        # 30 s: far above any batch's kernel time (milliseconds), so only a wedged loop trips it.
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat: float | None = None

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def silent_for_s(self) -> float | None:
        """Seconds since the last beat; None before the first."""
        with self._lock:
            return None if self._last_beat is None else self._clock() - self._last_beat

    def alive(self) -> bool:
        silent = self.silent_for_s()
        return silent is not None and silent < self.stale_after_s


READINESS = Readiness()
LIVENESS = Liveness()
