"""MQTT 5.0 properties end to end: topic aliases both ways, message expiry, payload format and
content type, request/response, user properties, Maximum Packet Size, Receive Maximum, reason
strings and Request Problem Information, server-initiated DISCONNECT, AUTH without a method."""

import signal
import time

import pytest

from mqttclient import V5, V311, Client, close_clients, props  # noqa: F401 (autouse fixture)
from wire import (AUTH, CONNACK, DISCONNECT, PUBACK, PUBCOMP, PUBLISH, PUBREL, RC_BAD_AUTH_METHOD, RC_PACKET_TOO_LARGE,
                  RC_PROTOCOL_ERROR, RC_SERVER_SHUTTING_DOWN, RC_SESSION_TAKEN_OVER, RC_TOPIC_ALIAS_INVALID,
                  RC_TOPIC_FILTER_INVALID, Raw, ack, assert_disconnected, assert_serving, auth, connected, publish,
                  unique)  # noqa: F401
from paho.mqtt.packettypes import PacketTypes

# ----- topic aliases from the client -------------------------------------------------------------


def test_connack_advertises_topic_alias_maximum(broker):
    r = connected(broker)
    assert r.connack.props.get("TopicAliasMaximum") == 10


def test_client_topic_alias_set_then_reused(broker):
    root = unique("alias")
    sub = Client(broker)
    sub.subscribe(f"{root}/#", 1)
    r = connected(broker)
    r.pub(f"{root}/a", b"1", qos=1, props=[("TopicAlias", 1)])
    r.pub("", b"2", qos=1, props=[("TopicAlias", 1)])
    r.pub(f"{root}/b", b"3", qos=1, props=[("TopicAlias", 1)])  # remap alias 1
    r.pub("", b"4", qos=1, props=[("TopicAlias", 1)])
    r.pub(f"{root}/c", b"5", qos=0, props=[("TopicAlias", 10)])  # the maximum is allowed
    r.pub("", b"6", qos=1, props=[("TopicAlias", 10)])
    got = [(m.topic, m.payload) for m in sub.expect_messages(6)]
    assert got == [(f"{root}/a", b"1"), (f"{root}/a", b"2"), (f"{root}/b", b"3"), (f"{root}/b", b"4"),
                   (f"{root}/c", b"5"), (f"{root}/c", b"6")]


def test_topic_alias_is_not_forwarded_to_subscribers(broker):
    topic = unique("alias")
    s = connected(broker)  # no Topic Alias Maximum: must never get a Topic Alias (MQTT-3.1.2-26)
    s.sub([(topic, 0)])
    p = connected(broker)
    p.pub(topic, b"1", props=[("TopicAlias", 3)])
    p.pub("", b"2", props=[("TopicAlias", 3)])
    for payload in (b"1", b"2"):
        m = s.expect_publish(ack_it=True)
        assert (m.topic, m.payload) == (topic, payload)
        assert "TopicAlias" not in m.props


def test_topic_alias_above_maximum_is_disconnected_0x94(broker):
    r = connected(broker)
    r.send(publish(unique("alias"), b"x", props=[("TopicAlias", 11)]))
    assert_disconnected(r, RC_TOPIC_ALIAS_INVALID)
    assert_serving(broker)


@pytest.mark.bastion_only  # spec names no code for an unknown alias; BEHAVIOUR.md: 0x94 (mosquitto: 0x82)
def test_unknown_topic_alias_is_disconnected_0x94(broker):
    r = connected(broker)
    r.send(publish("", b"x", props=[("TopicAlias", 2)]))
    assert_disconnected(r, RC_TOPIC_ALIAS_INVALID)
    assert_serving(broker)


@pytest.mark.bastion_only  # spec names no code for alias 0; BEHAVIOUR.md: 0x94 (mosquitto: 0x81)
def test_topic_alias_zero_is_disconnected_0x94(broker):
    r = connected(broker)
    r.send(publish(unique("alias"), b"x", props=[("TopicAlias", 0)]))
    assert_disconnected(r, RC_TOPIC_ALIAS_INVALID)


