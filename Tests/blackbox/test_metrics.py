"""/metrics, /healthz and /readyz on the admin listener (black box). /metrics must parse with the
reference Prometheus text parser, and its counters must move with traffic."""

import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BASTION_BIN, free_port
from mqttclient import Client, V311

pytestmark = [
    pytest.mark.bastion_only,
]


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def scrape(admin):
    status, content_type, body = get(admin + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def monitored(broker_factory):
    admin = f"http://127.0.0.1:{free_port()}"
    broker = broker_factory(args=["--admin-listen", admin])
    deadline = time.monotonic() + 10
    while True:
        try:
            if get(admin + "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "admin listener did not come up"
        time.sleep(0.1)
    return broker, admin


def test_metrics_parse_and_counters_move_with_traffic(monitored):
    broker, admin = monitored
    before = scrape(admin)
    for name in ["bastion_connections_current", "bastion_bytes_received_total", "bastion_auth_failures_total",
                 "bastion_bans_active", "bastion_store_healthy"]:
        assert any(key[0] == name for key in before), f"{name} missing"
    assert any(key[0] == "bastion_event_loop_latency_seconds_count" for key in before)

    sub = Client(broker, protocol=V311)
    sub.subscribe("m/#", qos=1)
    pub = Client(broker, protocol=V311)
    for _ in range(10):
        pub.publish("m/t", b"0123456789", qos=0)
    for _ in range(5):
        pub.publish("m/t", b"x", qos=1)
    sub.expect_messages(15)

    after = scrape(admin)
    assert value(after, "bastion_messages_received_total", qos="0") - value(before, "bastion_messages_received_total", qos="0") >= 10
    assert value(after, "bastion_messages_received_total", qos="1") - value(before, "bastion_messages_received_total", qos="1") >= 5
    sent = sum(value(after, "bastion_messages_sent_total", qos=q) - value(before, "bastion_messages_sent_total", qos=q) for q in "012")
    assert sent >= 15
    assert value(after, "bastion_bytes_received_total") > value(before, "bastion_bytes_received_total")
    assert value(after, "bastion_bytes_sent_total") > value(before, "bastion_bytes_sent_total")
    assert value(after, "bastion_connections_total") >= value(before, "bastion_connections_total") + 2
    assert value(after, "bastion_connections_current") >= 2
    sub.drop()
    pub.drop()


def test_health_and_readiness(monitored):
    _, admin = monitored
    assert get(admin + "/healthz")[:1] == (200,)
    assert get(admin + "/readyz")[:1] == (200,)


def test_admin_listener_refuses_a_non_loopback_address(tmp_path):
    result = subprocess.run([BASTION_BIN, "serve", "--listen", f"mqtt://127.0.0.1:{free_port()}", "--allow-anonymous",
                             "--data-dir", str(tmp_path), "--admin-listen", f"http://0.0.0.0:{free_port()}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "admin" in result.stderr
