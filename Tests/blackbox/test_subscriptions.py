"""Topic filters, wildcard matching, overlapping subscriptions, 5.0 subscription options
(subscription identifiers, No Local), QoS downgrade, unsubscribe and subscription replacement."""

import paho.mqtt.client as mqtt
import pytest

from mqttclient import V5, V311, Client, close_clients, props  # noqa: F401 (autouse fixture)
from wire import unique
from paho.mqtt.packettypes import PacketTypes

BOTH = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


def topics_received(c, n, timeout=5.0):
    return sorted(m.topic for m in c.expect_messages(n, timeout))


@BOTH
def test_plus_matches_exactly_one_level(broker, version):
    root = unique("sub")
    sub = Client(broker, protocol=version)
    sub.subscribe(f"{root}/+/c", 1)
    pub = Client(broker, protocol=version)
    for t in [f"{root}/b/c", f"{root}/b/d/c", f"{root}/c", f"{root}/b/c/d", f"{root}/x/c"]:
        pub.publish(t, b"m", qos=1)
    assert topics_received(sub, 2) == [f"{root}/b/c", f"{root}/x/c"]
    sub.expect_no_message(0.5)


@BOTH
def test_plus_matches_an_empty_level(broker, version):
    root = unique("sub")
    sub = Client(broker, protocol=version)
    sub.subscribe(f"{root}/+/c", 1)
    sub.subscribe(f"{root}/x/+", 1)
    pub = Client(broker, protocol=version)
    pub.publish(f"{root}//c", b"1", qos=1)   # empty middle level matched by +
    pub.publish(f"{root}/x/", b"2", qos=1)   # empty last level matched by +
    assert topics_received(sub, 2) == [f"{root}//c", f"{root}/x/"]


def test_plus_and_leading_slash(broker):
    # Spec examples: "+/+" and "/+" match "/finance"; "+" does not.
    level = unique("fin").replace("/", "")
    subs = {f: Client(broker) for f in ["+/+", "/+", "+"]}
    for f, c in subs.items():
        c.subscribe(f, 1)
    pub = Client(broker)
    pub.publish(f"/{level}", b"x", qos=1)
    for f in ["+/+", "/+"]:
        assert subs[f].expect_message().topic == f"/{level}"
    # "+" may receive unrelated single-level traffic from nobody else in this test: nothing at all.
    subs["+"].expect_no_message(0.5)


@BOTH
def test_hash_matches_parent_and_all_descendants(broker, version):
    root = unique("sub")
    sub = Client(broker, protocol=version)
    sub.subscribe(f"{root}/a/#", 1)
    pub = Client(broker, protocol=version)
    for t in [f"{root}/a", f"{root}/a/b", f"{root}/a/b/c", f"{root}/ab", f"{root}/b/a", f"{root}/a/"]:
        pub.publish(t, b"m", qos=1)
    assert topics_received(sub, 4) == sorted([f"{root}/a", f"{root}/a/", f"{root}/a/b", f"{root}/a/b/c"])
    sub.expect_no_message(0.5)


def test_hash_alone_matches_everything_not_dollar(broker):
    root = unique("sub")
    sub = Client(broker)
    sub.subscribe("#", 1)
    pub = Client(broker)
    pub.publish(f"{root}/x/y", b"1", qos=1)
    pub.publish(f"/{root}", b"2", qos=1)
    got = set()
    for _ in range(2):
        got.add(sub.expect_message().topic)
    assert got == {f"{root}/x/y", f"/{root}"}


@BOTH
def test_topic_matching_is_case_sensitive_and_exact(broker, version):
    root = unique("sub")
    sub = Client(broker, protocol=version)
    sub.subscribe(f"{root}/Temp", 1)
    pub = Client(broker, protocol=version)
    for t in [f"{root}/temp", f"{root}/Temp ", f"{root}/Temp/", f"{root}/Temp"]:
        pub.publish(t, t.encode(), qos=1)
    m = sub.expect_message()
    assert m.topic == f"{root}/Temp"
    sub.expect_no_message(0.5)


@BOTH
def test_dollar_topics_not_matched_by_leading_wildcards(broker, version):
    # MQTT-4.7.2-1: filters starting with a wildcard must not match topics starting with '$'.
    name = "$bbtest" + unique("").replace("/", "")
    hash_sub = Client(broker, protocol=version)
    hash_sub.subscribe("#", 1)
    plus_sub = Client(broker, protocol=version)
    plus_sub.subscribe("+/x", 1)
    plus_hash = Client(broker, protocol=version)
    plus_hash.subscribe("+/#", 1)
    explicit = Client(broker, protocol=version)
    explicit.subscribe(f"{name}/#", 1)
    explicit_plus = Client(broker, protocol=version)
    explicit_plus.subscribe(f"{name}/+", 1)
    pub = Client(broker, protocol=version)
    pub.publish(f"{name}/x", b"dollar", qos=1)
    m = explicit.expect_message()
    assert (m.topic, m.payload) == (f"{name}/x", b"dollar")
    assert explicit_plus.expect_message().topic == f"{name}/x"
    hash_sub.expect_no_message(0.5)
    plus_sub.expect_no_message(0.1)
    plus_hash.expect_no_message(0.1)


