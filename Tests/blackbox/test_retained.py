"""Retained messages: store, replace, clear, delivery on subscribe (RETAIN flag), wildcards,
5.0 Retain Handling and Retain As Published, expiry of retained messages."""

import time

import paho.mqtt.client as mqtt
import pytest

from mqttclient import V5, V311, Client, close_clients, props  # noqa: F401 (autouse fixture)
from wire import unique
from paho.mqtt.packettypes import PacketTypes

BOTH = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


def retain_opts(qos=1, rh=0, rap=False):
    return mqtt.SubscribeOptions(qos=qos, retainHandling=rh, retainAsPublished=rap)


@BOTH
def test_retained_delivered_on_subscribe_with_retain_flag(broker, version):
    topic = unique("ret")
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"kept", qos=1, retain=True)
    pub.disconnect()
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 1)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.retain, m.qos) == (topic, b"kept", True, 1)
    sub.expect_no_message(0.3)


@BOTH
def test_live_message_has_retain_flag_cleared(broker, version):
    # 3.1.1 MQTT-3.3.1-9 / 5.0 MQTT-3.3.1-12 (Retain As Published 0).
    topic = unique("ret")
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 1)
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"live", qos=1, retain=True)
    m = sub.expect_message()
    assert m.payload == b"live" and m.retain is False
    pub.publish(topic, b"plain", qos=1)
    m = sub.expect_message()
    assert m.payload == b"plain" and m.retain is False


@BOTH
def test_retained_message_replaced(broker, version):
    topic = unique("ret")
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"one", qos=1, retain=True)
    pub.publish(topic, b"two", qos=1, retain=True)
    pub.publish(topic, b"not-retained", qos=1)  # a non-retained publish does not touch the store
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 1)
    m = sub.expect_message()
    assert (m.payload, m.retain) == (b"two", True)
    sub.expect_no_message(0.3)


@BOTH
def test_qos0_retained_message_replaces_too(broker, version):
    # 3.1.1 MQTT-3.3.1-7: a retained QoS 0 message replaces the previous retained message.
    topic = unique("ret")
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"q1", qos=1, retain=True)
    pub.publish(topic, b"q0", qos=0, retain=True)
    pub.publish(topic, b"sync", qos=1)  # ordering: once this is acknowledged the QoS 0 one was handled
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 1)
    m = sub.expect_message()
    assert (m.payload, m.retain, m.qos) == (b"q0", True, 0)


@BOTH
def test_empty_payload_clears_retained_and_is_forwarded(broker, version):
    # 3.1.1 MQTT-3.3.1-10/11: a zero-byte retained PUBLISH is delivered normally, then removes the
    # retained message; it is not itself stored.
    topic = unique("ret")
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"kept", qos=1, retain=True)
    live = Client(broker, protocol=version)
    live.subscribe(topic, 1)
    assert live.expect_message().payload == b"kept"
    pub.publish(topic, b"", qos=1, retain=True)
    m = live.expect_message()
    assert m.payload == b"" and m.retain is False
    late = Client(broker, protocol=version)
    late.subscribe(topic, 1)
    late.expect_no_message(0.7)


@BOTH
def test_wildcard_subscription_receives_all_matching_retained(broker, version):
    root = unique("ret")
    pub = Client(broker, protocol=version)
    stored = {f"{root}/a/1": b"1", f"{root}/a/2": b"2", f"{root}/a/x/3": b"3", f"{root}/a": b"0",
              f"{root}/b/1": b"b"}
    for t, p in stored.items():
        pub.publish(t, p, qos=1, retain=True)
    hash_sub = Client(broker, protocol=version)
    hash_sub.subscribe(f"{root}/a/#", 1)
    got = {m.topic: (m.payload, m.retain) for m in hash_sub.expect_messages(4)}
    assert got == {t: (p, True) for t, p in stored.items() if not t.startswith(f"{root}/b")}
    hash_sub.expect_no_message(0.3)
    plus_sub = Client(broker, protocol=version)
    plus_sub.subscribe(f"{root}/+/1", 1)
    got = {m.topic for m in plus_sub.expect_messages(2)}
    assert got == {f"{root}/a/1", f"{root}/b/1"}
    plus_sub.expect_no_message(0.3)


@BOTH
@pytest.mark.parametrize("pub_qos,sub_qos,expected", [(2, 1, 1), (1, 0, 0), (0, 2, 0), (1, 2, 1)])
def test_retained_delivery_qos_is_minimum(broker, version, pub_qos, sub_qos, expected):
    topic = unique("ret")
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"q", qos=pub_qos, retain=True)
    pub.publish(unique("sync"), b"", qos=1)
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, sub_qos)
    m = sub.expect_message()
    assert (m.qos, m.retain) == (expected, True)


