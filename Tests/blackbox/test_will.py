"""Will messages: published on abnormal loss, keep-alive timeout and protocol errors, not after a
normal DISCONNECT; 5.0 reason 0x04, Will Delay Interval, will properties and the will retain flag."""

import time

import pytest

import wire
from wire import Raw
from mqttclient import V31, V311, V5, Client, props
from paho.mqtt.packettypes import PacketTypes


def watch(broker, topic, qos=1, protocol=V5):
    w = Client(broker, protocol=protocol)
    w.subscribe(topic, qos)
    return w


def raw_will(topic, payload=b"gone", qos=1, retain=False, delay=None, extra=()):
    pairs = list(extra)
    if delay is not None:
        pairs.append(("WillDelayInterval", delay))
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain, "props": pairs}


# ------------------------------------------------------------------ when a will is sent

@pytest.mark.parametrize("protocol", [V31, V311, V5], ids=["3.1", "3.1.1", "5.0"])
def test_will_on_abnormal_loss(broker, protocol):
    w = watch(broker, "will/lost")
    c = Client(broker, protocol=protocol, will=dict(topic="will/lost", payload=b"lost", qos=1))
    c.drop()
    m = w.expect_message()
    assert (m.topic, m.payload, m.qos) == ("will/lost", b"lost", 1)
    w.expect_no_message(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_will_on_raw_socket_close(broker, version):
    w = watch(broker, "will/raw")
    r = Raw(broker, version)
    r.connect("will-raw", will=raw_will("will/raw", b"raw-gone"))
    r.close()
    assert w.expect_message().payload == b"raw-gone"


@pytest.mark.parametrize("version", [4, 5])
def test_will_on_keep_alive_timeout(broker, version):
    w = watch(broker, "will/ka")
    r = Raw(broker, version)
    r.connect("will-ka", keepalive=1, will=raw_will("will/ka", b"timed-out"))
    # Lenient bound: mosquitto 2.0.11 checks keep alive only every few seconds.
    m = w.expect_message(timeout=9)
    assert m.payload == b"timed-out"


@pytest.mark.parametrize("version", [4, 5])
def test_will_on_malformed_packet(broker, version):
    # [MQTT-3.1.2-8]: the server closing the connection for a protocol error publishes the will.
    w = watch(broker, "will/malformed")
    r = Raw(broker, version)
    r.connect("will-malformed", will=raw_will("will/malformed", b"broken"))
    pkt = bytearray(wire.publish("a", b"x", qos=1, pid=1, version=version))
    pkt[0] |= 0x06  # QoS 3
    r.send(bytes(pkt))
    r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert w.expect_message().payload == b"broken"


@pytest.mark.bastion_only  # mosquitto 2.0.11 drops the will when it closes for a second CONNECT, against [MQTT-3.1.2-8]
@pytest.mark.parametrize("version", [4, 5])
def test_will_on_protocol_error(broker, version):
    w = watch(broker, "will/proto")
    r = Raw(broker, version)
    r.connect("will-proto", will=raw_will("will/proto", b"broken"))
    r.send(wire.connect("will-proto", version=version))  # a second CONNECT
    r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert w.expect_message().payload == b"broken"


@pytest.mark.parametrize("protocol", [V31, V311, V5], ids=["3.1", "3.1.1", "5.0"])
def test_no_will_after_normal_disconnect(broker, protocol):
    w = watch(broker, "will/normal")
    c = Client(broker, protocol=protocol, will=dict(topic="will/normal", payload=b"nope", qos=1))
    c.disconnect()
    w.expect_no_message(1.0)  # [MQTT-3.1.2-10]: DISCONNECT deletes the will


def test_5_no_will_after_disconnect_0x00_then_socket_close(broker):
    w = watch(broker, "will/normal5")
    r = Raw(broker, 5)
    r.connect("will-normal5", will=raw_will("will/normal5", b"nope"))
    r.send(wire.disconnect(0x00, props=[]))
    r.close()
    w.expect_no_message(1.0)


def test_5_disconnect_with_will_message_reason_publishes_will(broker):
    w = watch(broker, "will/0x04")
    c = Client(broker, protocol=V5, will=dict(topic="will/0x04", payload=b"on-purpose", qos=1))
    c.disconnect(reasoncode=_reason(0x04))
    m = w.expect_message()
    assert m.payload == b"on-purpose"


def test_5_raw_disconnect_0x04_publishes_will(broker):
    w = watch(broker, "will/0x04raw")
    r = Raw(broker, 5)
    r.connect("will-04", will=raw_will("will/0x04raw", b"on-purpose"))
    r.send(wire.disconnect(0x04, props=[]))
    r.expect_closed_after(allowed=())
    assert w.expect_message().payload == b"on-purpose"


def _reason(code):
    from paho.mqtt.reasoncodes import ReasonCode
    return ReasonCode(PacketTypes.DISCONNECT, identifier=code)


# ------------------------------------------------------------------ Will Delay Interval

def test_5_will_delay_postpones_will(broker):
    w = watch(broker, "will/delay")
    r = Raw(broker, 5)
    r.connect("will-delay", props=[("SessionExpiryInterval", 30)],
              will=raw_will("will/delay", b"late", delay=1))
    r.close()
    # Not there while the delay runs, there after it.
    w.expect_no_message(0.6)
    m = w.expect_message(timeout=4)
    assert m.payload == b"late"


def test_5_will_delay_cancelled_by_reconnect(broker):
    w = watch(broker, "will/cancel")
    r = Raw(broker, 5)
    r.connect("will-cancel", props=[("SessionExpiryInterval", 30)],
              will=raw_will("will/cancel", b"should-not", delay=2))
    r.close()
    time.sleep(0.2)
    r = Raw(broker, 5)
    present = r.connect("will-cancel", clean=False, props=[("SessionExpiryInterval", 30)]).session_present
    assert present
    w.expect_no_message(3.0)  # [MQTT-3.1.2-8]: a new connection within the delay cancels the will


def test_5_will_delay_ends_early_when_session_expires(broker):
    # 3.1.3.2.2: the will is published when the delay elapses or the session ends, whichever is first.
    w = watch(broker, "will/expiry")
    r = Raw(broker, 5)
    r.connect("will-expiry", props=[("SessionExpiryInterval", 1)],
              will=raw_will("will/expiry", b"session-over", delay=60))
    r.close()
    m = w.expect_message(timeout=4)
    assert m.payload == b"session-over"


@pytest.mark.bastion_only  # mosquitto 2.0.11 waits for the will delay although the session ended at once (3.1.3.2.2)
def test_5_will_delay_with_session_expiry_zero_is_immediate(broker):
    w = watch(broker, "will/exp0")
    r = Raw(broker, 5)
    r.connect("will-exp0", will=raw_will("will/exp0", b"now", delay=60))
    r.close()
    assert w.expect_message(timeout=2).payload == b"now"


@pytest.mark.bastion_only  # BEHAVIOUR.md (3.1.3.2.2 note): Clean Start 1 ends the session, so the will goes out; mosquitto 2.0.11 drops it
def test_5_clean_start_reconnect_during_will_delay_publishes_will(broker):
    # 3.1.3.2.2 note: Clean Start 1 ends the old session, so its will is sent.
    w = watch(broker, "will/clean")
    r = Raw(broker, 5)
    r.connect("will-clean", props=[("SessionExpiryInterval", 30)],
              will=raw_will("will/clean", b"session-ended", delay=30))
    r.close()
    time.sleep(0.2)
    r = Raw(broker, 5)
    present = r.connect("will-clean", clean=True).session_present
    assert not present
    assert w.expect_message(timeout=3).payload == b"session-ended"


# ------------------------------------------------------------------ will content

def test_5_will_properties_are_forwarded(broker):
    w = watch(broker, "will/props")
    wp = props(PacketTypes.WILLMESSAGE, ContentType="application/json", ResponseTopic="reply/here",
               CorrelationData=b"\x01\x02corr", PayloadFormatIndicator=1, MessageExpiryInterval=120)
    wp.UserProperty = [("k1", "v1"), ("k2", "v2")]
    c = Client(broker, protocol=V5, will=dict(topic="will/props", payload=b'{"gone":true}', qos=1, properties=wp))
    c.drop()
    m = w.expect_message()
    p = m.properties
    assert m.payload == b'{"gone":true}'
    assert p.ContentType == "application/json"
    assert p.ResponseTopic == "reply/here"
    assert p.CorrelationData == b"\x01\x02corr"
    assert p.PayloadFormatIndicator == 1
    assert 0 < p.MessageExpiryInterval <= 120
    assert p.UserProperty == [("k1", "v1"), ("k2", "v2")]  # order kept [MQTT-3.3.2-18]


def test_5_will_properties_raw(broker):
    w = Raw(broker, 5)
    w.connect("will-props-watch")
    w.sub([("will/rawprops", 1)])
    r = Raw(broker, 5)
    r.connect("will-props-raw", will=raw_will("will/rawprops", b"x", extra=[
        ("ContentType", "text/plain"), ("UserProperty", ("a", "1")), ("UserProperty", ("a", "2")),
        ("MessageExpiryInterval", 50), ("PayloadFormatIndicator", 1), ("ResponseTopic", "r/t"), ("CorrelationData", b"cd")]))
    r.close()
    m = w.expect_publish()
    p = m.props
    assert p["ContentType"] == "text/plain"
    assert p["UserProperty"] == [("a", "1"), ("a", "2")]
    assert 0 < p["MessageExpiryInterval"] <= 50
    assert p["PayloadFormatIndicator"] == 1
    assert p["ResponseTopic"] == "r/t"
    assert p["CorrelationData"] == b"cd"
    assert "WillDelayInterval" not in p


@pytest.mark.parametrize("protocol", [V311, V5], ids=["3.1.1", "5.0"])
def test_will_retain_flag_makes_will_retained(broker, protocol):
    c = Client(broker, protocol=protocol, will=dict(topic="will/retained", payload=b"last-word", qos=1, retain=True))
    c.drop()
    time.sleep(0.3)
    late = Client(broker, protocol=protocol)
    late.subscribe("will/retained", 1)
    m = late.expect_message()
    assert (m.payload, m.retain) == (b"last-word", True)


def test_will_without_retain_is_not_retained(broker):
    c = Client(broker, protocol=V311, will=dict(topic="will/notret", payload=b"x", qos=1))
    w = watch(broker, "will/notret", protocol=V311)
    c.drop()
    w.expect_message()
    late = Client(broker, protocol=V311)
    late.subscribe("will/notret", 1)
    late.expect_no_message(0.5)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_will_qos_is_used(broker, qos):
    w = watch(broker, "will/qos", qos=2)
    c = Client(broker, protocol=V311, will=dict(topic="will/qos", payload=b"q", qos=qos))
    c.drop()
    assert w.expect_message().qos == qos


def test_will_is_sent_once(broker):
    w = watch(broker, "will/once")
    r = Raw(broker, 4)
    r.connect("will-once", clean=False, will=raw_will("will/once", b"once"))
    r.close()
    assert w.expect_message().payload == b"once"
    # Reconnecting without a will and dropping again must not repeat the old will.
    r = Raw(broker, 4)
    r.connect("will-once", clean=False)
    r.close()
    w.expect_no_message(1.0)
