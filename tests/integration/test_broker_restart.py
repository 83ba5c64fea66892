"""`glasscity broker` restarts at once on the port it just freed, old connections lingering or not."""

import os
import signal
import socket
import subprocess
import sys
import time

from kafka import KafkaAdminClient

from streams.broker import free_port, stop_process


def start(port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    return subprocess.Popen([sys.executable, "-m", "streams", "broker", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_ready(process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    if "ready" not in line:
        process.wait(10)
        raise AssertionError(f"broker did not start: {line!r} {process.stderr.read()!r}")
    return line


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)      # as Ctrl-C does
    assert process.wait(15) == 0
    assert "broker stopped" in process.stdout.read()


def test_restart_on_a_just_freed_port_with_connections_left_behind():
    port = free_port()
    first = start(port)
    held = None
    try:
        wait_ready(first)
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=5000)
        admin.list_topics()
        admin.close()                                     # closed by the client: TIME_WAIT on its side
        held = socket.create_connection(("127.0.0.1", port))   # still open when the broker stops: the
        time.sleep(0.2)                                       # broker's side lingers in FIN_WAIT2
        stop(first)
    finally:
        stop_process(first)
    started = time.monotonic()
    second = start(port)
    try:
        assert f"broker ready on 127.0.0.1:{port}" in wait_ready(second)
        assert time.monotonic() - started < 15        # not the minute TIME_WAIT/FIN_WAIT2 would last
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=5000)
        assert isinstance(admin.list_topics(), list)
        admin.close()
        stop(second)
    finally:
        stop_process(second)
        if held is not None:
            held.close()


def test_a_port_really_in_use_is_refused_in_one_line():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        process = start(port)
        try:
            _out, err = process.communicate(timeout=30)
        finally:
            stop_process(process)
    assert process.returncode == 1
    assert err.strip() == f"glasscity broker: port {port} on 127.0.0.1 is already in use; choose another with --port"
