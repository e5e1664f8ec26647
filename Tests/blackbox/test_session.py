"""Sessions: clean session / clean start, 5.0 session expiry, the session present flag and the
offline queue of persistent sessions (QoS 1/2 only, capped by limits.max_queued_messages)."""

import time

import pytest

import wire
from wire import Raw
from mqttclient import V311, V5, Client, props
from paho.mqtt.packettypes import PacketTypes

NEVER = 0xFFFFFFFF


def connect5(broker, cid, clean, expiry=None, will=None):
    """Raw 5.0 connection; returns (Raw, session_present)."""
    r = Raw(broker, 5)
    p = [("SessionExpiryInterval", expiry)] if expiry is not None else None
    present = r.connect(cid, clean=clean, props=p, will=will).session_present
    return r, present


def connect311(broker, cid, clean):
    r = Raw(broker, 4)
    present = r.connect(cid, clean=clean).session_present
    return r, present


def publish_qos1(broker, topic, payload):
    pub = Client(broker, protocol=V311)
    pub.publish(topic, payload, qos=1)
    pub.disconnect()


# ------------------------------------------------------------------ 3.1.1 clean session

def test_311_clean_session_never_reports_present(broker):
    for _ in range(2):
        r, present = connect311(broker, "clean311", clean=True)
        assert not present  # [MQTT-3.2.2-1]
        r.sub([("clean311/t", 1)])
        r.send(wire.disconnect())
        r.expect_closed_after(allowed=())


def test_311_clean_session_discards_subscriptions(broker):
    r, _ = connect311(broker, "clean311b", clean=True)
    r.sub([("clean311b/t", 1)])
    r.send(wire.disconnect())
    r.close()
    r, _ = connect311(broker, "clean311b", clean=True)
    publish_qos1(broker, "clean311b/t", b"x")
    r.expect_nothing(0.5)


def test_311_persistent_session_present_and_kept(broker):
    r, present = connect311(broker, "pers311", clean=False)
    assert not present, "first connection has no stored session"  # [MQTT-3.2.2-3]
    r.sub([("pers311/t", 1)])
    r.send(wire.disconnect())
    r.close()
    publish_qos1(broker, "pers311/t", b"queued")
    r, present = connect311(broker, "pers311", clean=False)
    assert present  # [MQTT-3.2.2-2]
    m = r.expect_publish()
    assert (m.topic, m.payload, m.qos) == ("pers311/t", b"queued", 1)
    r.send(wire.ack(wire.PUBACK, m.pid))
    # The subscription itself survived, not only the queued message.
    publish_qos1(broker, "pers311/t", b"live")
    assert r.expect_publish().payload == b"live"


def test_311_clean_connect_discards_persistent_session(broker):
    r, _ = connect311(broker, "pers311c", clean=False)
    r.sub([("pers311c/t", 1)])
    r.send(wire.disconnect())
    r.close()
    r, present = connect311(broker, "pers311c", clean=True)
    assert not present, "clean session must discard the stored session"  # [MQTT-3.1.2-6]
    r.send(wire.disconnect())
    r.close()
    publish_qos1(broker, "pers311c/t", b"nobody")
    r, present = connect311(broker, "pers311c", clean=False)
    assert not present
    r.expect_nothing(0.5)


def test_311_session_survives_abnormal_disconnect(broker):
    r, _ = connect311(broker, "pers311d", clean=False)
    r.sub([("pers311d/t", 1)])
    r.close()  # no DISCONNECT
    time.sleep(0.2)
    publish_qos1(broker, "pers311d/t", b"after-drop")
    r, present = connect311(broker, "pers311d", clean=False)
    assert present
    assert r.expect_publish().payload == b"after-drop"


def test_paho_311_session_present_flag(broker):
    c = Client(broker, client_id="paho-pers", protocol=V311, clean=False, auto_connect=False)
    flags, _, _ = c.connect()
    assert not flags.session_present
    c.subscribe("paho/pers", 1)
    c.disconnect()
    c = Client(broker, client_id="paho-pers", protocol=V311, clean=False, auto_connect=False)
    flags, _, _ = c.connect()
    assert flags.session_present
    c.disconnect()


# ------------------------------------------------------------------ 5.0 clean start and session expiry

def test_5_expiry_zero_ends_session_at_disconnect(broker):
    r, present = connect5(broker, "exp0", clean=True)  # no property: expiry 0
    assert not present
    r.sub([("exp0/t", 1)])
    r.send(wire.disconnect())
    r.close()
    publish_qos1(broker, "exp0/t", b"lost")
    r, present = connect5(broker, "exp0", clean=False)
    assert not present, "session with expiry 0 ends when the connection closes"  # [MQTT-3.1.2-23]
    r.expect_nothing(0.5)


