"""The one path from a batch of raw messages to alerts: decode -> kernels -> alerts.

Contract: ``DomainPipeline(domain, ...).process(messages)`` takes raw messages (any partitions)
and returns a :class:`BatchResult` with the alert events to publish (each with
its short topic name) and the dead letters. It knows no Faust: the worker, the
demo, replays, tests and benchmarks all call this same code.
"""

from streams.pipeline.domain import BatchResult, DomainPipeline, OutgoingAlert

__all__ = ["BatchResult", "DomainPipeline", "OutgoingAlert"]
