"""5.0 shared subscriptions ($share/GROUP/FILTER): distribution, groups, retained messages,
re-delivery of a departed member's unacknowledged messages, invalid shared filters."""

import queue
import time

import paho.mqtt.client as mqtt
import pytest

from mqttclient import V5, Client, close_clients, props  # noqa: F401 (autouse fixture)
from wire import (RC_MALFORMED, RC_PROTOCOL_ERROR, SUBACK, assert_disconnected, assert_serving, connected,
                  sub_options, subscribe, unique)  # noqa: F401
from paho.mqtt.packettypes import PacketTypes


def members(broker, share, n, qos=1):
    out = []
    for _ in range(n):
        c = Client(broker, protocol=V5)
        assert [int(x.value) for x in c.subscribe(share, qos)] == [qos]
        out.append(c)
    return out


def collect(group, n, settle=0.3):
    """Wait until the members of `group` received `n` messages in total, give stragglers `settle`
    seconds, and return each member's messages."""
    got = [[] for _ in group]
    deadline = time.monotonic() + 5
    while sum(map(len, got)) < n and time.monotonic() < deadline:
        for i, c in enumerate(group):
            try:
                got[i].append(c.messages.get(timeout=0.01))
            except queue.Empty:
                pass
    time.sleep(settle)
    for i, c in enumerate(group):
        while not c.messages.empty():
            got[i].append(c.messages.get_nowait())
    return got


def test_round_robin_among_members(broker):
    topic = unique("sh")
    group = members(broker, f"$share/g/{topic}", 3)
    pub = Client(broker)
    for i in range(30):
        pub.publish(topic, str(i).encode(), qos=1)
    got = collect(group, 30)
    seen = [int(m.payload) for msgs in got for m in msgs]
    assert sorted(seen) == list(range(30)), "every message goes to exactly one member"
    assert [len(msgs) for msgs in got] == [10, 10, 10]


def test_each_group_gets_every_message_and_normal_subscribers_too(broker):
    topic = unique("sh")
    g1 = members(broker, f"$share/one/{topic}", 2)
    g2 = members(broker, f"$share/two/{topic}", 3)
    normal = Client(broker)
    normal.subscribe(topic, 1)
    pub = Client(broker)
    for i in range(12):
        pub.publish(topic, str(i).encode(), qos=1)
    for group in (g1, g2):
        seen = sorted(int(m.payload) for msgs in collect(group, 12) for m in msgs)
        assert seen == list(range(12))
    assert sorted(int(m.payload) for m in normal.expect_messages(12)) == list(range(12))
    normal.expect_no_message(0.2)


def test_shared_filter_with_wildcards(broker):
    root = unique("sh")
    (member,) = members(broker, f"$share/g/{root}/+/x/#", 1)
    pub = Client(broker)
    pub.publish(f"{root}/a/x", b"1", qos=1)
    pub.publish(f"{root}/b/x/y/z", b"2", qos=1)
    pub.publish(f"{root}/a/y", b"3", qos=1)
    got = member.expect_messages(2)
    assert sorted(m.topic for m in got) == [f"{root}/a/x", f"{root}/b/x/y/z"]
    member.expect_no_message(0.3)


def test_same_client_shared_and_normal_subscription_gets_two_copies(broker):
    # 5.0 4.8.2: the non-shared subscription gives one copy, the shared one a second (only member).
    topic = unique("sh")
    c = Client(broker)
    c.subscribe(topic, 1)
    c.subscribe(f"$share/g/{topic}", 1)
    Client(broker).publish(topic, b"x", qos=1)
    got = c.expect_messages(2)
    assert [m.payload for m in got] == [b"x", b"x"]
    c.expect_no_message(0.3)