def test_topic_alias_mappings_do_not_survive_reconnect(broker):
    # MQTT-3.3.2-7: aliases are per network connection.
    cid = "alias-" + unique("c").replace("/", "")
    r = connected(broker, client_id=cid)
    r.pub(unique("alias"), b"x", qos=1, props=[("TopicAlias", 4)])
    r.send(b"\xe0\x00")
    r.close()
    r = connected(broker, client_id=cid)
    r.send(publish("", b"y", qos=1, pid=1, props=[("TopicAlias", 4)]))
    got = r.closed_with()
    assert got and got[-1].type == DISCONNECT and got[-1].rc >= 0x80


# ----- topic aliases towards the client ----------------------------------------------------------

@pytest.mark.bastion_only  # the server MAY assign aliases; Bastion does (BEHAVIOUR.md), mosquitto does not
def test_server_assigns_topic_alias_when_client_allows(broker):
    topic = unique("alias")
    s = connected(broker, props=[("TopicAliasMaximum", 5)])
    s.sub([(topic, 1)])
    p = Client(broker)
    for i in range(3):
        p.publish(topic, str(i).encode(), qos=1)
    first = s.expect_publish(ack_it=True)
    alias = first.props.get("TopicAlias")
    assert first.topic == topic and alias is not None and 1 <= alias <= 5
    for i in (1, 2):
        m = s.expect_publish(ack_it=True)
        assert (m.topic, m.props.get("TopicAlias"), m.payload) == ("", alias, str(i).encode())


def test_server_alias_never_above_client_maximum(broker):
    root = unique("alias")
    s = connected(broker, props=[("TopicAliasMaximum", 2)])
    s.sub([(f"{root}/#", 0)])
    p = Client(broker)
    known = {}
    for i in range(8):
        p.publish(f"{root}/{i % 4}", b"x", qos=1)
    for i in range(8):
        m = s.expect_publish(ack_it=True)
        alias = m.props.get("TopicAlias")
        if alias is not None:
            assert 1 <= alias <= 2
            if m.topic:
                known[alias] = m.topic
            else:
                assert alias in known
        else:
            assert m.topic
        assert (m.topic or known[alias]) == f"{root}/{i % 4}"


# ----- message expiry ----------------------------------------------------------------------------

def persistent(broker, cid, clean=True):
    return Client(broker, client_id=cid, clean=clean,
                  properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))


def test_queued_message_expiry_is_decremented(broker):
    cid = "exp-" + unique("c").replace("/", "")
    topic = unique("exp")
    s = persistent(broker, cid)
    s.subscribe(topic, 1)
    s.disconnect()
    Client(broker).publish(topic, b"waited", qos=1, properties=props(MessageExpiryInterval=10))
    time.sleep(2.2)
    s2 = persistent(broker, cid, clean=False)
    m = s2.expect_message()
    assert m.payload == b"waited"
    assert 5 <= m.properties.MessageExpiryInterval <= 8


def test_expired_queued_message_is_dropped(broker):
    cid = "exp-" + unique("c").replace("/", "")
    topic = unique("exp")
    s = persistent(broker, cid)
    s.subscribe(topic, 1)
    s.disconnect()
    pub = Client(broker)
    pub.publish(topic, b"short", qos=1, properties=props(MessageExpiryInterval=1))
    pub.publish(topic, b"forever", qos=1)
    time.sleep(2.2)
    s2 = persistent(broker, cid, clean=False)
    m = s2.expect_message()
    assert m.payload == b"forever"
    assert not hasattr(m.properties, "MessageExpiryInterval")
    s2.expect_no_message(0.5)


def test_live_message_expiry_forwarded(broker):
    topic = unique("exp")
    s = Client(broker)
    s.subscribe(topic, 1)
    Client(broker).publish(topic, b"x", qos=1, properties=props(MessageExpiryInterval=100))
    m = s.expect_message()
    assert 99 <= m.properties.MessageExpiryInterval <= 100


# ----- forwarded publish properties --------------------------------------------------------------

