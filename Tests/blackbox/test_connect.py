"""CONNECT validation, client identifiers and session takeover (MQTT 3.1 / 3.1.1 / 5.0)."""

import re
import time

import pytest

import wire
from wire import Raw
from mqttclient import V31, V311, V5, Client


# ------------------------------------------------------------------ accepted connections

@pytest.mark.parametrize("protocol", [V31, V311, V5], ids=["3.1", "3.1.1", "5.0"])
def test_paho_connects_with_each_protocol_version(broker, protocol):
    c = Client(broker, protocol=protocol)
    sub = Client(broker, protocol=protocol)
    sub.subscribe("connect/ok", 1)
    c.publish("connect/ok", b"hi", qos=1)
    assert sub.expect_message().payload == b"hi"
    c.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("version", [3, 4, 5])
def test_raw_connack_is_success_and_well_formed(broker, version):
    r = Raw(broker, version)
    r.send(wire.connect("raw-ok", version=version))
    connack = r.expect(wire.CONNACK)
    assert connack.first == 0x20
    if version != 5:
        assert connack.body == b"\x00\x00"  # CONNACK is exactly two bytes before 5.0
    else:
        assert (connack.session_present, connack.rc) == (False, 0)
    r.ping_ok()


# ------------------------------------------------------------------ protocol name / level

def _refused_then_closed(r, accepted_codes):
    """Broker answers a CONNECT with a refusing CONNACK (or nothing) and closes."""
    got = r.expect_closed_after(allowed=(wire.CONNACK,))
    for p in got:
        # A 3.1.1-style CONNACK has two bytes; a 5.0-style one carries a property length too.
        rc = p.body[1]
        assert rc in accepted_codes, f"CONNACK code {rc:#x} not in {accepted_codes}"
    return got


@pytest.mark.parametrize("level", [0, 2, 6, 7])
def test_unknown_protocol_level_gets_connack_0x01_or_0x84_and_close(broker, level):
    # [MQTT-3.1.2-2] 3.1.1: CONNACK 0x01; 5.0 3.1.2.2: CONNACK 0x84 (Unsupported Protocol Version).
    r = Raw(broker, 4)
    r.send(wire.connect("bad-level", version=level))
    got = _refused_then_closed(r, (0x01, 0x84))
    assert len(got) == 1, "the refusing CONNACK must be sent before the close"


def test_mqtt_name_with_level_3_is_refused(broker):
    # "MQTT" is the 3.1.1/5.0 name; level 3 belongs with "MQIsdp".
    r = Raw(broker, 4)
    r.send(wire.connect("bad-level", version=3, protocol_name=b"MQTT"))
    _refused_then_closed(r, (0x01, 0x84))


def test_mqisdp_name_with_level_4_is_refused(broker):
    r = Raw(broker, 4)
    r.send(wire.connect("bad-level", version=4, protocol_name=b"MQIsdp"))
    _refused_then_closed(r, (0x01, 0x84))


@pytest.mark.parametrize("name", [b"MQTX", b"mqtt", b"", b"HTTP"])
def test_wrong_protocol_name_closes(broker, name):
    # [MQTT-3.1.2-1]: the server may disconnect; it must not go on processing it as MQTT.
    r = Raw(broker, 4)
    r.send(wire.connect("bad-name", version=4, protocol_name=name))
    _refused_then_closed(r, (0x01, 0x84))


def test_http_request_instead_of_connect_closes(broker):
    # A realistic request: longer than the 69 bytes its second byte ('E') declares as remaining
    # length, so a broker that frames first and checks the type second also sees a whole "packet".
    r = Raw(broker, 4)
    r.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
           b"Connection: keep-alive\r\n\r\n")
    r.expect_closed_after(allowed=())


# ------------------------------------------------------------------ connect flags

@pytest.mark.parametrize("version", [4, 5])
def test_reserved_connect_flag_set_closes(broker, version):
    # [MQTT-3.1.2-3]: reserved flag must be 0; otherwise malformed -> close (5.0 may CONNACK 0x81 first).
    r = Raw(broker, version)
    r.send(wire.connect("reserved", version=version, flags=0x03))
    _refused_then_closed(r, (0x81, 0x82))


