"""Send entities to an NGSI-LD broker: batch upserts with retries (aiohttp).

Contract: :func:`post_entities` groups entities into batches of ``batch_size`` and POSTs each,
in order and one at a time (a later reading of an entity must win), to
``<url>/ngsi-ld/v1/entityOperations/upsert`` as ``application/ld+json`` (each entity carries
its ``@context``). Within a batch only the last entity of each id is sent: an upsert replaces
the entity, so earlier ones would be overwritten anyway, and some brokers refuse a batch that
names an id twice.

Answers: 201 and 204 mean every entity of the batch was upserted; 207 (multi-status) lists
the refused ones in its body's ``errors`` (``entityId`` and an ``error`` problem detail), each
reported; any other 4xx refuses the whole batch, reported and not retried. A 5xx answer, a
connection error or a timeout is retried ``retries`` times, waiting ``backoff_s`` and then
twice as long each time (at most :data:`MAX_BACKOFF_S`); then the batch is reported failed and
the next one is sent. ``token`` goes in an ``Authorization: Bearer`` header and is never
logged or reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

__all__ = ["UPSERT_PATH", "PostReport", "BatchFailure", "post_entities", "upsert_url", "MAX_BACKOFF_S"]

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
#: The longest wait between two attempts at one batch (s).
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class BatchFailure:
    """Entities of batch ``batch`` (1-based) the broker did not upsert: ``entity_id`` None = the whole batch."""

    batch: int
    entity_id: str | None
    reason: str

    def line(self) -> str:
        what = self.entity_id if self.entity_id is not None else "the whole batch"
        return f"batch {self.batch}: {what}: {self.reason}"


@dataclass
class PostReport:
    batches: int = 0
    sent: int = 0          # entities sent (after the per-batch de-duplication)
    upserted: int = 0
    retries: int = 0
    failures: list[BatchFailure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.sent - self.upserted

    def summary(self) -> str:
        text = f"posted {self.sent} entities in {self.batches} batches: {self.upserted} upserted"
        if self.failed:
            text += f", {self.failed} not upserted"
        if self.retries:
            text += f" ({self.retries} retried attempts)"
        return text


def upsert_url(base: str) -> str:
    """The batch upsert endpoint under a broker's base URL (``http://host:1026`` or ``.../`` alike)."""
    return base.rstrip("/") + UPSERT_PATH


def _last_of_each_id(batch: list[dict]) -> list[dict]:
    last = {entity["id"]: i for i, entity in enumerate(batch)}
    return [entity for i, entity in enumerate(batch) if last[entity["id"]] == i]


def _problem(body: bytes) -> str:
    """A short reason from an NGSI-LD problem detail (or the body's start)."""
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "(no body)"
    if isinstance(problem, dict):
        parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
        if parts:
            return ": ".join(parts)
    return orjson.dumps(problem).decode()[:200]


def _multi_status(body: bytes, sent: list[dict], batch_number: int) -> list[BatchFailure]:
    """Failures listed by a 207 body (``{"success": [...], "errors": [{"entityId", "error"}]}``)."""
    try:
        result = orjson.loads(body)
        errors = result.get("errors", []) if isinstance(result, dict) else None
    except orjson.JSONDecodeError:
        errors = None
    if not isinstance(errors, list):
        return [BatchFailure(batch_number, None, "207 multi-status without an errors list: outcome unknown")]
    failures = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        detail = error.get("error")
        reason = _problem(orjson.dumps(detail)) if detail is not None else "refused (no reason given)"
        failures.append(BatchFailure(batch_number, str(error.get("entityId")), reason))
    return failures


async def post_entities(entities: Iterable[dict], url: str, *, batch_size: int = 100, retries: int = 5,
                        backoff_s: float = 0.5, timeout_s: float = 30.0, token: str = "",
                        on_batch: Callable[[int], None] | None = None,
                        sleep: Callable[[float], object] = asyncio.sleep) -> PostReport:
    """Upsert every entity (see the module docstring); ``on_batch(n)`` after each batch of n entities."""
    import aiohttp

    endpoint = upsert_url(url)
    headers = {"Content-Type": "application/ld+json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    report = PostReport()
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:

        async def send(batch: list[dict]) -> None:
            report.batches += 1
            number = report.batches
            batch = _last_of_each_id(batch)
            report.sent += len(batch)
            body = orjson.dumps(batch)
            wait = backoff_s
            for attempt in range(retries + 1):
                if attempt:
                    report.retries += 1
                    await sleep(wait)
                    wait = min(wait * 2, MAX_BACKOFF_S)
                try:
                    async with session.post(endpoint, data=body) as response:
                        answer = await response.read()
                        status = response.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    reason = f"{error.__class__.__name__}: {error}" if str(error) else error.__class__.__name__
                    continue
                if status >= 500:
                    reason = f"HTTP {status}: {_problem(answer)}"
                    continue
                if status in (200, 201, 204):
                    report.upserted += len(batch)
                elif status == 207:
                    failures = _multi_status(answer, batch, number)
                    report.failures += failures
                    report.upserted += len(batch) - sum(1 if f.entity_id is not None else len(batch)
                                                        for f in failures)
                else:
                    report.failures.append(BatchFailure(number, None, f"HTTP {status}: {_problem(answer)}"))
                if on_batch:
                    on_batch(len(batch))
                return
            report.failures.append(BatchFailure(number, None, f"gave up after {retries + 1} attempts: {reason}"))
            if on_batch:
                on_batch(len(batch))

        batch: list[dict] = []
        for entity in entities:
            batch.append(entity)
            if len(batch) >= batch_size:
                await send(batch)
                batch = []
        if batch:
            await send(batch)
    return report