def test_payload_format_indicator_and_content_type_forwarded(broker):
    topic = unique("pfi")
    s = Client(broker)
    s.subscribe(topic, 1)
    pub = Client(broker)
    pub.publish(topic, "héllo".encode(), qos=1, properties=props(PayloadFormatIndicator=1, ContentType="text/plain; charset=utf-8"))
    pub.publish(topic, b"\xff\x00", qos=1, properties=props(PayloadFormatIndicator=0, ContentType="application/octet-stream"))
    pub.publish(topic, b"bare", qos=1)
    a, b, c = s.expect_messages(3)
    assert (a.properties.PayloadFormatIndicator, a.properties.ContentType) == (1, "text/plain; charset=utf-8")
    assert b.properties.ContentType == "application/octet-stream"
    assert getattr(b.properties, "PayloadFormatIndicator", 0) == 0
    assert not hasattr(c.properties, "PayloadFormatIndicator") and not hasattr(c.properties, "ContentType")


def test_response_topic_and_correlation_data_forwarded(broker):
    topic = unique("req")
    responder = Client(broker)
    responder.subscribe(topic, 1)
    requester = Client(broker)
    reply = unique("reply")
    requester.subscribe(reply, 1)
    requester.publish(topic, b"question", qos=1,
                      properties=props(ResponseTopic=reply, CorrelationData=b"\x00id-1\xff"))
    req = responder.expect_message()
    assert req.properties.ResponseTopic == reply
    assert req.properties.CorrelationData == b"\x00id-1\xff"
    responder.publish(req.properties.ResponseTopic, b"answer", qos=1,
                      properties=props(CorrelationData=req.properties.CorrelationData))
    ans = requester.expect_message()
    assert (ans.topic, ans.payload, ans.properties.CorrelationData) == (reply, b"answer", b"\x00id-1\xff")


def test_user_properties_forwarded_in_order_with_duplicates(broker):
    topic = unique("up")
    s = connected(broker)
    s.sub([(topic, 1)])
    pairs = [("b", "2"), ("a", "1"), ("b", "3"), ("ünï", "ç∂é"), ("a", "")]
    Client(broker).publish(topic, b"x", qos=1, properties=props(UserProperty=pairs))
    m = s.expect_publish(ack_it=True)
    assert m.props["UserProperty"] == pairs


def test_response_information_only_when_requested(broker):
    # MQTT-3.1.2-28: without Request Response Information the server must not send it.
    r = connected(broker)
    assert "ResponseInformation" not in r.connack.props
    r = connected(broker, props=[("RequestResponseInformation", 0)])
    assert "ResponseInformation" not in r.connack.props


@pytest.mark.bastion_only  # the server MAY answer Request Response Information; Bastion does
def test_response_information_returned_when_requested(broker):
    r = connected(broker, props=[("RequestResponseInformation", 1)])
    info = r.connack.props.get("ResponseInformation")
    assert info and "+" not in info and "#" not in info


# ----- Maximum Packet Size -----------------------------------------------------------------------

def test_messages_larger_than_client_maximum_are_not_sent(broker):
    # MQTT-3.1.2-24/25: the server must not send a packet exceeding the client's Maximum Packet Size.
    topic = unique("mps")
    small = Client(broker, properties=props(PacketTypes.CONNECT, MaximumPacketSize=256))
    small.subscribe(topic, 1)
    big = Client(broker)
    big.subscribe(topic, 1)
    pub = Client(broker)
    pub.publish(topic, b"L" * 1000, qos=1)
    pub.publish(topic, b"small", qos=1)
    assert small.expect_message().payload == b"small"
    small.expect_no_message(0.3)
    assert [m.payload for m in big.expect_messages(2)] == [b"L" * 1000, b"small"]


def exact_publish(topic, size, pid=1):
    """A QoS 1 PUBLISH whose whole encoding (fixed header included) is `size` bytes."""
    n = next(n for n in range(size) if len(publish(topic, b"x" * n, qos=1, pid=pid)) == size)
    return publish(topic, b"x" * n, qos=1, pid=pid), n