@pytest.mark.parametrize("version", [4, 5])
def test_connect_fixed_header_flags_nonzero_closes(broker, version):
    # [MQTT-2.2.2-2]: reserved fixed-header flags of CONNECT are 0000.
    r = Raw(broker, version)
    pkt = bytearray(wire.connect("fh", version=version))
    pkt[0] = 0x11
    r.send(bytes(pkt))
    _refused_then_closed(r, (0x81, 0x82))


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("flags,what", [
    (0x02 | 0x08, "will QoS 1 without will flag"),       # [MQTT-3.1.2-13]
    (0x02 | 0x10, "will QoS 2 without will flag"),       # [MQTT-3.1.2-13]
    (0x02 | 0x20, "will retain without will flag"),      # [MQTT-3.1.2-15]
    (0x02 | 0x04 | 0x18, "will QoS 3"),                  # [MQTT-3.1.2-14]
])
def test_inconsistent_will_flags_close(broker, version, flags, what):
    r = Raw(broker, version)
    will = {"topic": "w", "payload": b"x"} if flags & 0x04 else None
    pkt = wire.connect("willflags", version=version, will=will, flags=flags)
    r.send(pkt)
    _refused_then_closed(r, (0x81, 0x82, 0x9A))


def test_password_without_username_closes_on_311(broker):
    # [MQTT-3.1.2-22]: 3.1.1 password flag requires the user name flag.
    r = Raw(broker, 4)
    r.send(wire.connect("pwonly", version=4, password=b"secret"))
    _refused_then_closed(r, (0x04, 0x05))


def test_password_without_username_is_not_a_protocol_error_on_5(broker):
    # 5.0 3.1.2.9 allows a password without a user name: the broker answers with a CONNACK.
    r = Raw(broker, 5)
    r.send(wire.connect("pwonly5", version=5, password=b"secret"))
    rc = r.expect(wire.CONNACK).rc
    assert rc in (0x00, 0x86, 0x87), f"unexpected CONNACK code {rc:#x}"


@pytest.mark.parametrize("version", [4, 5])
def test_username_flag_without_username_field_closes(broker, version):
    r = Raw(broker, version)
    r.send(wire.connect("nouser", version=version, flags=0x02 | 0x80))
    _refused_then_closed(r, (0x81, 0x82))


@pytest.mark.parametrize("version", [4, 5])
def test_will_flag_without_will_fields_closes(broker, version):
    r = Raw(broker, version)
    r.send(wire.connect("nowill", version=version, flags=0x02 | 0x04))
    _refused_then_closed(r, (0x81, 0x82))


# ------------------------------------------------------------------ packet order

@pytest.mark.parametrize("version", [4, 5])
def test_second_connect_is_a_protocol_error(broker, version):
    # [MQTT-3.1.0-2]: a second CONNECT is a protocol violation -> close (5.0: DISCONNECT 0x82 may precede).
    r = Raw(broker, version)
    r.connect("twice")
    r.send(wire.connect("twice", version=version))
    got = r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert all(rc == 0x82 for rc in wire.disconnect_reasons(got))


@pytest.mark.parametrize("first_packet", [
    wire.pingreq(),
    wire.publish("early", b"x", qos=0, version=4),
    wire.publish("early", b"x", qos=1, pid=1, version=4),
    wire.subscribe(1, [("early", 0)], version=4),
    wire.disconnect(),
], ids=["pingreq", "publish0", "publish1", "subscribe", "disconnect"])
def test_packet_before_connect_closes(broker, first_packet):
    # [MQTT-3.1.0-1]: the first packet must be CONNECT; nothing is answered.
    r = Raw(broker, 4)
    r.send(first_packet)
    r.expect_closed_after(allowed=())


def test_publish_before_connect_is_not_delivered(broker):
    sub = Client(broker, protocol=V311)
    sub.subscribe("early/#", 0)
    r = Raw(broker, 4)
    r.send(wire.publish("early/x", b"sneaky", qos=0, version=4))
    r.expect_closed_after(allowed=())
    sub.expect_no_message(0.5)


# ------------------------------------------------------------------ client identifiers

def test_311_empty_client_id_with_persistent_session_is_rejected(broker):
    # [MQTT-3.1.3-8]: CONNACK 0x02 (Identifier rejected) then close.
    r = Raw(broker, 4)
    r.send(wire.connect("", version=4, clean=False))
    got = r.expect_closed_after(allowed=(wire.CONNACK,))
    assert [p.body for p in got] == [b"\x00\x02"]