@BOTH
@pytest.mark.parametrize("pub_qos,sub_qos,expected", [(2, 1, 1), (2, 0, 0), (1, 0, 0), (0, 2, 0), (1, 2, 1), (2, 2, 2)])
def test_delivery_qos_is_minimum_of_publish_and_granted(broker, version, pub_qos, sub_qos, expected):
    topic = unique("qos")
    sub = Client(broker, protocol=version)
    assert [int(getattr(c, "value", c)) for c in sub.subscribe(topic, sub_qos)] == [sub_qos]
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"q", qos=pub_qos)
    m = sub.expect_message()
    assert m.qos == expected


@BOTH
def test_suback_has_one_code_per_filter_in_order(broker, version):
    root = unique("sub")
    c = Client(broker, protocol=version)
    filters = [(f"{root}/a", 2), (f"{root}/b", 0), (f"{root}/c/#", 1)]
    if version == V5:
        _, mid = c.c.subscribe([(f, mqtt.SubscribeOptions(qos=q)) for f, q in filters])
    else:
        _, mid = c.c.subscribe(filters)
    got_mid, codes, _ = c.subacks.get(timeout=5)
    assert got_mid == mid
    assert [int(getattr(x, "value", x)) for x in codes] == [2, 0, 1]


def test_overlapping_subscriptions_deliver_at_least_max_qos(broker):
    # MQTT-3.3.4-2: with several matching subscriptions the message is delivered respecting the
    # maximum QoS of all of them (further copies are allowed by the spec).
    root = unique("ovl")
    sub = Client(broker)
    sub.subscribe(f"{root}/+", 1)
    sub.subscribe(f"{root}/#", 2)
    pub = Client(broker)
    pub.publish(f"{root}/x", b"o", qos=2)
    first = sub.expect_message()
    qoses = [first.qos]
    try:
        qoses.append(sub.expect_message(0.5).qos)
    except AssertionError:
        pass
    assert max(qoses) == 2


@pytest.mark.bastion_only  # the spec allows one copy per subscription; Bastion sends ONE (BEHAVIOUR.md)
def test_overlapping_subscriptions_one_message_with_all_subscription_ids(broker):
    root = unique("ovl")
    sub = Client(broker)
    sub.subscribe(f"{root}/+", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe(f"{root}/#", 2, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    sub.subscribe(f"{root}/x", 0)  # no identifier: contributes nothing to the list
    pub = Client(broker)
    pub.publish(f"{root}/x", b"o", qos=2)
    m = sub.expect_message()
    assert m.qos == 2
    assert sorted(m.properties.SubscriptionIdentifier) == [7, 42]
    sub.expect_no_message(0.7)


@pytest.mark.bastion_only  # spec allows one copy per subscription; Bastion sends one per client
@BOTH
def test_overlapping_subscriptions_one_copy(broker, version):
    root = unique("ovl")
    sub = Client(broker, protocol=version)
    sub.subscribe(f"{root}/#", 0)
    sub.subscribe(f"{root}/+/c", 1)
    sub.subscribe(f"{root}/b/c", 2)
    pub = Client(broker, protocol=version)
    pub.publish(f"{root}/b/c", b"one", qos=1)
    m = sub.expect_message()
    assert (m.payload, m.qos) == (b"one", 1)
    sub.expect_no_message(0.7)


def test_subscription_identifier_delivered(broker):
    root = unique("sid")
    sub = Client(broker)
    sub.subscribe(f"{root}/#", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=268435455))
    plain = Client(broker)
    plain.subscribe(f"{root}/#", 1)
    pub = Client(broker)
    pub.publish(f"{root}/a", b"x", qos=1)
    m = sub.expect_message()
    assert m.properties.SubscriptionIdentifier == [268435455]
    m2 = plain.expect_message()
    assert not hasattr(m2.properties, "SubscriptionIdentifier")


def test_subscription_identifier_on_retained_message(broker):
    topic = unique("sid")
    pub = Client(broker)
    pub.publish(topic, b"kept", qos=1, retain=True)
    sub = Client(broker)
    sub.subscribe(topic, 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=5))
    m = sub.expect_message()
    assert m.retain and m.properties.SubscriptionIdentifier == [5]
    pub.publish(topic, b"", qos=1, retain=True)


def test_resubscribe_replaces_subscription_identifier(broker):
    topic = unique("sid")
    sub = Client(broker)
    sub.subscribe(topic, 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=1))
    sub.subscribe(topic, 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=2))
    pub = Client(broker)
    pub.publish(topic, b"x", qos=1)
    m = sub.expect_message()
    assert m.properties.SubscriptionIdentifier == [2]
    sub.expect_no_message(0.5)
    # and a re-subscription without an identifier removes it (MQTT-3.8.4-3 replaces the options)
    sub.subscribe(topic, 1)
    pub.publish(topic, b"y", qos=1)
    m = sub.expect_message()
    assert not hasattr(m.properties, "SubscriptionIdentifier")


