"""Keep alive: the server closes a silent client after 1.5 x Keep Alive ([MQTT-3.1.2-24]), any
control packet keeps it alive, 0 switches it off, and 5.0 Server Keep Alive (limits.max_keep_alive)."""

import time

import pytest

import wire
from wire import Raw
from mqttclient import V311, V5, Client


def test_silent_client_is_disconnected(broker):
    # Cross-check of the mechanism with a lenient bound (mosquitto 2.0.11 checks only every few seconds).
    r = Raw(broker, 4)
    r.connect("silent-lenient", keepalive=1)
    got, waited = r.closed_within(9)
    assert waited > 1
    assert got == []


@pytest.mark.bastion_only  # mosquitto 2.0.11 closes after ~5 s for K=1, later than the 1.5 x K of [MQTT-3.1.2-24]
@pytest.mark.parametrize("version", [3, 4, 5])
def test_silent_client_is_disconnected_after_one_and_a_half_keep_alive(broker, version):
    k = 1
    r = Raw(broker, version)
    r.connect(f"silent{version}", keepalive=k)
    got, waited = r.closed_within(2 * k + 1)
    # Behaviour bound, not a performance measurement: not before K, and well before 2K+2.
    assert waited > k, f"closed after {waited:.2f}s, before the keep alive of {k}s ran out"
    for p in got:
        assert p.type == wire.DISCONNECT and version == 5, f"unexpected packet {p!r}"
        assert p.rc == 0x8D


@pytest.mark.bastion_only  # BEHAVIOUR.md: DISCONNECT 0x8D before the close; mosquitto 2.0.11 just closes
def test_5_keep_alive_timeout_sends_disconnect_0x8d(broker):
    r = Raw(broker, 5)
    r.connect("silent-8d", keepalive=1)
    got, _ = r.closed_within(4)
    assert wire.disconnect_reasons(got) == [0x8D]


@pytest.mark.parametrize("version", [4, 5])
def test_pinging_client_stays_connected(broker, version):
    r = Raw(broker, version)
    r.connect(f"pinger{version}", keepalive=1)
    deadline = time.monotonic() + 3.2
    while time.monotonic() < deadline:
        time.sleep(0.5)
        r.ping_ok()


def test_any_packet_resets_keep_alive(broker):
    # [MQTT-3.1.2-23] the keep alive measures the time between any two control packets.
    r = Raw(broker, 4)
    r.connect("publisher-ka", keepalive=1)
    deadline = time.monotonic() + 3.2
    while time.monotonic() < deadline:
        time.sleep(0.5)
        r.send(wire.publish("ka/x", b".", qos=0, version=4))
    r.ping_ok()


def test_paho_client_with_short_keep_alive_stays(broker):
    c = Client(broker, protocol=V311, keepalive=1)
    sub = Client(broker, protocol=V311)
    sub.subscribe("ka/paho", 1)
    time.sleep(3.2)
    assert c.disconnects.empty(), "a pinging client must not be disconnected"
    c.publish("ka/paho", b"alive", qos=1)
    assert sub.expect_message().payload == b"alive"


@pytest.mark.parametrize("version", [4, 5])
def test_keep_alive_zero_never_times_out(broker, version):
    r = Raw(broker, version)
    r.connect(f"ka0-{version}", keepalive=0)
    r.expect_nothing(3.2)
    r.ping_ok()


def test_silent_client_after_subscribing_times_out(broker):
    # Server-to-client traffic does not count: only packets from the client reset the timer.
    r = Raw(broker, 4)
    r.connect("ka-sub", keepalive=1)
    r.sub([("ka/feed", 0)])
    pub = Client(broker, protocol=V311)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 9:  # lenient: mosquitto 2.0.11 checks keep alive every ~5 s
        pub.publish("ka/feed", b"tick", qos=0)
        try:
            p = r.read_packet(0.3)
        except TimeoutError:
            continue
        if p is None:
            closed = True
            break
    assert closed, "a client that only receives must still be timed out"


# ------------------------------------------------------------------ Server Keep Alive

# 10, not 5: mosquitto refuses max_keepalive below 10, and the value makes no difference to the rule.
@pytest.mark.parametrize("asked", [60, 0])
def test_5_server_keep_alive_caps_client_value(broker_factory, asked):
    broker = broker_factory(config={"limits": {"max_keep_alive": 10}})
    r = Raw(broker, 5)
    p = r.connect(f"ska{asked}", keepalive=asked).props
    assert p.get("ServerKeepAlive") == 10, f"Server Keep Alive {p.get('ServerKeepAlive')}"


@pytest.mark.bastion_only  # the brief's value; mosquitto refuses max_keepalive < 10
def test_5_server_keep_alive_caps_at_5(broker_factory):
    broker = broker_factory(config={"limits": {"max_keep_alive": 5}})
    for asked in (60, 0, 6):
        r = Raw(broker, 5)
        p = r.connect(f"ska5-{asked}", keepalive=asked).props
        assert p.get("ServerKeepAlive") == 5


def test_5_server_keep_alive_absent_or_equal_when_within_limit(broker_factory):
    broker = broker_factory(config={"limits": {"max_keep_alive": 10}})
    r = Raw(broker, 5)
    p = r.connect("ska3", keepalive=3).props
    assert p.get("ServerKeepAlive", 3) == 3


@pytest.mark.bastion_only  # mosquitto refuses max_keepalive < 10 (and would take 15 s with 10)
def test_5_server_keep_alive_is_enforced(broker_factory):
    # [MQTT-3.2.2-21]: the client must use the server's value, and so does the server.
    broker = broker_factory(config={"limits": {"max_keep_alive": 1}})
    r = Raw(broker, 5)
    p = r.connect("ska-enforced", keepalive=60).props
    assert p.get("ServerKeepAlive") == 1
    got, waited = r.closed_within(4)
    assert waited > 1


def test_5_paho_sees_server_keep_alive(broker_factory):
    broker = broker_factory(config={"limits": {"max_keep_alive": 10}})
    c = Client(broker, protocol=V5, keepalive=60, auto_connect=False)
    _, _, p = c.connect()
    assert p.ServerKeepAlive == 10
    c.disconnect()


@pytest.mark.bastion_only  # default max_keep_alive is 65535 (BEHAVIOUR.md): a 5.0 client asking 0 is told 65535
def test_5_keep_alive_zero_gets_default_maximum(broker):
    r = Raw(broker, 5)
    p = r.connect("ska-default", keepalive=0).props
    assert p.get("ServerKeepAlive") == 65535