@pytest.mark.bastion_only  # BEHAVIOUR.md decision; mosquitto 2.0.11 sends retained messages to shared subs
def test_no_retained_messages_on_shared_subscription(broker):
    topic = unique("sh")
    pub = Client(broker)
    pub.publish(topic, b"kept", qos=1, retain=True)
    (member,) = members(broker, f"$share/g/{topic}", 1)
    member.expect_no_message(0.7)
    pub.publish(topic, b"live", qos=1)
    m = member.expect_message()
    assert m.payload == b"live"
    pub.publish(topic, b"", qos=1, retain=True)


def test_shared_delivery_qos_and_subscription_identifier(broker):
    topic = unique("sh")
    c = Client(broker)
    c.subscribe(f"$share/g/{topic}", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    Client(broker).publish(topic, b"x", qos=2)
    m = c.expect_message()
    assert m.qos == 1
    assert m.properties.SubscriptionIdentifier == [9]


def test_unsubscribed_member_leaves_the_group(broker):
    topic = unique("sh")
    a, b = members(broker, f"$share/g/{topic}", 2)
    codes = a.unsubscribe(f"$share/g/{topic}")
    assert [int(x.value) for x in codes] == [0]
    pub = Client(broker)
    for i in range(6):
        pub.publish(topic, str(i).encode(), qos=1)
    assert sorted(int(m.payload) for m in b.expect_messages(6)) == list(range(6))
    a.expect_no_message(0.3)


def test_disconnected_member_leaves_the_group(broker):
    topic = unique("sh")
    a, b = members(broker, f"$share/g/{topic}", 2)
    a.disconnect()
    pub = Client(broker)
    for i in range(6):
        pub.publish(topic, str(i).encode(), qos=1)
    assert sorted(int(m.payload) for m in b.expect_messages(6)) == list(range(6))


@pytest.mark.bastion_only  # spec: SHOULD; mosquitto 2.0.11 drops a departed member's in-flight messages
def test_unacked_messages_of_departed_member_go_to_another_member(broker):
    topic = unique("sh")
    share = f"$share/g/{topic}"
    # A raw member that receives QoS 1 messages and never acknowledges them (session ends on close).
    rawm = connected(broker, version=5)
    assert rawm.sub([(share, 1)]).codes == [1]
    (other,) = members(broker, share, 1)
    pub = Client(broker)
    for i in range(10):
        pub.publish(topic, str(i).encode(), qos=1)
    unacked = []
    while True:
        try:
            unacked.append(int(rawm.expect_publish(timeout=0.5, ack_it=False).payload))
        except TimeoutError:
            break
    assert unacked, "the raw member received nothing: distribution is not round-robin"
    rawm.close()
    seen = set()
    deadline = time.monotonic() + 5
    while len(seen) < 10 and time.monotonic() < deadline:
        try:
            seen.add(int(other.messages.get(timeout=0.2).payload))
        except queue.Empty:
            pass
    assert sorted(seen) == list(range(10)), f"raw member had {unacked}; other saw {sorted(seen)}"


@pytest.mark.bastion_only  # mosquitto 2.0.11 accepts No Local on a shared subscription (violates the spec)
def test_no_local_on_shared_subscription_is_protocol_error(broker):
    # MQTT-3.8.3-4: It is a Protocol Error to set No Local on a Shared Subscription.
    r = connected(broker)
    r.send(subscribe(1, [(f"$share/g/{unique('sh')}", sub_options(qos=1, no_local=True))]))
    assert_disconnected(r, RC_PROTOCOL_ERROR)
    assert_serving(broker)


@pytest.mark.bastion_only  # shape of the answer to a bad $share filter is Bastion's (BEHAVIOUR.md: 0x81)
@pytest.mark.parametrize("flt", ["$share/g", "$share/g/", "$share//t", "$share/g+/t", "$share/g#/t", "$share/+/t"])
def test_invalid_shared_filter_is_malformed(broker, flt):
    r = connected(broker)
    r.send(subscribe(1, [(flt, 1)]))
    assert_disconnected(r, RC_MALFORMED)
    assert_serving(broker)