def test_configured_maximum_packet_size_advertised_and_enforced(broker_factory):
    b = broker_factory(config={"limits": {"max_packet_size": 1024}})
    watcher = Client(b)
    watcher.subscribe("mps/#", 1)
    r = connected(b)
    assert r.connack.props.get("MaximumPacketSize") == 1024
    pkt, n = exact_publish("mps/a", 1024)  # exactly at the limit: accepted
    r.send(pkt)
    assert r.expect(PUBACK).rc == 0
    assert len(watcher.expect_message().payload) == n
    r.send(exact_publish("mps/a", 1100, pid=2)[0])  # over: DISCONNECT 0x95, close, nothing delivered
    assert_disconnected(r, RC_PACKET_TOO_LARGE)
    watcher.expect_no_message(0.3)
    assert_serving(b)


@pytest.mark.bastion_only  # the limit counts the whole packet; mosquitto 2.0.11 counts only the remaining length
def test_maximum_packet_size_counts_the_whole_packet(broker_factory):
    b = broker_factory(config={"limits": {"max_packet_size": 1024}})
    r = connected(b)
    r.send(exact_publish("mps/a", 1025)[0])
    assert_disconnected(r, RC_PACKET_TOO_LARGE)


def test_oversized_packet_from_311_client_closes(broker_factory):
    b = broker_factory(config={"limits": {"max_packet_size": 1024}})
    r = connected(b, version=4)
    r.send(publish("mps/c", b"x" * 2000, qos=0, version=4))
    assert_disconnected(r, None)
    assert_serving(b, version=4)


@pytest.mark.bastion_only  # default limit is Bastion's (256 KiB, BEHAVIOUR.md); mosquitto has no default
def test_default_maximum_packet_size_advertised(broker):
    r = connected(broker)
    assert r.connack.props.get("MaximumPacketSize") == 256 * 1024


# ----- Receive Maximum ---------------------------------------------------------------------------

def test_server_respects_client_receive_maximum_initially(broker):
    # MQTT-3.3.4-9: no more unacknowledged QoS>0 PUBLISH than the client's Receive Maximum.
    topic = unique("rm")
    s = connected(broker, props=[("ReceiveMaximum", 2)])
    s.sub([(topic, 1)])
    pub = Client(broker)
    for i in range(5):
        pub.publish(topic, str(i).encode(), qos=1)
    first = [s.expect_publish(ack_it=False) for _ in range(2)]
    assert [m.payload for m in first] == [b"0", b"1"]
    s.expect_nothing(0.5)


@pytest.mark.bastion_only  # MQTT-3.3.4-9; mosquitto 2.0.11 sends two messages per PUBACK (spec violation)
def test_server_respects_client_receive_maximum(broker):
    topic = unique("rm")
    s = connected(broker, props=[("ReceiveMaximum", 2)])
    s.sub([(topic, 1)])
    pub = Client(broker)
    for i in range(5):
        pub.publish(topic, str(i).encode(), qos=1)
    first = [s.expect_publish(ack_it=False) for _ in range(2)]
    s.expect_nothing(0.5)
    s.send(ack(PUBACK, first[0].pid))
    third = s.expect_publish(ack_it=False)
    s.expect_nothing(0.3)
    s.send(ack(PUBACK, first[1].pid))
    s.send(ack(PUBACK, third.pid))
    rest = [s.expect_publish(ack_it=True) for _ in range(2)]
    assert [m.payload for m in first + [third] + rest] == [b"0", b"1", b"2", b"3", b"4"]


def test_configured_receive_maximum_advertised(broker_factory):
    b = broker_factory(config={"limits": {"max_inflight": 7}})
    assert connected(b).connack.props.get("ReceiveMaximum") == 7


@pytest.mark.bastion_only  # default 32 is Bastion's (BEHAVIOUR.md); mosquitto's default is 20
def test_default_receive_maximum_advertised(broker):
    assert connected(broker).connack.props.get("ReceiveMaximum") == 32


# ----- reason strings and Request Problem Information --------------------------------------------

def test_no_reason_string_when_problem_information_not_requested(broker):
    # MQTT-3.1.2-29: with Request Problem Information 0 no Reason String / User Property on packets
    # other than PUBLISH, CONNACK and DISCONNECT.
    r = connected(broker, props=[("RequestProblemInformation", 0)])
    r.send(ack(PUBREL, 4242))  # unknown packet identifier
    comp = r.expect(PUBCOMP)
    assert comp.pid == 4242 and comp.rc in (0x00, 0x92)
    assert "ReasonString" not in comp.props and "UserProperty" not in comp.props
    assert "ReasonString" not in r.sub([("a/b", 1)]).props