def test_311_empty_client_id_with_clean_session_is_accepted(broker):
    # [MQTT-3.1.3-6]: the server assigns a unique id; the session is new.
    r = Raw(broker, 4)
    connack = r.connect("", clean=True)
    assert (connack.session_present, connack.rc) == (False, 0)
    assert r.sub([("anon/t", 1)]).codes == [1]
    r.send(wire.publish("anon/t", b"me", qos=1, pid=7, version=4))
    got = {}
    for _ in range(2):
        p = r.read()
        got[p.type] = p
    assert got[wire.PUBACK].pid == 7
    assert got[wire.PUBLISH].payload == b"me"


def test_two_anonymous_311_clients_get_distinct_ids(broker):
    # Two clean empty-id connections must not take each other over.
    a = Raw(broker, 4)
    a.connect("")
    b = Raw(broker, 4)
    b.connect("")
    a.ping_ok()
    b.ping_ok()
    # 3.1.1 does not tell the client its id: the broker's log does (one line per CONNACK).
    for _ in range(250):
        ids = re.findall(r"client_id=(\S+)[^\n]*client connected", broker.log_text())
        if len(ids) >= 2:
            break
        time.sleep(0.02)
    assert len(ids) == 2 and all(ids), ids
    assert ids[0] != ids[1], ids


def test_5_empty_client_id_gets_assigned_identifier_that_is_usable(broker):
    # [MQTT-3.1.3-7] / 3.2.2.3.7: Assigned Client Identifier returned; the client may resume with it.
    r = Raw(broker, 5)
    connack = r.connect("", clean=True, props=[("SessionExpiryInterval", 60)])
    assert (connack.session_present, connack.rc) == (False, 0)
    assigned = connack.props.get("AssignedClientIdentifier")
    assert assigned, "CONNACK must carry an Assigned Client Identifier"
    assert r.sub([("assigned/t", 1)]).codes == [1]
    r.send(wire.disconnect())
    r.close()

    pub = Client(broker, protocol=V5)
    pub.publish("assigned/t", b"while-away", qos=1)

    r2 = Raw(broker, 5)
    connack = r2.connect(assigned, clean=False, props=[("SessionExpiryInterval", 60)])
    assert connack.session_present, "the assigned id must name the stored session"
    assert "AssignedClientIdentifier" not in connack.props
    m = r2.expect_publish()
    assert (m.topic, m.payload) == ("assigned/t", b"while-away")


@pytest.mark.bastion_only  # the identifier format is Bastion's choice (BEHAVIOUR.md)
def test_5_assigned_identifier_format(broker):
    ids = set()
    for _ in range(2):
        r = Raw(broker, 5)
        p = r.connect("").props
        assert re.fullmatch(r"bastion-[0-9a-f]{16}", p["AssignedClientIdentifier"])
        ids.add(p["AssignedClientIdentifier"])
    assert len(ids) == 2


def test_5_paho_empty_client_id_gets_assigned_identifier(broker):
    c = Client(broker, client_id="", protocol=V5, auto_connect=False)
    flags, rc, p = c.connect()
    assert p.AssignedClientIdentifier
    assert not flags.session_present
    c.disconnect()


@pytest.mark.bastion_only  # mosquitto 2.0.11 accepts long 3.1 ids, against MQTT 3.1 section 3.1 (CONNACK 2)
def test_31_client_id_longer_than_23_is_rejected(broker):
    # MQTT 3.1 section 3.1: client id of 1..23 characters, otherwise CONNACK 2 (identifier rejected).
    r = Raw(broker, 3)
    r.send(wire.connect("x" * 24, version=3))
    got = r.expect_closed_after(allowed=(wire.CONNACK,))
    assert [p.body for p in got] == [b"\x00\x02"]


def test_31_client_id_of_23_is_accepted(broker):
    r = Raw(broker, 3)
    assert r.connect("y" * 23).rc == 0
    r.ping_ok()


def test_31_empty_client_id_is_rejected(broker):
    r = Raw(broker, 3)
    r.send(wire.connect("", version=3))
    got = r.expect_closed_after(allowed=(wire.CONNACK,))
    assert [p.body for p in got] == [b"\x00\x02"]


def test_311_long_client_id_is_accepted(broker):
    # [MQTT-3.1.3-5] only sets a floor of 23; ids of 64 characters are commonplace.
    r = Raw(broker, 4)
    r.connect("z" * 64)
    r.ping_ok()


# ------------------------------------------------------------------ session takeover