def test_retained_crosses_protocol_versions(broker):
    t1, t2 = unique("ret"), unique("ret")
    Client(broker, protocol=V311).publish(t1, b"from311", qos=1, retain=True)
    Client(broker, protocol=V5).publish(t2, b"from5", qos=1, retain=True)
    s5 = Client(broker, protocol=V5)
    s5.subscribe(t1, 1)
    assert (s5.expect_message().payload) == b"from311"
    s3 = Client(broker, protocol=V311)
    s3.subscribe(t2, 1)
    m = s3.expect_message()
    assert (m.payload, m.retain) == (b"from5", True)


def test_retained_keeps_publish_properties(broker):
    topic = unique("ret")
    pub = Client(broker)
    p = props(ContentType="text/plain", PayloadFormatIndicator=1, ResponseTopic="reply/here",
              CorrelationData=b"\x00\x01", UserProperty=[("k", "v1"), ("k", "v2")])
    pub.publish(topic, b"hello", qos=1, retain=True, properties=p)
    sub = Client(broker)
    sub.subscribe(topic, 1)
    m = sub.expect_message()
    assert m.retain
    assert m.properties.ContentType == "text/plain"
    assert m.properties.PayloadFormatIndicator == 1
    assert m.properties.ResponseTopic == "reply/here"
    assert m.properties.CorrelationData == b"\x00\x01"
    assert m.properties.UserProperty == [("k", "v1"), ("k", "v2")]


def test_retain_handling_0_sends_on_every_subscribe(broker):
    topic = unique("rh")
    Client(broker).publish(topic, b"kept", qos=1, retain=True)
    sub = Client(broker)
    sub.subscribe(topic, options=retain_opts(rh=0))
    assert sub.expect_message().retain
    sub.subscribe(topic, options=retain_opts(rh=0))
    m = sub.expect_message()
    assert (m.payload, m.retain) == (b"kept", True)


def test_retain_handling_1_sends_only_for_new_subscription(broker):
    topic = unique("rh")
    Client(broker).publish(topic, b"kept", qos=1, retain=True)
    sub = Client(broker)
    sub.subscribe(topic, options=retain_opts(rh=1))
    m = sub.expect_message()
    assert (m.payload, m.retain) == (b"kept", True)
    sub.subscribe(topic, options=retain_opts(rh=1))  # existing subscription: nothing
    sub.expect_no_message(0.7)
    sub.unsubscribe(topic)
    sub.subscribe(topic, options=retain_opts(rh=1))  # new again after unsubscribe
    assert sub.expect_message().payload == b"kept"


def test_retain_handling_2_never_sends_retained(broker):
    topic = unique("rh")
    pub = Client(broker)
    pub.publish(topic, b"kept", qos=1, retain=True)
    sub = Client(broker)
    sub.subscribe(topic, options=retain_opts(rh=2))
    sub.expect_no_message(0.7)
    pub.publish(topic, b"live", qos=1)  # live messages still flow
    assert sub.expect_message().payload == b"live"


def test_retain_as_published(broker):
    topic = unique("rap")
    rap = Client(broker)
    rap.subscribe(topic, options=retain_opts(rap=True))
    norap = Client(broker)
    norap.subscribe(topic, options=retain_opts(rap=False))
    pub = Client(broker)
    pub.publish(topic, b"r", qos=1, retain=True)
    pub.publish(topic, b"n", qos=1, retain=False)
    a = rap.expect_messages(2)
    assert [(m.payload, m.retain) for m in a] == [(b"r", True), (b"n", False)]
    b = norap.expect_messages(2)
    assert [(m.payload, m.retain) for m in b] == [(b"r", False), (b"n", False)]


def test_retained_on_subscribe_has_retain_flag_whatever_rap(broker):
    topic = unique("rap")
    Client(broker).publish(topic, b"kept", qos=1, retain=True)
    for rap in (False, True):
        sub = Client(broker)
        sub.subscribe(topic, options=retain_opts(rap=rap))
        assert sub.expect_message().retain is True


def test_expired_retained_message_is_not_delivered(broker):
    # 5.0 3.3.2.3.3: when the retained message expires it is discarded.
    topic = unique("rexp")
    pub = Client(broker)
    pub.publish(topic, b"short", qos=1, retain=True, properties=props(MessageExpiryInterval=1))
    time.sleep(2.1)
    sub = Client(broker)
    sub.subscribe(topic, 1)
    sub.expect_no_message(0.7)


def test_retained_message_expiry_is_decremented(broker):
    topic = unique("rexp")
    pub = Client(broker)
    pub.publish(topic, b"long", qos=1, retain=True, properties=props(MessageExpiryInterval=100))
    time.sleep(2.1)
    sub = Client(broker)
    sub.subscribe(topic, 1)
    m = sub.expect_message()
    assert m.payload == b"long"
    assert 90 <= m.properties.MessageExpiryInterval <= 98
