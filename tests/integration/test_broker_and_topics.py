"""`glasscity broker` and `glasscity topics create` against the real embedded broker."""

import signal
import subprocess
import sys

from kafka.admin import KafkaAdminClient

from streams.broker import free_port, stop_process, wait_for_port
from streams.topics import create_topics, short_names, topic_specs


def test_broker_command_starts_answers_and_stops_on_ctrl_c():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "streams", "broker", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout.readline().startswith(f"broker ready on 127.0.0.1:{port}")
        wait_for_port("127.0.0.1", port, 5)
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        assert admin.list_topics() == []   # a fresh in-memory broker
        admin.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert "broker stopped" in process.stdout.read()
    finally:
        stop_process(process)


def test_broker_command_refuses_a_busy_port(broker):
    result = subprocess.run([sys.executable, "-m", "streams", "broker", "--port", str(broker.port)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "already in use" in result.stderr


def test_topics_create_is_idempotent_and_uses_the_partition_count(broker_settings):
    # broker_settings already created them once
    again = create_topics(broker_settings)
    assert set(again.values()) == {"exists"}
    admin = KafkaAdminClient(bootstrap_servers=broker_settings.bootstrap)
    try:
        described = admin.describe_topics([broker_settings.topic(t) for t in short_names(broker_settings)])
    finally:
        admin.close()
    assert sorted(d["name"] for d in described) == sorted(broker_settings.topic(t) for t in short_names(broker_settings))
    assert broker_settings.topic("water.readings.v1") in {d["name"] for d in described}
    specs = {broker_settings.topic(spec.short): spec for spec in topic_specs(broker_settings)}
    assert all(len(d["partitions"]) == specs[d["name"]].partitions for d in described)
    assert {specs[d["name"]].partitions for d in described} == {broker_settings.partitions, 1}   # shared: one


def test_topics_command_line(broker):
    env_prefix = "cli" + str(free_port())
    result = subprocess.run([sys.executable, "-m", "streams", "topics", "create", "--bootstrap", broker.bootstrap,
                             "--topic-prefix", env_prefix, "--partitions", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # readings, dead letters, late readings and the state changelog per domain, two alert topics,
    # the audit topic and the three consent registers
    assert result.stdout.count("created") == 4 * 4 + 2 + 1 + 3
    assert f"{env_prefix}.audit.v1" in result.stdout and f"{env_prefix}.consent.enrolment.v1" in result.stdout
    assert f"{env_prefix}.alerts.welfare.v1" in result.stdout and f"{env_prefix}.lighting.dlq.v1" in result.stdout
    assert f"{env_prefix}.water.state.v1" in result.stdout and f"{env_prefix}.water.late.v1" in result.stdout