def test_5_expiry_zero_ends_session_on_abnormal_close(broker):
    r, _ = connect5(broker, "exp0b", clean=True, expiry=0)
    r.sub([("exp0b/t", 1)])
    r.close()
    time.sleep(0.2)
    r, present = connect5(broker, "exp0b", clean=False)
    assert not present


def test_5_clean_start_discards_existing_session(broker):
    r, _ = connect5(broker, "cs1", clean=True, expiry=60)
    r.sub([("cs1/t", 1)])
    r.send(wire.disconnect())
    r.close()
    r, present = connect5(broker, "cs1", clean=True, expiry=60)
    assert not present  # [MQTT-3.1.2-4]
    publish_qos1(broker, "cs1/t", b"x")
    r.expect_nothing(0.5)


def test_5_clean_start_0_without_stored_session(broker):
    r, present = connect5(broker, "cs0-new", clean=False, expiry=60)
    assert not present  # [MQTT-3.2.2-3]: no session -> present 0 even with Clean Start 0
    r.ping_ok()


def test_5_session_kept_for_expiry_interval_then_gone(broker):
    r, _ = connect5(broker, "expN", clean=True, expiry=1)
    r.sub([("expN/t", 1)])
    r.send(wire.disconnect())
    r.close()
    publish_qos1(broker, "expN/t", b"in-time")
    r, present = connect5(broker, "expN", clean=False, expiry=1)
    assert present, "session must exist within its expiry interval"
    m = r.expect_publish()
    assert m.payload == b"in-time"
    r.send(wire.ack(wire.PUBACK, m.pid))
    r.send(wire.disconnect())
    r.close()
    time.sleep(2.5)
    publish_qos1(broker, "expN/t", b"too-late")
    r, present = connect5(broker, "expN", clean=False, expiry=1)
    assert not present, "session must be gone after its expiry interval"  # [MQTT-3.1.2-23]
    r.expect_nothing(0.5)


def test_5_session_expiry_never(broker):
    r, _ = connect5(broker, "expinf", clean=True, expiry=NEVER)
    r.sub([("expinf/t", 1)])
    r.send(wire.disconnect())
    r.close()
    time.sleep(2.2)
    publish_qos1(broker, "expinf/t", b"still")
    r, present = connect5(broker, "expinf", clean=False, expiry=NEVER)
    assert present
    assert r.expect_publish().payload == b"still"


def test_5_disconnect_sets_expiry_to_zero(broker):
    r, _ = connect5(broker, "dexp0", clean=True, expiry=60)
    r.sub([("dexp0/t", 1)])
    r.send(wire.disconnect(0, [("SessionExpiryInterval", 0)]))
    r.expect_closed_after(allowed=())
    r, present = connect5(broker, "dexp0", clean=False, expiry=60)
    assert not present, "DISCONNECT with expiry 0 ends the session"


def test_5_disconnect_extends_expiry(broker):
    r, _ = connect5(broker, "dexpup", clean=True, expiry=1)
    r.sub([("dexpup/t", 1)])
    r.send(wire.disconnect(0, [("SessionExpiryInterval", 60)]))
    r.expect_closed_after(allowed=())
    time.sleep(2.2)
    publish_qos1(broker, "dexpup/t", b"kept")
    r, present = connect5(broker, "dexpup", clean=False, expiry=60)
    assert present, "the expiry from DISCONNECT replaces the one from CONNECT"
    assert r.expect_publish().payload == b"kept"


def test_5_disconnect_shortens_expiry(broker):
    r, _ = connect5(broker, "dexpdown", clean=True, expiry=60)
    r.sub([("dexpdown/t", 1)])
    r.send(wire.disconnect(0, [("SessionExpiryInterval", 1)]))
    r.expect_closed_after(allowed=())
    time.sleep(2.5)
    r, present = connect5(broker, "dexpdown", clean=False, expiry=60)
    assert not present


def test_5_disconnect_nonzero_expiry_after_zero_is_protocol_error(broker):
    # 3.14.2.2.2: not a valid DISCONNECT; the server answers DISCONNECT 0x82, and the will is sent.
    watcher = Client(broker, protocol=V5)
    watcher.subscribe("dexp/will", 1)
    r, _ = connect5(broker, "dexpbad", clean=True, expiry=None,
                    will={"topic": "dexp/will", "payload": b"abnormal", "qos": 1})
    r.send(wire.disconnect(0, [("SessionExpiryInterval", 30)]))
    got = r.expect_closed_after(allowed=(wire.DISCONNECT,))
    assert wire.disconnect_reasons(got) == [0x82]
    assert watcher.expect_message().payload == b"abnormal"
    r, present = connect5(broker, "dexpbad", clean=False)
    assert not present, "the session must not have been given an expiry"