@pytest.mark.bastion_only  # mosquitto 2.0.11 closes the old connection without DISCONNECT 0x8E ([MQTT-3.1.4-3] wants it)
def test_5_takeover_sends_0x8e_to_old_connection(broker):
    old = Raw(broker, 5)
    old.connect("taken")
    new = Raw(broker, 5)
    new.connect("taken")
    got = old.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert wire.disconnect_reasons(got) == [0x8E], "old connection gets DISCONNECT 0x8E (Session taken over)"
    new.ping_ok()


@pytest.mark.bastion_only  # mosquitto 2.0.11 sends no DISCONNECT 0x8E, see above
def test_5_takeover_seen_by_paho_client(broker):
    old = Client(broker, client_id="taken-paho", protocol=V5)
    new = Client(broker, client_id="taken-paho", protocol=V5)
    rc, _ = old.expect_disconnect()
    assert rc.value == 0x8E
    new.subscribe("still/here", 0)
    new.disconnect()


@pytest.mark.parametrize("version", [3, 4])
def test_3x_takeover_closes_old_connection(broker, version):
    cid = "taken-3x"
    old = Raw(broker, version)
    old.connect(cid)
    new = Raw(broker, version)
    new.connect(cid)
    old.expect_closed_after(allowed=())
    new.ping_ok()


def test_5_takeover_closes_old_connection(broker):
    old = Raw(broker, 5)
    old.connect("taken-any")
    new = Raw(broker, 5)
    new.connect("taken-any")
    got = old.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert all(rc == 0x8E for rc in wire.disconnect_reasons(got))
    new.ping_ok()


@pytest.mark.parametrize("version", [4, 5])
def test_takeover_publishes_old_will_when_new_connection_is_clean(broker, version):
    watcher = Client(broker, protocol=V5)
    watcher.subscribe("will/takeover", 1)
    old = Raw(broker, version)
    old.connect("will-taken", clean=True,
                will={"topic": "will/takeover", "payload": b"old-gone", "qos": 1})
    new = Raw(broker, version)
    new.connect("will-taken", clean=True)
    old.expect_closed_after(allowed=(wire.DISCONNECT,))
    m = watcher.expect_message()
    assert (m.topic, m.payload) == ("will/takeover", b"old-gone")
    watcher.expect_no_message(0.3)


@pytest.mark.bastion_only  # mosquitto 2.0.11 discards the will when the session is resumed; spec 3.1.3.2 says a will with delay 0 is sent when the old connection closes
def test_5_takeover_resuming_session_publishes_will_without_delay(broker):
    watcher = Client(broker, protocol=V5)
    watcher.subscribe("will/takeover5", 1)
    old = Raw(broker, 5)
    old.connect("will-taken5", clean=True, props=[("SessionExpiryInterval", 60)],
                will={"topic": "will/takeover5", "payload": b"old-gone", "qos": 1})
    new = Raw(broker, 5)
    assert new.connect("will-taken5", clean=False, props=[("SessionExpiryInterval", 60)]).session_present
    old.expect_closed_after(allowed=(wire.DISCONNECT,))
    m = watcher.expect_message()
    assert m.payload == b"old-gone"


def test_5_takeover_resuming_session_within_will_delay_cancels_will(broker):
    # 3.1.3.2: "the Will Message for the existing connection is sent unless the new connection
    # specifies Clean Start of 0 and the Will Delay is greater than zero".
    watcher = Client(broker, protocol=V5)
    watcher.subscribe("will/takeover-delay", 1)
    old = Raw(broker, 5)
    old.connect("will-taken-d", clean=True, props=[("SessionExpiryInterval", 60)],
                will={"topic": "will/takeover-delay", "payload": b"old-gone", "qos": 1,
                      "props": [("WillDelayInterval", 1)]})
    new = Raw(broker, 5)
    assert new.connect("will-taken-d", clean=False, props=[("SessionExpiryInterval", 60)]).session_present
    old.expect_closed_after(allowed=(wire.DISCONNECT,))
    watcher.expect_no_message(2.5)
    new.ping_ok()


def test_takeover_keeps_subscriptions_of_resumed_session(broker):
    old = Client(broker, client_id="taken-subs", protocol=V311, clean=False)
    old.subscribe("taken/subs", 1)
    new = Client(broker, client_id="taken-subs", protocol=V311, clean=False, auto_connect=False)
    flags, _, _ = new.connect()
    assert flags.session_present
    old.expect_disconnect()
    pub = Client(broker, protocol=V311)
    pub.publish("taken/subs", b"to-new", qos=1)
    assert new.expect_message().payload == b"to-new"
