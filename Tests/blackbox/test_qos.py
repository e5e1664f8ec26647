import time
"""QoS 0/1/2 in both directions: acknowledgement flows, packet identifiers, in-flight windows
(limits.max_inflight, 5.0 Receive Maximum), redelivery after reconnect and exactly-once."""

import pytest

import wire
from conftest import BROKER
from wire import Raw
from mqttclient import V311, V5, Client


def sub5(expiry=60, receive_max=None):
    p = [("SessionExpiryInterval", expiry)]
    if receive_max is not None:
        p.append(("ReceiveMaximum", receive_max))
    return dict(props=p)


def persistent(version, **extra):
    """connect() kwargs for a session that survives the connection."""
    return sub5(**extra) if version == 5 else {}


# ------------------------------------------------------------------ end to end (paho)

@pytest.mark.parametrize("protocol", [V311, V5], ids=["3.1.1", "5.0"])
def test_delivered_qos_is_minimum_of_publish_and_subscription(broker, protocol):
    sub = Client(broker, protocol=protocol)
    for s in range(3):
        sub.subscribe(f"qm/{s}", s)
    pub = Client(broker, protocol=protocol)
    for p in range(3):
        for s in range(3):
            pub.publish(f"qm/{s}", f"{p}{s}".encode(), qos=p)
            m = sub.expect_message()
            assert (m.topic, m.payload) == (f"qm/{s}", f"{p}{s}".encode())
            assert m.qos == min(p, s), f"published {p}, subscribed {s}, delivered {m.qos}"
    sub.expect_no_message(0.3)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_order_is_kept_per_publisher_and_topic(broker, qos):
    sub = Client(broker, protocol=V311)
    sub.subscribe("order/t", qos)
    pub = Client(broker, protocol=V311)
    for i in range(30):
        pub.publish("order/t", str(i).encode(), qos=qos, wait=False)
    got = [m.payload for m in sub.expect_messages(30)]
    assert got == [str(i).encode() for i in range(30)]


# ------------------------------------------------------------------ client -> server flows

@pytest.mark.parametrize("version", [3, 4, 5])
def test_inbound_qos1_puback_carries_packet_id(broker, version):
    watcher = Client(broker, protocol=V311)
    watcher.subscribe("in/q1", 1)
    r = Raw(broker, version)
    r.connect("in-q1")
    r.send(wire.publish("in/q1", b"one", qos=1, pid=4242, version=version))
    assert r.expect_ack(wire.PUBACK, 4242).rc == 0x00
    m = watcher.expect_message()
    assert (m.payload, m.qos) == (b"one", 1)


def test_5_inbound_qos1_without_subscribers_is_acknowledged(broker):
    r = Raw(broker, 5)
    r.connect("in-q1-none")
    r.send(wire.publish("nobody/listens", b"x", qos=1, pid=3, version=5))
    rc = r.expect_ack(wire.PUBACK, 3).rc
    assert rc in (0x00, 0x10)  # Success or No matching subscribers