def test_5_paho_session_present(broker):
    p = props(PacketTypes.CONNECT, SessionExpiryInterval=30)
    c = Client(broker, client_id="paho5-pers", protocol=V5, clean=True, properties=p, auto_connect=False)
    flags, _, _ = c.connect()
    assert not flags.session_present
    c.subscribe("paho5/pers", 1)
    c.disconnect()
    c = Client(broker, client_id="paho5-pers", protocol=V5, clean=False, properties=p, auto_connect=False)
    flags, _, _ = c.connect()
    assert flags.session_present
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_refused_connect_has_session_present_0(broker_factory, version):
    # [MQTT-3.2.2-4] / [MQTT-3.2.2-6]: a refusing CONNACK has session present 0.
    broker = broker_factory()
    r = Raw(broker, version)
    r.send(wire.connect("", version=version, clean=False) if version == 4 else
           wire.connect("badlevel", version=7))
    got = r.expect_closed_after(allowed=(wire.CONNACK,))
    for p in got:
        assert p.body[0] == 0


# ------------------------------------------------------------------ offline queue

@pytest.mark.parametrize("version", [4, 5])
def test_offline_queue_holds_qos1_and_qos2_not_qos0(broker, version):
    cid = f"offq{version}"
    expiry = dict(props=[("SessionExpiryInterval", 60)]) if version == 5 else {}
    r = Raw(broker, version)
    r.connect(cid, clean=version == 5, **expiry)  # 3.1.1 persists only with clean session 0
    r.sub([("offq/#", 2)])
    r.send(wire.disconnect())
    r.close()
    pub = Client(broker, protocol=V311)
    pub.publish("offq/0", b"q0", qos=0)
    pub.publish("offq/1", b"q1", qos=1)
    pub.publish("offq/2", b"q2", qos=2)
    pub.disconnect()

    r = Raw(broker, version)
    present = r.connect(cid, clean=False, **expiry).session_present
    assert present
    m1 = r.expect_publish()
    assert (m1.topic, m1.qos, m1.payload) == ("offq/1", 1, b"q1")
    r.send(wire.ack(wire.PUBACK, m1.pid))
    m2 = r.expect_publish()
    assert (m2.topic, m2.qos, m2.payload) == ("offq/2", 2, b"q2")
    r.send(wire.ack(wire.PUBREC, m2.pid))
    r.expect_ack(wire.PUBREL, m2.pid)
    r.send(wire.ack(wire.PUBCOMP, m2.pid))
    r.expect_nothing(0.5)  # the QoS 0 message was not queued


def test_offline_queue_downgrades_to_granted_qos(broker):
    r, _ = connect311(broker, "offq-down", clean=False)
    r.sub([("offq-down/t", 1)])
    r.close()
    time.sleep(0.1)
    pub = Client(broker, protocol=V311)
    pub.publish("offq-down/t", b"two", qos=2)
    r, present = connect311(broker, "offq-down", clean=False)
    assert present
    m = r.expect_publish()
    assert (m.qos, m.payload) == (1, b"two")


def test_offline_queue_preserves_order(broker):
    r, _ = connect311(broker, "offq-order", clean=False)
    r.sub([("offq-order/t", 1)])
    r.send(wire.disconnect())
    r.close()
    pub = Client(broker, protocol=V311)
    for i in range(10):
        pub.publish("offq-order/t", str(i).encode(), qos=1)
    r, _ = connect311(broker, "offq-order", clean=False)
    got = []
    for _ in range(10):
        m = r.expect_publish()
        got.append(m.payload)
        r.send(wire.ack(wire.PUBACK, m.pid))
    assert got == [str(i).encode() for i in range(10)]


@pytest.mark.parametrize("version", [4, 5])
def test_offline_queue_cap_drops_newest(broker_factory, version):
    broker = broker_factory(config={"limits": {"max_queued_messages": 3}})
    cid = f"cap{version}"
    expiry = dict(props=[("SessionExpiryInterval", 60)]) if version == 5 else {}
    r = Raw(broker, version)
    r.connect(cid, clean=version == 5, **expiry)  # 3.1.1 persists only with clean session 0
    r.sub([("cap/t", 1)])
    r.send(wire.disconnect())
    r.close()
    pub = Client(broker, protocol=V311)
    for i in range(6):
        pub.publish("cap/t", f"m{i}".encode(), qos=1)
    pub.disconnect()

    r = Raw(broker, version)
    present = r.connect(cid, clean=False, **expiry).session_present
    assert present
    got = []
    for _ in range(3):
        m = r.expect_publish()
        got.append(m.payload)
        r.send(wire.ack(wire.PUBACK, m.pid))
    assert got == [b"m0", b"m1", b"m2"], "the first N queued messages are kept"
    r.expect_nothing(0.7)  # m3..m5 were dropped

