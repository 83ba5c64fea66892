"""`glasscity simulate` produces the feed to the broker and writes its ground truth."""

import json
import subprocess
import sys

from kafka import KafkaConsumer, TopicPartition


def test_simulate_produces_every_message_and_the_ground_truth(broker_settings, tmp_path):
    truth_file = tmp_path / "truth.json"
    result = subprocess.run(
        [sys.executable, "-m", "streams", "simulate", "--households", "60", "--households-per-gateway", "10",
         "--days", "1.5", "--hour-seconds", "0", "--no-use", "1", "--meter-silent", "1", "--gateway-outage", "1",
         "--malformed", "5", "--domains", "water", "--ground-truth", str(truth_file), "--bootstrap", broker_settings.bootstrap,
         "--topic-prefix", broker_settings.topic_prefix],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    truth = json.loads(truth_file.read_text())["water"]
    assert sorted(i["kind"] for i in truth["incidents"]) == ["gateway_outage", "meter_silent", "no_use"]
    assert len(truth["malformed"]) == 5 and truth["meters"] == 60
    sent = int(result.stdout.split("produced ")[1].split()[0])

    # Counted by reading them back: the embedded broker's ListOffsets answer (end_offsets) can trail
    # the last record of a batch, so it is no proof of what is stored.
    consumer = KafkaConsumer(bootstrap_servers=broker_settings.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    partitions = [TopicPartition(broker_settings.topic("water.readings.v1"), p)
                  for p in range(broker_settings.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    stored = sum(1 for _record in consumer)
    consumer.close()
    assert stored == sent > 36 * 6   # at least one envelope per gateway and city-hour


def test_simulate_refuses_an_impossible_scenario(broker_settings, tmp_path):
    result = subprocess.run([sys.executable, "-m", "streams", "simulate", "--days", "1", "--bootstrap",
                             broker_settings.bootstrap, "--ground-truth", str(tmp_path / "t.json")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "36" in result.stderr and "Traceback" not in result.stderr
