"""Run one worker process: warm kernels, serve /metrics /healthz /readyz, run the Faust app,
and always end in bounded time.

Faust's own shutdown has no overall timeout: with the broker gone, its commit and
producer flush retry for many minutes and a second SIGTERM is ignored. So this module
bounds it:

* the first SIGTERM/SIGINT starts a watchdog; Faust then shuts down gracefully, and if
  it has not finished ``shutdown_timeout_s`` later the process exits at once;
* a second signal exits at once;
* a monitor thread probes the bootstrap servers (TCP connect) and ends the process when
  none has answered for ``broker_unreachable_exit_s``, with one clear line on stderr.
  A stalled (e.g. SIGSTOPped) broker still accepts connections, so it is waited for.

A hard exit is safe by design: state is made durable before offsets are committed, so
whatever was not committed is replayed by the next owner of the partition.

Exit codes (:data:`EXIT_CODES`): 0 stopped cleanly; 1 could not start (no broker at
start-up, metrics port taken) or Faust crashed; 2 invalid settings; 3 no broker reachable
for ``broker_unreachable_exit_s``; 4 shutdown cut short (``shutdown_timeout_s`` passed, or
a second signal). A signal that arrives before the Faust worker has started (during
kernel warm-up) ends the process at once, by the signal.

While the broker is away, aiokafka and Faust repeat the same errors dozens of times a
second; :class:`streams.logs.RepeatFilter` on the log handlers keeps one per template per
10 s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from typing import Callable

from faust.worker import Worker

from streams.config import Settings, SettingsError

__all__ = ["run_worker", "GlasscityWorker", "ControlRoomPage", "ShutdownWatchdog", "BrokerWatch", "broker_answers", "unreachable_bootstrap", "EXIT_OK",
           "EXIT_FAILED", "EXIT_BAD_SETTINGS", "EXIT_BROKER_UNREACHABLE", "EXIT_SHUTDOWN_CUT_SHORT", "EXIT_CODES"]

log = logging.getLogger("glasscity.worker")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETTINGS = 2
EXIT_BROKER_UNREACHABLE = 3
EXIT_SHUTDOWN_CUT_SHORT = 4
EXIT_CODES = {
    EXIT_OK: "stopped cleanly",
    EXIT_FAILED: "could not start (no broker at start-up, metrics port taken) or crashed",
    EXIT_BAD_SETTINGS: "invalid settings",
    EXIT_BROKER_UNREACHABLE: "no broker reachable for broker_unreachable_exit_s",
    EXIT_SHUTDOWN_CUT_SHORT: "shutdown cut short (shutdown_timeout_s passed, or a second signal)",
}

REPEAT_WINDOW_S = 10.0    # the same log complaint at most once per this many seconds
HEARTBEAT_EVERY_S = 1.0   # the event loop's liveness beat (/healthz)


def exit_now(code: int, line: str) -> None:
    """Write one line to the real stderr and end the process at once: no cleanup, no waiting.

    ``os.write`` on fd 2, not ``print``: it needs no lock another thread may hold and no
    buffer to flush, and it reaches stderr even if sys.stderr was replaced.
    """
    try:
        os.write(2, (line.rstrip("\n") + "\n").encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            servers.append((host.strip("[]") or "127.0.0.1", int(port)))
        except ValueError:
            pass   # Settings accepts any string; an unparsable entry simply never answers
    return servers


def broker_answers(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection (not whether it serves Kafka)."""
    import socket

    for host, port in _servers(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            pass
    return False


def _activated_detectors(settings, domains) -> set[str]:
    """The dormant detectors the audit log switches on; logs, per detector, whether it runs and why."""
    from streams.audit import activations

    activated, problems = activations(settings.audit_log)
    for problem in problems:
        log.error("audit log %s does not verify: %s; no dormant detector runs", settings.audit_log, problem)
    for domain in domains:
        for cls in domain.detectors:
            name = cls.declaration.name
            if cls.declaration.status == "active":
                log.info("detector %s runs: active by declaration", name)
            elif name in activated:
                log.info("detector %s runs: dormant, activated in the audit log %s", name, settings.audit_log)
            else:
                why = ("the audit log does not verify" if problems else
                       "no audit log is set (GLASSCITY_AUDIT_LOG)" if not settings.audit_log else
                       "its newest audit entry is not an activation")
                log.info("detector %s does not run: dormant (%s)", name, why)
    return activated


def _record_thresholds(settings, thresholds: dict) -> None:
    """Record in the audit log the threshold values this worker loads, when they differ from the last
    recorded ones (or, never recorded, from the defaults). Without an audit log, say what goes unrecorded."""
    import dataclasses
    import socket

    from streams.audit import AuditError, append, last_thresholds, verify

    loaded = {name: {f.name: getattr(t, f.name) for f in dataclasses.fields(t)} for name, t in thresholds.items()}
    defaults = {name: {f.name: f.default for f in dataclasses.fields(t)} for name, t in thresholds.items()}
    if not settings.audit_log:
        changed = sorted(name for name in loaded if loaded[name] != defaults[name])
        if changed:
            log.warning("no audit log is set (GLASSCITY_AUDIT_LOG): the threshold overrides of %s are not recorded",
                        ", ".join(changed))
        return
    entries, problems = verify(settings.audit_log)
    if problems:
        return    # already reported by _activated_detectors; nothing is appended to a log that does not verify
    recorded = last_thresholds(entries)
    source = settings.thresholds_file or "the defaults"
    new_entries = []
    for name in sorted(loaded):
        if loaded[name] != recorded.get(name, defaults[name]):
            try:
                new_entries.append(append(settings.audit_log, "thresholds", name, f"worker {settings.app_id}@"
                                          f"{socket.gethostname()}", f"loaded from {source}", details=loaded[name]))
            except AuditError as error:
                log.error("cannot record the thresholds of %s in the audit log: %s", name, error)
                return
            log.info("thresholds of %s recorded in the audit log (entry %d): loaded from %s", name,
                     new_entries[-1]["seq"] + 1, source)
    if new_entries:
        from streams.registers import RegisterError, publish_audit

        try:
            publish_audit(settings, new_entries)
        except RegisterError as error:
            log.warning("threshold entries recorded in %s but not copied to the audit topic (%s); run "
                        "`glasscity audit sync`", settings.audit_log, error)


def unreachable_bootstrap(bootstrap: str, timeout_s: float) -> str | None:
    """The bootstrap list if none of its servers accepts a TCP connection within ``timeout_s``, else None."""
    deadline = time.monotonic() + timeout_s
    while True:
        if broker_answers(bootstrap, timeout_s=0.5):
            return None
        if time.monotonic() > deadline:
            return bootstrap
        time.sleep(0.2)


class BrokerWatch(threading.Thread):
    """Calls ``on_give_up(silent_s)`` once no bootstrap server has answered for ``give_up_after_s``.

    Runs in its own daemon thread, so a busy or wedged event loop cannot delay it. Logs one
    warning when the broker goes away and one line when it comes back.
    """

    def __init__(self, bootstrap: str, give_up_after_s: float, on_give_up: Callable[[float], None],
                 probe_every_s: float = 1.0, probe: Callable[[str], bool] = broker_answers,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name="glasscity-broker-watch", daemon=True)
        self.bootstrap = bootstrap
        self.give_up_after_s = give_up_after_s
        self.on_give_up = on_give_up
        self.probe_every_s = probe_every_s
        self._probe = probe
        self._clock = clock
        self._stopped = threading.Event()

    def run(self) -> None:
        # Counted from the first probe that failed, not the last that answered: the silence
        # reported is silence observed, never more than what was seen.
        lost_since: float | None = None
        while not self._stopped.is_set():
            now = self._clock()
            if self._probe(self.bootstrap):
                if lost_since is not None:
                    log.warning("Kafka broker at %s answers again after %.0f s", self.bootstrap, now - lost_since)
                lost_since = None
            elif lost_since is None:
                lost_since = now
                log.warning("no Kafka broker answers at %s; the worker exits (code %d) if none does for %g s",
                            self.bootstrap, EXIT_BROKER_UNREACHABLE, self.give_up_after_s)
            if lost_since is not None and now - lost_since >= self.give_up_after_s:
                self.on_give_up(now - lost_since)
                return
            self._stopped.wait(self.probe_every_s)

    def stop(self) -> None:
        self._stopped.set()


class ShutdownWatchdog:
    """Bounds a shutdown: ``on_expiry`` runs ``timeout_s`` after :meth:`arm`; a second stop signal
    calls ``on_second_signal`` at once. Both default to :func:`exit_now` with code 4."""

    def __init__(self, timeout_s: float, on_expiry: Callable[[], None] | None = None,
                 on_second_signal: Callable[[str], None] | None = None) -> None:
        self.timeout_s = timeout_s
        self._on_expiry = on_expiry or (lambda: exit_now(
            EXIT_SHUTDOWN_CUT_SHORT, f"glasscity worker: shutdown did not finish within {timeout_s:g} s "
                                     f"(--shutdown-timeout); exiting with code {EXIT_SHUTDOWN_CUT_SHORT}"))
        self._on_second_signal = on_second_signal or (lambda name: exit_now(
            EXIT_SHUTDOWN_CUT_SHORT, f"glasscity worker: second {name}; exiting with code "
                                     f"{EXIT_SHUTDOWN_CUT_SHORT} without finishing shutdown"))
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._signalled = False

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def arm(self) -> None:
        """Start the countdown (once; later calls keep the first deadline)."""
        with self._lock:
            if self._timer is None:
                # A daemon thread, not an event-loop callback: the loop may be the thing that hangs.
                self._timer = threading.Timer(self.timeout_s, self._on_expiry)
                self._timer.daemon = True
                self._timer.name = "glasscity-shutdown-watchdog"
                self._timer.start()

    def signal_received(self, name: str) -> bool:
        """A stop signal: arms the countdown on the first, ends the process on the second.
        Returns whether it was the first."""
        with self._lock:
            second, self._signalled = self._signalled, True
        if second:
            self._on_second_signal(name)
            return False
        self.arm()
        return True

    def cancel(self) -> None:
        """For tests: stop the countdown (the worker never cancels it; see :class:`GlasscityWorker`)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


class GlasscityWorker(Worker):
    """faust.worker.Worker with a bounded shutdown, bounded logs and a liveness heartbeat.

    mode installs ``_on_sigterm``/``_on_sigint`` as loop signal handlers; its
    ``_schedule_shutdown`` ignores every signal after the first. Here each signal is
    first shown to the :class:`ShutdownWatchdog`. The watchdog is also armed when the
    worker shuts down for any other reason (e.g. a crash), and it is never cancelled: if
    the interpreter's exit hangs after a clean stop, the deadline still holds.
    """

    def __init__(self, app, *, watchdog: ShutdownWatchdog, log_format: str = "text", secrets: tuple = (), page=None,
                 **kwargs) -> None:
        # Faust's stdout/stderr redirect logs every write() as its own record: a traceback
        # becomes a hundred one-word records that no repeat filter can recognise.
        kwargs.setdefault("redirect_stdouts", False)
        super().__init__(app, **kwargs)
        self.watchdog = watchdog
        self.page = page      # a ControlRoomPage, or None
        self.log_format = log_format
        self.secrets = secrets

    def _on_sigterm(self) -> None:
        if self.watchdog.signal_received("SIGTERM"):
            super()._on_sigterm()

    def _on_sigint(self) -> None:
        if self.watchdog.signal_received("SIGINT"):
            super()._on_sigint()

    def on_worker_shutdown(self) -> None:
        self.watchdog.arm()
        super().on_worker_shutdown()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # No terminal spinner: for it Faust sets the root logger to DEBUG whenever the level is WARNING or
        # above, so every debug record in the process (aiokafka logs one per record produced) is created
        # and filtered by the handler -- a tenth of the event loop's time on single-reading messages.
        self.spinner = None
        super().on_setup_root_logger(logger, level)
        from streams.logs import format_handlers, install_repeat_filter

        install_repeat_filter(logger, window_s=REPEAT_WINDOW_S)
        format_handlers(logger.handlers, self.log_format, self.secrets)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        self._heartbeat = asyncio.ensure_future(self._beat())   # kept: the loop holds tasks weakly
        if self.page is not None:
            await self.page.start()

    async def on_stop(self) -> None:
        if self.page is not None:
            await self.page.stop()
        await super().on_stop()

    async def _beat(self) -> None:
        from streams.health import LIVENESS

        while True:
            LIVENESS.beat()
            await asyncio.sleep(HEARTBEAT_EVERY_S)


class ControlRoomPage:
    """The control room's page in the worker's event loop (:mod:`streams.control.page`): a
    :class:`~streams.control.room.ControlRoom` following the alert topics, with the plan's positions from
    this worker's pipelines. A port that cannot be bound costs the page, never the worker: one warning."""

    def __init__(self, settings: Settings, pipelines) -> None:
        from streams.control.room import ControlRoom

        self.settings = settings
        self.pipelines = pipelines
        self.room = ControlRoom(settings, [p.domain.name for p in pipelines], positions=self.positions)
        self._runner = None
        self._task: asyncio.Future | None = None

    def positions(self) -> dict:
        from streams.control.room import GATEWAYS

        found = {p.domain.name: p.subject_positions() for p in self.pipelines}
        found[GATEWAYS] = {gateway: where for p in self.pipelines for gateway, where in p.gateway_positions().items()}
        return found

    async def start(self) -> None:
        from streams.control.page import serve_page

        settings = self.settings
        try:
            self._runner, port = await serve_page(self.room, settings.page_host, settings.page_port)
        except OSError as error:
            log.warning("control-room page not served: cannot bind %s:%s (%s); the worker runs on without it",
                        settings.page_host, settings.page_port, error.strerror or error)
            return
        self._task = asyncio.ensure_future(self.room.run())
        host = "127.0.0.1" if settings.page_host in ("0.0.0.0", "::", "") else settings.page_host
        print(f"glasscity worker: control-room page on http://{host}:{port}/"
              + (f" (welfare view: http://{host}:{port}/welfare)" if self.room.welfare_enabled else ""), flush=True)

    async def stop(self) -> None:
        self.room.stop()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):   # noqa: BLE001 - stopping anyway
                pass
        if self._runner is not None:
            await self._runner.cleanup()