def test_no_local_suppresses_own_messages(broker):
    topic = unique("nl")
    me = Client(broker)
    me.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, noLocal=True))
    other = Client(broker)
    other.subscribe(topic, 1)
    me.publish(topic, b"mine", qos=1)
    assert other.expect_message().payload == b"mine"
    me.expect_no_message(0.5)
    other.publish(topic, b"theirs", qos=1)
    assert me.expect_message().payload == b"theirs"


def test_without_no_local_own_messages_arrive(broker):
    topic = unique("nl")
    me = Client(broker)
    me.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, noLocal=False))
    me.publish(topic, b"mine", qos=1)
    assert me.expect_message().payload == b"mine"


@BOTH
def test_unsubscribe_stops_delivery(broker, version):
    topic = unique("uns")
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 1)
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"before", qos=1)
    assert sub.expect_message().payload == b"before"
    codes = sub.unsubscribe(topic)
    if version == V5:
        assert [int(getattr(x, "value", x)) for x in codes] == [0x00]
    pub.publish(topic, b"after", qos=1)
    sub.expect_no_message(0.7)


def test_unsubscribe_unknown_filter_gets_0x11(broker):
    root = unique("uns")
    c = Client(broker)
    c.subscribe(f"{root}/a", 0)
    _, mid = c.c.unsubscribe([f"{root}/a", f"{root}/never", f"{root}/+"])
    got_mid, codes, _ = c.unsubacks.get(timeout=5)
    assert got_mid == mid
    assert [int(getattr(x, "value", x)) for x in codes] == [0x00, 0x11, 0x11]


@BOTH
def test_unsubscribe_matches_filter_string_not_topics(broker, version):
    # Unsubscribing "a/+" removes nothing but the "a/+" filter; the exact filter "a/b" stays.
    root = unique("uns")
    sub = Client(broker, protocol=version)
    sub.subscribe(f"{root}/b", 1)
    sub.subscribe(f"{root}/+", 1)
    sub.unsubscribe(f"{root}/+")
    pub = Client(broker, protocol=version)
    pub.publish(f"{root}/b", b"still", qos=1)
    pub.publish(f"{root}/c", b"gone", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.payload) == (f"{root}/b", b"still")
    sub.expect_no_message(0.5)


@BOTH
def test_resubscribe_same_filter_replaces_qos(broker, version):
    topic = unique("rep")
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 0)
    sub.subscribe(topic, 2)
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"x", qos=2)
    m = sub.expect_message()
    assert m.qos == 2
    sub.expect_no_message(0.5)  # replaced, not added: exactly one copy
    sub.subscribe(topic, 1)
    pub.publish(topic, b"y", qos=2)
    m = sub.expect_message()
    assert m.qos == 1
    sub.expect_no_message(0.5)


@pytest.mark.bastion_only  # MQTT-3.8.4-3; mosquitto 2.0.11 keeps the old No Local option (spec violation)
def test_resubscribe_replaces_no_local(broker):
    topic = unique("rep")
    me = Client(broker)
    me.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, noLocal=True))
    me.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, noLocal=False))
    me.publish(topic, b"mine", qos=1)
    assert me.expect_message().payload == b"mine"


@BOTH
def test_resubscribe_resends_retained(broker, version):
    # 3.1.1 MQTT-3.8.4-3 / 5.0 Retain Handling 0: retained messages are re-sent on a re-subscription.
    topic = unique("rep")
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"kept", qos=1, retain=True)
    sub = Client(broker, protocol=version)
    sub.subscribe(topic, 1)
    assert sub.expect_message().retain
    sub.subscribe(topic, 1)
    m = sub.expect_message()
    assert m.retain and m.payload == b"kept"
    pub.publish(topic, b"", qos=1, retain=True)


@BOTH
def test_subscriptions_are_per_client(broker, version):
    root = unique("per")
    a = Client(broker, protocol=version)
    b = Client(broker, protocol=version)
    a.subscribe(f"{root}/a", 1)
    b.subscribe(f"{root}/b", 1)
    pub = Client(broker, protocol=version)
    pub.publish(f"{root}/a", b"for-a", qos=1)
    pub.publish(f"{root}/b", b"for-b", qos=1)
    assert a.expect_message().payload == b"for-a"
    assert b.expect_message().payload == b"for-b"
    a.expect_no_message(0.3)
    b.expect_no_message(0.3)


@BOTH
def test_many_subscribers_each_receive_once(broker, version):
    topic = unique("fan")
    subs = [Client(broker, protocol=version) for _ in range(5)]
    for s in subs:
        s.subscribe(topic, 1)
    pub = Client(broker, protocol=version)
    pub.publish(topic, b"fan", qos=1)
    for s in subs:
        assert s.expect_message().payload == b"fan"
    for s in subs:
        s.expect_no_message(0.1)