@pytest.mark.parametrize("version", [3, 4, 5])
def test_inbound_qos2_full_flow(broker, version):
    watcher = Client(broker, protocol=V311)
    watcher.subscribe("in/q2", 2)
    r = Raw(broker, version)
    r.connect("in-q2")
    r.send(wire.publish("in/q2", b"two", qos=2, pid=77, version=version))
    rc = r.expect_ack(wire.PUBREC, 77).rc
    assert rc == 0x00
    r.send(wire.ack(wire.PUBREL, 77))
    rc = r.expect_ack(wire.PUBCOMP, 77).rc
    assert rc == 0x00
    m = watcher.expect_message()
    assert (m.payload, m.qos) == (b"two", 2)
    watcher.expect_no_message(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_inbound_packet_id_reused_after_completion(broker, version):
    watcher = Client(broker, protocol=V311)
    watcher.subscribe("reuse/#", 2)
    r = Raw(broker, version)
    r.connect("reuser")
    for i in range(3):
        r.send(wire.publish("reuse/q1", f"a{i}", qos=1, pid=1, version=version))
        r.expect_ack(wire.PUBACK, 1)
    for i in range(3):
        r.send(wire.publish("reuse/q2", f"b{i}", qos=2, pid=1, version=version))
        r.expect_ack(wire.PUBREC, 1)
        r.send(wire.ack(wire.PUBREL, 1))
        r.expect_ack(wire.PUBCOMP, 1)
    got = [m.payload for m in watcher.expect_messages(6)]
    assert got == [b"a0", b"a1", b"a2", b"b0", b"b1", b"b2"], "a reused packet id is a new message"
    watcher.expect_no_message(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_inbound_qos2_duplicate_before_pubrel_is_forwarded_once(broker, version):
    watcher = Client(broker, protocol=V311)
    watcher.subscribe("once/t", 2)
    r = Raw(broker, version)
    r.connect("once-pub")
    r.send(wire.publish("once/t", b"exactly-once", qos=2, pid=5, version=version))
    r.expect_ack(wire.PUBREC, 5)
    r.send(wire.publish("once/t", b"exactly-once", qos=2, pid=5, dup=True, version=version))
    r.expect_ack(wire.PUBREC, 5)  # 4.3.3: until PUBREL, a repeat of the PUBLISH gets PUBREC again and is not forwarded
    r.send(wire.ack(wire.PUBREL, 5))
    r.expect_ack(wire.PUBCOMP, 5)
    assert watcher.expect_message().payload == b"exactly-once"
    watcher.expect_no_message(0.7)


@pytest.mark.parametrize("version", [4, 5])
def test_inbound_qos2_duplicate_after_reconnect_is_forwarded_once(broker, version):
    # The publisher lost the PUBREC and resends the PUBLISH on its resumed session.
    watcher = Client(broker, protocol=V311)
    watcher.subscribe("once2/t", 2)
    r = Raw(broker, version)
    r.connect("once-pub2", clean=version == 5, **persistent(version))
    r.send(wire.publish("once2/t", b"exactly-once", qos=2, pid=9, version=version))
    r.expect_ack(wire.PUBREC, 9)
    r.close()
    r = Raw(broker, version)
    present = r.connect("once-pub2", clean=False, **persistent(version)).session_present
    assert present
    r.send(wire.publish("once2/t", b"exactly-once", qos=2, pid=9, dup=True, version=version))
    r.expect_ack(wire.PUBREC, 9)
    r.send(wire.ack(wire.PUBREL, 9))
    r.expect_ack(wire.PUBCOMP, 9)
    assert watcher.expect_message().payload == b"exactly-once"
    watcher.expect_no_message(0.7)


def test_311_pubrel_for_unknown_packet_id_gets_pubcomp(broker):
    r = Raw(broker, 4)
    r.connect("unknown-rel")
    r.send(wire.ack(wire.PUBREL, 999))
    r.expect_ack(wire.PUBCOMP, 999)
    r.ping_ok()


def test_5_pubrel_for_unknown_packet_id_gets_pubcomp(broker):
    r = Raw(broker, 5)
    r.connect("unknown-rel5")
    r.send(wire.ack(wire.PUBREL, 999))
    rc = r.expect_ack(wire.PUBCOMP, 999).rc
    assert rc in (0x00, 0x92)
    r.ping_ok()


@pytest.mark.bastion_only  # mosquitto 2.0.11 answers 0x00; 0x92 (Packet Identifier not found) is the exact 5.0 reason
def test_5_pubrel_for_unknown_packet_id_reason_0x92(broker):
    r = Raw(broker, 5)
    r.connect("unknown-rel5b")
    r.send(wire.ack(wire.PUBREL, 999))
    rc = r.expect_ack(wire.PUBCOMP, 999).rc
    assert rc == 0x92


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_publish_with_packet_id_zero_closes(broker, version):
    # [MQTT-2.3.1-1]: QoS > 0 PUBLISH needs a non-zero packet identifier.
    r = Raw(broker, version)
    r.connect("pid-zero")
    r.send(wire.publish("pid/zero", b"x", qos=1, pid=0, version=version))
    got = r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert all(rc in (0x81, 0x82) for rc in wire.disconnect_reasons(got))


@pytest.mark.parametrize("version", [4, 5])
def test_publish_with_qos_3_closes(broker, version):
    # [MQTT-3.3.1-4]: both QoS bits set is malformed.
    r = Raw(broker, version)
    r.connect("qos-three")
    pkt = bytearray(wire.publish("q/three", b"x", qos=1, pid=1, version=version))
    pkt[0] |= 0x06
    r.send(bytes(pkt))
    got = r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert all(rc in (0x81, 0x82) for rc in wire.disconnect_reasons(got))


# ------------------------------------------------------------------ server -> client flows

@pytest.mark.parametrize("version", [3, 4, 5])
def test_outbound_qos1_flow(broker, version):
    r = Raw(broker, version)
    r.connect("out-q1")
    assert r.sub([("out/q1", 1)]).codes == [1]
    pub = Client(broker, protocol=V311)
    pub.publish("out/q1", b"for-you", qos=1)
    m = r.expect_publish()
    assert (m.topic, m.payload, m.qos, m.dup, m.retain) == ("out/q1", b"for-you", 1, False, False)
    assert m.pid != 0
    r.send(wire.ack(wire.PUBACK, m.pid))
    r.expect_nothing(0.5)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_outbound_qos2_flow(broker, version):
    r = Raw(broker, version)
    r.connect("out-q2")
    assert r.sub([("out/q2", 2)]).codes == [2]
    pub = Client(broker, protocol=V311)
    pub.publish("out/q2", b"exactly", qos=2)
    m = r.expect_publish()
    assert (m.payload, m.qos, m.dup) == (b"exactly", 2, False)
    assert m.pid != 0
    r.send(wire.ack(wire.PUBREC, m.pid))
    rc = r.expect_ack(wire.PUBREL, m.pid).rc
    assert rc == 0
    r.send(wire.ack(wire.PUBCOMP, m.pid))
    r.expect_nothing(0.5)


def test_outbound_in_flight_packet_ids_are_distinct(broker):
    r = Raw(broker, 4)
    r.connect("distinct-ids")
    r.sub([("ids/t", 1)])
    pub = Client(broker, protocol=V311)
    for i in range(8):
        pub.publish("ids/t", str(i).encode(), qos=1)
    pids = [r.expect_publish().pid for _ in range(8)]
    assert len(set(pids)) == 8 and 0 not in pids, f"packet ids in flight must differ: {pids}"


def test_outbound_packet_ids_reused_after_completion_keep_working(broker):
    # Many sequential acknowledged messages: completed identifiers are freed and flows keep going.
    r = Raw(broker, 4)
    r.connect("many-ids")
    r.sub([("many/t", 2)])
    pub = Client(broker, protocol=V311)
    for i in range(40):
        pub.publish("many/t", str(i).encode(), qos=2 if i % 2 else 1, wait=False)
    got, pending_rel = [], set()
    while len(got) < 40 or pending_rel:
        m = r.read()
        if m.type == wire.PUBLISH:
            got.append(m.payload)
            if m.qos == 1:
                r.send(wire.ack(wire.PUBACK, m.pid))
            else:
                assert m.pid not in pending_rel, "packet id reused while its QoS 2 flow is open"
                pending_rel.add(m.pid)
                r.send(wire.ack(wire.PUBREC, m.pid))
        else:
            assert m.type == wire.PUBREL, f"unexpected packet {m!r}"
            pid = m.pid
            pending_rel.remove(pid)
            r.send(wire.ack(wire.PUBCOMP, pid))
    # Ordering is per QoS level ([MQTT-4.6.0-6]); across levels only the set is fixed.
    assert sorted(got, key=int) == [str(i).encode() for i in range(40)]
    assert [p for p in got if int(p) % 2] == [str(i).encode() for i in range(1, 40, 2)]
    assert [p for p in got if not int(p) % 2] == [str(i).encode() for i in range(0, 40, 2)]


# ------------------------------------------------------------------ in-flight windows

def _publish_n(broker, topic, n, qos=1):
    pub = Client(broker, protocol=V311)
    for i in range(n):
        pub.publish(topic, f"m{i}".encode(), qos=qos)
    return pub


def test_311_in_flight_window_blocks_until_ack(broker_factory):
    broker = broker_factory(config={"limits": {"max_inflight": 2}})
    r = Raw(broker, 4)
    r.connect("window311a")
    r.sub([("win/t", 1)])
    _publish_n(broker, "win/t", 5)
    first = [r.expect_publish() for _ in range(2)]
    assert [m.payload for m in first] == [b"m0", b"m1"]
    r.expect_nothing(0.7)  # the window of 2 is full
    got = []
    for m in first:
        r.send(wire.ack(wire.PUBACK, m.pid))
    while len(got) < 3:
        m = r.expect_publish()
        got.append(m.payload)
        r.send(wire.ack(wire.PUBACK, m.pid))
    assert got == [b"m2", b"m3", b"m4"]


@pytest.mark.bastion_only  # mosquitto 2.0.11 sends two more messages after a single PUBACK (window grows to 3)
def test_311_in_flight_window_max_inflight(broker_factory):
    broker = broker_factory(config={"limits": {"max_inflight": 2}})
    r = Raw(broker, 4)
    r.connect("window311")
    r.sub([("win/t", 1)])
    _publish_n(broker, "win/t", 5)
    first = [r.expect_publish() for _ in range(2)]
    assert [m.payload for m in first] == [b"m0", b"m1"]
    r.expect_nothing(0.7)  # the window of 2 is full
    r.send(wire.ack(wire.PUBACK, first[0].pid))
    third = r.expect_publish()
    assert third.payload == b"m2"
    r.expect_nothing(0.5)
    r.send(wire.ack(wire.PUBACK, first[1].pid))
    r.send(wire.ack(wire.PUBACK, third.pid))
    rest = [r.expect_publish() for _ in range(2)]
    assert [m.payload for m in rest] == [b"m3", b"m4"]


def test_5_receive_maximum_1_is_honoured(broker):
    r = Raw(broker, 5)
    r.connect("rm1", props=[("ReceiveMaximum", 1)])
    r.sub([("rm1/t", 2)])
    pub = Client(broker, protocol=V311)
    pub.publish("rm1/t", b"m0", qos=1)
    pub.publish("rm1/t", b"m1", qos=2)
    pub.publish("rm1/t", b"m2", qos=1)
    m0 = r.expect_publish()
    assert m0.payload == b"m0"
    r.expect_nothing(0.6)  # [MQTT-3.3.4-9]: no second unacknowledged PUBLISH
    r.send(wire.ack(wire.PUBACK, m0.pid))
    m1 = r.expect_publish()
    assert (m1.payload, m1.qos) == (b"m1", 2)
    r.send(wire.ack(wire.PUBREC, m1.pid))
    r.expect_ack(wire.PUBREL, m1.pid)
    r.expect_nothing(0.6)  # a QoS 2 message counts until PUBCOMP
    r.send(wire.ack(wire.PUBCOMP, m1.pid))
    assert r.expect_publish().payload == b"m2"


@pytest.mark.bastion_only  # BEHAVIOUR.md window = min(Receive Maximum, max_inflight); mosquitto uses the client's Receive Maximum alone
def test_5_window_is_minimum_of_receive_maximum_and_max_inflight(broker_factory):
    broker = broker_factory(config={"limits": {"max_inflight": 2}})
    r = Raw(broker, 5)
    r.connect("rm-min", props=[("ReceiveMaximum", 100)])
    r.sub([("rmmin/t", 1)])
    _publish_n(broker, "rmmin/t", 4)
    got = [r.expect_publish() for _ in range(2)]
    r.expect_nothing(0.7)
    for m in got:
        r.send(wire.ack(wire.PUBACK, m.pid))
    assert [r.expect_publish().payload for _ in range(2)] == [b"m2", b"m3"]


def test_5_connack_advertises_receive_maximum_from_max_inflight(broker_factory):
    broker = broker_factory(config={"limits": {"max_inflight": 2}})
    r = Raw(broker, 5)
    p = r.connect("rm-adv").props
    assert p.get("ReceiveMaximum") == 2


@pytest.mark.bastion_only  # default max_inflight 32 is Bastion's (mosquitto advertises 20)
def test_5_connack_default_receive_maximum(broker):
    r = Raw(broker, 5)
    p = r.connect("rm-default").props
    assert p.get("ReceiveMaximum") == 32


@pytest.mark.bastion_only  # mosquitto 2.0.11 answers PUBREC 0x97 instead of the DISCONNECT 0x93 required by 3.3.4 / [MQTT-3.3.4-8]
def test_5_client_exceeding_server_receive_maximum_gets_0x93(broker_factory):
    broker = broker_factory(config={"limits": {"max_inflight": 2}})
    r = Raw(broker, 5)
    p = r.connect("rm-exceed").props
    assert p.get("ReceiveMaximum") == 2
    for pid in (1, 2, 3):  # QoS 2 without PUBREL stays unacknowledged until PUBCOMP
        r.send(wire.publish("exceed/t", b"x", qos=2, pid=pid, version=5))
    r.expect_ack(wire.PUBREC, 1)
    r.expect_ack(wire.PUBREC, 2)
    got = r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert wire.disconnect_reasons(got) == [0x93]


def test_5_client_within_server_receive_maximum_is_fine(broker_factory):
    broker = broker_factory(config={"limits": {"max_inflight": 2}})
    r = Raw(broker, 5)
    r.connect("rm-within")
    for round_ in range(3):
        for pid in (1, 2):
            r.send(wire.publish("within/t", b"x", qos=2, pid=pid, version=5))
        for pid in (1, 2):
            r.expect_ack(wire.PUBREC, pid)
        for pid in (1, 2):
            r.send(wire.ack(wire.PUBREL, pid))
            r.expect_ack(wire.PUBCOMP, pid)
    r.ping_ok()


# ------------------------------------------------------------------ redelivery after reconnect

@pytest.mark.parametrize("version", [4, 5])
def test_unacked_qos1_redelivered_with_dup_after_reconnect(broker, version):
    r = Raw(broker, version)
    r.connect("redeliver1", clean=version == 5, **persistent(version))
    r.sub([("redo/q1", 1)])
    pub = Client(broker, protocol=V311)
    pub.publish("redo/q1", b"again", qos=1)
    m = r.expect_publish()
    assert not m.dup
    r.close()  # no PUBACK
    r = Raw(broker, version)
    present = r.connect("redeliver1", clean=False, **persistent(version)).session_present
    assert present
    again = r.expect_publish()
    # [MQTT-4.4.0-1]: resent with its original packet identifier, DUP=1 [MQTT-3.3.1-1].
    assert (again.payload, again.qos, again.pid, again.dup) == (b"again", 1, m.pid, True)
    r.send(wire.ack(wire.PUBACK, again.pid))
    r.expect_nothing(0.5)


@pytest.mark.parametrize("version", [4, 5])
def test_unacked_qos2_publish_redelivered_with_dup_after_reconnect(broker, version):
    r = Raw(broker, version)
    r.connect("redeliver2", clean=version == 5, **persistent(version))
    r.sub([("redo/q2", 2)])
    pub = Client(broker, protocol=V311)
    pub.publish("redo/q2", b"again2", qos=2)
    m = r.expect_publish()
    r.close()  # no PUBREC
    r = Raw(broker, version)
    r.connect("redeliver2", clean=False, **persistent(version))
    again = r.expect_publish()
    assert (again.payload, again.qos, again.pid, again.dup) == (b"again2", 2, m.pid, True)
    r.send(wire.ack(wire.PUBREC, again.pid))
    r.expect_ack(wire.PUBREL, again.pid)
    r.send(wire.ack(wire.PUBCOMP, again.pid))
    r.expect_nothing(0.5)


@pytest.mark.parametrize("version", [4, 5])
def test_pubrel_resent_after_reconnect_for_received_qos2(broker, version):
    r = Raw(broker, version)
    r.connect("redeliver-rel", clean=version == 5, **persistent(version))
    r.sub([("redo/rel", 2)])
    pub = Client(broker, protocol=V311)
    pub.publish("redo/rel", b"half-done", qos=2)
    m = r.expect_publish()
    r.send(wire.ack(wire.PUBREC, m.pid))
    r.expect_ack(wire.PUBREL, m.pid)
    r.close()  # no PUBCOMP
    r = Raw(broker, version)
    r.connect("redeliver-rel", clean=False, **persistent(version))
    # [MQTT-4.4.0-1]: the PUBREL is resent, not the PUBLISH.
    r.expect_ack(wire.PUBREL, m.pid)
    r.send(wire.ack(wire.PUBCOMP, m.pid))
    r.expect_nothing(0.5)


def test_redelivery_precedes_new_messages_in_order(broker):
    r = Raw(broker, 4)
    r.connect("redo-order", clean=False)
    r.sub([("redo/order", 1)])
    pub = Client(broker, protocol=V311)
    pub.publish("redo/order", b"m0", qos=1)
    pub.publish("redo/order", b"m1", qos=1)
    r.expect_publish()
    r.expect_publish()
    r.close()
    # m2 must find the session offline; published while the broker still sees the connection,
    # it would be sent (and then correctly redelivered with DUP).
    if BROKER == "bastion":
        broker.wait_for_log("client_id=redo-order listener")
    else:
        time.sleep(0.5)
    pub.publish("redo/order", b"m2", qos=1)
    r = Raw(broker, 4)
    r.connect("redo-order", clean=False)
    got = []
    for _ in range(3):
        m = r.expect_publish()
        got.append((m.payload, m.dup))
        r.send(wire.ack(wire.PUBACK, m.pid))
    assert got == [(b"m0", True), (b"m1", True), (b"m2", False)]


def test_clean_reconnect_drops_unacked_messages(broker):
    r = Raw(broker, 4)
    r.connect("redo-clean", clean=False)
    r.sub([("redo/clean", 1)])
    Client(broker, protocol=V311).publish("redo/clean", b"x", qos=1)
    r.expect_publish()
    r.close()
    r = Raw(broker, 4)
    present = r.connect("redo-clean", clean=True).session_present
    assert not present
    r.expect_nothing(0.5)


def test_5_no_resend_while_connected(broker):
    # [MQTT-4.4.0-1] (5.0): resend only on reconnect, never on a live connection.
    r = Raw(broker, 5)
    r.connect("no-resend5")
    r.sub([("noresend/t", 1)])
    Client(broker, protocol=V311).publish("noresend/t", b"x", qos=1)
    r.expect_publish()
    r.expect_nothing(1.5)


@pytest.mark.bastion_only  # 3.1.1 permits in-session retries; Bastion decided on reconnect-only (BEHAVIOUR.md)
def test_311_no_resend_while_connected(broker):
    r = Raw(broker, 4)
    r.connect("no-resend311")
    r.sub([("noresend/t", 1)])
    Client(broker, protocol=V311).publish("noresend/t", b"x", qos=1)
    r.expect_publish()
    r.expect_nothing(1.5)