def _thread_excepthook(watchdog: ShutdownWatchdog, default=threading.excepthook):
    """During a bounded shutdown, a client thread dying of the missing broker is expected:
    one log line instead of a fifty-line traceback. Otherwise Python's default report."""

    def hook(args) -> None:
        if watchdog.armed and args.exc_type is not SystemExit:
            log.warning("thread %s ended during shutdown: %s: %s", getattr(args.thread, "name", "?"),
                        args.exc_type.__name__, args.exc_value)
        else:
            default(args)

    return hook


def run_worker(settings: Settings) -> int:
    import kernels

    from streams import metrics
    from streams.app import create_app
    from streams.detectors import CONFIGURABLE
    from streams.detectors.thresholds import load_thresholds
    from streams.domains import select_domains
    from streams.health import LIVENESS
    from streams.consent import ConsentRegister
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer

    try:
        key = settings.require_pseudonym_key()
        domains = select_domains(settings.domains)
        thresholds = load_thresholds(settings.thresholds_file, CONFIGURABLE)
    except SettingsError as error:
        print(f"glasscity worker: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    unreachable = unreachable_bootstrap(settings.bootstrap, timeout_s=10.0)
    if unreachable:
        print(f"glasscity worker: no Kafka broker answers at {unreachable} (tried for 10 s); start one with "
              f"`glasscity broker` or set --bootstrap / GLASSCITY_BOOTSTRAP", file=sys.stderr)
        return EXIT_FAILED
    kernels.warm_up()
    pseudonymizer = Pseudonymizer(key)
    activated = _activated_detectors(settings, domains)
    _record_thresholds(settings, thresholds)
    consent = ConsentRegister()    # nobody enrolled until the registers say so (followed by the app)
    pipelines = [DomainPipeline(domain, settings, pseudonymizer, thresholds, activated=activated, consent=consent)
                 for domain in domains]
    from streams.fetches import FaustIncompatible

    try:
        app = create_app(settings, pipelines, feed_thresholds=thresholds["feed.stalled"], consent=consent)
    except FaustIncompatible as error:    # an internal the fetch hand-off relies on is missing
        print(f"glasscity worker: {error}", file=sys.stderr)
        return EXIT_FAILED
    metrics.init_series(d.name for d in domains)
    LIVENESS.beat()   # alive from here; the event loop takes over the beat within milliseconds
    try:
        _server, port = metrics.serve(settings.metrics_host, settings.metrics_port)
    except OSError as error:
        print(f"glasscity worker: cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
              f"{error}", file=sys.stderr)
        return EXIT_FAILED
    topics = ", ".join(settings.topic(d.topic("readings")) for d in domains)
    base = f"http://{settings.metrics_host}:{port}"
    print(f"glasscity worker: metrics on {base}/metrics (also /healthz, /readyz); consuming {topics} from "
          f"{settings.bootstrap}", flush=True)

    watchdog = ShutdownWatchdog(settings.shutdown_timeout_s)
    threading.excepthook = _thread_excepthook(watchdog)
    if settings.broker_unreachable_exit_s > 0:
        limit = settings.broker_unreachable_exit_s
        BrokerWatch(settings.bootstrap, limit, lambda silent_s: exit_now(
            EXIT_BROKER_UNREACHABLE, f"glasscity worker: no Kafka broker answered at {settings.bootstrap} for "
                                     f"{limit:g} s; exiting with code {EXIT_BROKER_UNREACHABLE}")).start()
    from streams.logs import secret_values

    page = ControlRoomPage(settings, pipelines) if settings.page else None
    worker = GlasscityWorker(app, watchdog=watchdog, page=page, loglevel=settings.log_level.upper(), quiet=True,
                             log_format=settings.log_format, secrets=tuple(secret_values(settings)))
    try:
        worker.execute_from_commandline()   # always raises SystemExit
    except SystemExit as stopped:
        code = stopped.code
        return EXIT_OK if code is None else code if isinstance(code, int) else EXIT_FAILED
    return EXIT_OK