@pytest.mark.bastion_only  # Bastion's limits (max_topic_levels) and its choice to explain failures
def test_reason_string_on_failure_only_when_allowed(broker_factory):
    b = broker_factory(config={"limits": {"max_topic_levels": 3}})
    deep = "a/b/c/d/e"
    r = connected(b)
    ack_ = r.sub([(deep, 1), ("a/b", 1)])
    assert ack_.codes == [RC_TOPIC_FILTER_INVALID, 1]
    assert ack_.props.get("ReasonString")
    quiet = connected(b, props=[("RequestProblemInformation", 0)])
    ack_ = quiet.sub([(deep, 1)])
    assert ack_.codes == [RC_TOPIC_FILTER_INVALID]
    assert "ReasonString" not in ack_.props and "UserProperty" not in ack_.props
    ok = connected(b).sub([("a/b", 1)])
    assert "ReasonString" not in ok.props  # success: nothing to explain


# ----- server-initiated DISCONNECT ---------------------------------------------------------------

@pytest.mark.bastion_only  # MQTT-3.1.4-3 says the server sends 0x8E; mosquitto 2.0.11 just closes
def test_session_takeover_sends_0x8e(broker):
    cid = "take-" + unique("c").replace("/", "")
    old = connected(broker, client_id=cid)
    new = connected(broker, client_id=cid)
    assert_disconnected(old, RC_SESSION_TAKEN_OVER)
    assert_serving(broker)
    new.close()


def test_session_takeover_closes_old_connection(broker):
    cid = "take-" + unique("c").replace("/", "")
    old = connected(broker, client_id=cid, version=4)
    connected(broker, client_id=cid, version=4)
    old.closed_with()


@pytest.mark.bastion_only  # BEHAVIOUR.md: 0x8B on SIGTERM; mosquitto 2.0.11 just closes
def test_shutdown_sends_0x8b(broker):
    r = connected(broker)
    broker.proc.send_signal(signal.SIGTERM)
    assert_disconnected(r, RC_SERVER_SHUTTING_DOWN)
    assert broker.proc.wait(timeout=10) == 0


@pytest.mark.bastion_only  # a reason string on a server DISCONNECT is optional; Bastion gives one
def test_server_disconnect_carries_reason_string(broker_factory):
    b = broker_factory(config={"limits": {"max_packet_size": 1024}})
    r = connected(b)
    r.send(publish("x", b"x" * 2000))
    (d,) = assert_disconnected(r, RC_PACKET_TOO_LARGE)
    assert d.props.get("ReasonString")


# ----- AUTH without an authentication method configured ------------------------------------------

def test_connect_with_unknown_authentication_method_gets_0x8c(broker):
    r = Raw(broker, ordered=False)
    c = r.connect(props=[("AuthenticationMethod", "SCRAM-SHA-1"), ("AuthenticationData", b"n,,n=u,r=x")],
                    expect_rc=None)
    assert c.rc == RC_BAD_AUTH_METHOD
    assert r.closed_with() == []
    assert_serving(broker)


def test_connack_without_authentication_method_when_none_asked(broker):
    assert "AuthenticationMethod" not in connected(broker).connack.props


@pytest.mark.bastion_only  # protocol error: the server SHOULD send DISCONNECT 0x82; mosquitto just closes
def test_auth_packet_without_authentication_method_is_protocol_error(broker):
    r = connected(broker)
    r.send(auth(0x18, [("AuthenticationMethod", "SCRAM-SHA-1")]))
    assert_disconnected(r, RC_PROTOCOL_ERROR)
    assert_serving(broker)


def test_auth_packet_without_authentication_method_closes(broker):
    r = connected(broker)
    r.send(auth(0x19, [("AuthenticationMethod", "SCRAM-SHA-1")]))
    got = r.closed_with()
    assert all(p.type == DISCONNECT and p.rc >= 0x80 for p in got)
    assert_serving(broker)
