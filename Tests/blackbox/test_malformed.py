"""Hostile input on raw sockets: every malformed or protocol-violating packet closes the connection
(3.1.1) or is answered with DISCONNECT and the right reason code, then closed (5.0); afterwards the
broker still serves a fresh client. Ends with a bounded, seeded fuzz loop.

One broker serves the whole module (restarted if a case killed it, which fails that case)."""

import random
import socket
import struct
import time

import pytest

import conftest
from mqttclient import close_clients  # noqa: F401 (autouse fixture)
from wire import (CONNACK, PUBREC, RC_MALFORMED, RC_PACKET_TOO_LARGE, RC_PROTOCOL_ERROR, RC_RECEIVE_MAXIMUM_EXCEEDED,
                  RC_TOPIC_ALIAS_INVALID, RC_TOPIC_NAME_INVALID, Raw, ack, assert_disconnected, assert_serving,
                  connect, disconnect, packet, publish, string, subscribe, unsubscribe, varint)  # noqa: F401

MAX_PACKET = 65536
MAX_INFLIGHT = 5
MAL_OR_PROTO = {RC_MALFORMED, RC_PROTOCOL_ERROR}  # where the specification does not pick one


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    b = conftest.Broker(tmp_path_factory.mktemp("malformed"),
                        config={"limits": {"max_packet_size": MAX_PACKET, "max_inflight": MAX_INFLIGHT}})
    yield b
    b.stop()


@pytest.fixture
def broker(shared_broker):
    if shared_broker.proc.poll() is not None:
        shared_broker.start()
    yield shared_broker
    assert shared_broker.proc.poll() is None, "the broker process died"


def props_bytes(version):
    return b"\x00" if version == 5 else b""


def run_case(broker, version, data, expect, handshake=True):
    """Send `data` on a fresh connection (after CONNECT/CONNACK when `handshake`), check the answer,
    then check that the broker still serves a new client."""
    r = Raw(broker, version=version, ordered=False)
    try:
        if handshake:
            r.connect()
        r.send(data)
        assert_disconnected(r, expect)
    finally:
        r.close()
    assert_serving(broker, version=5)
    assert_serving(broker, version=4)


def case(id_, version, data, expect=None, bastion_only=None, handshake=True):
    marks = [pytest.mark.bastion_only] if bastion_only else []
    return pytest.param(version, data, expect, handshake, id=f"v{version}-{id_}", marks=marks)


def both(id_, data_for_version, rc5, bastion_only_v5=None, handshake=True):
    """The same violation for 3.1.1 (close) and 5.0 (DISCONNECT rc5, then close)."""
    return [case(id_, 4, data_for_version(4), None, handshake=handshake),
            case(id_, 5, data_for_version(5), rc5, bastion_only_v5, handshake=handshake)]


def pub_raw(version, topic_bytes, flags=0x30, pid=None, payload=b"x"):
    body = string(topic_bytes)
    if pid is not None:
        body += struct.pack("!H", pid)
    return packet(flags, body + props_bytes(version) + payload)


# bastion_only reasons (mosquitto 2.0.11 behaviour the spec allows or that violates it):
CLOSES_SILENTLY = "mosquitto closes without the DISCONNECT the spec says it SHOULD send"
TOLERATES = "mosquitto 2.0.11 accepts this packet (spec violation or unchecked)"
ITS_CODE = "mosquitto answers with a different reason code than the spec's"

CASES = [
    # --- lengths
    *both("remaining-length-5-bytes", lambda v: b"\x30\xff\xff\xff\xff\x01", RC_MALFORMED, CLOSES_SILENTLY),
    *both("remaining-length-over-max-header-only", lambda v: b"\x30" + varint(MAX_PACKET * 4), RC_PACKET_TOO_LARGE),
    *both("huge-length-then-silence", lambda v: b"\x30\xff\xff\xff\x7f", RC_PACKET_TOO_LARGE),
    *both("huge-subscribe-length-then-silence", lambda v: b"\x82\xff\xff\xff\x7f", RC_PACKET_TOO_LARGE),
    *both("truncated-topic-string", lambda v: packet(0x30, b"\x00\x32abc"), RC_MALFORMED),
    *both("truncated-packet-id", lambda v: packet(0x32, b"\x00\x01a\x00"), RC_MALFORMED),
    *both("truncated-subscribe-filter", lambda v: packet(0x82, b"\x00\x01" + props_bytes(v) + b"\x00\x09ab"), RC_MALFORMED),
    *both("subscribe-missing-options-byte", lambda v: packet(0x82, b"\x00\x01" + props_bytes(v) + string("a/b")), RC_MALFORMED),
    # --- UTF-8 in topic names and filters (MQTT-1.5.4-1/2)
    *both("topic-invalid-utf8", lambda v: pub_raw(v, b"a/\xff"), RC_MALFORMED),
    *both("topic-overlong-utf8", lambda v: pub_raw(v, b"a/\xc0\xaf"), RC_MALFORMED),
    *both("topic-utf16-surrogate", lambda v: pub_raw(v, b"a/\xed\xa0\x80"), RC_MALFORMED),
    *both("topic-nul", lambda v: pub_raw(v, b"a\x00b"), RC_MALFORMED),
    *both("filter-invalid-utf8", lambda v: packet(0x82, b"\x00\x01" + props_bytes(v) + string(b"a/\xfe") + b"\x00"), RC_MALFORMED),
    *both("filter-nul", lambda v: packet(0x82, b"\x00\x01" + props_bytes(v) + string(b"a/\x00") + b"\x00"), RC_MALFORMED),
    # --- PUBLISH rules
    *both("wildcard-plus-in-topic", lambda v: publish("a/+", b"x", version=v), RC_TOPIC_NAME_INVALID, ITS_CODE + " (0x82)"),
    *both("wildcard-hash-in-topic", lambda v: publish("a/#", b"x", version=v), RC_TOPIC_NAME_INVALID, ITS_CODE + " (0x82)"),
    *both("qos3", lambda v: pub_raw(v, b"a", flags=0x36, pid=1), RC_MALFORMED),
    *both("qos3-dup-retain", lambda v: pub_raw(v, b"a", flags=0x3F, pid=1), RC_MALFORMED),
    case("dup-on-qos0", 4, pub_raw(4, b"a", flags=0x38), None, TOLERATES),
    case("dup-on-qos0", 5, pub_raw(5, b"a", flags=0x38), MAL_OR_PROTO, TOLERATES),
    *both("publish-packet-id-0", lambda v: publish("a", b"x", qos=1, pid=0, version=v), MAL_OR_PROTO),
    *both("publish-qos2-packet-id-0", lambda v: publish("a", b"x", qos=2, pid=0, version=v), MAL_OR_PROTO),
    case("empty-topic-without-alias", 5, publish("", b"x"), RC_PROTOCOL_ERROR),
    case("empty-topic", 4, publish("", b"x", version=4), None),
    # --- fixed header
    *both("reserved-type-0", lambda v: b"\x00\x00", MAL_OR_PROTO),
    case("auth-type-in-311", 4, b"\xf0\x00", None),
    *both("subscribe-flags-0", lambda v: b"\x80" + subscribe(1, ["a"], version=v)[1:], RC_MALFORMED),
    *both("unsubscribe-flags-0", lambda v: b"\xa0" + unsubscribe(1, ["a"], version=v)[1:], RC_MALFORMED),
    *both("pubrel-flags-0", lambda v: b"\x60\x02\x00\x01", RC_MALFORMED, CLOSES_SILENTLY),
    case("pingreq-flags", 4, b"\xc1\x00", None, TOLERATES),
    case("pingreq-flags", 5, b"\xc1\x00", RC_MALFORMED, TOLERATES),
    case("puback-flags", 4, b"\x41\x02\x00\x01", None, TOLERATES),
    case("puback-flags", 5, b"\x41\x02\x00\x01", RC_MALFORMED, TOLERATES),
    case("disconnect-flags", 4, b"\xe1\x00", None),
    case("disconnect-flags", 5, b"\xe1\x00", RC_MALFORMED, CLOSES_SILENTLY),
    case("pingreq-with-body", 4, b"\xc0\x01\x00", None, TOLERATES),
    case("pingreq-with-body", 5, b"\xc0\x01\x00", RC_MALFORMED, TOLERATES),
    # --- properties (5.0)
    case("unknown-property", 5, packet(0x30, string("a") + b"\x02\x7f\x00" + b"x"), RC_MALFORMED),
    case("property-not-allowed-in-publish", 5, packet(0x30, string("a") + b"\x05\x11\x00\x00\x00\x01x"), RC_MALFORMED),
    case("property-length-exceeds-packet", 5, packet(0x30, string("a") + b"\x0a\x01"), RC_MALFORMED),
    case("property-value-truncated", 5, packet(0x30, string("a") + b"\x02\x03\x00"), RC_MALFORMED),
    case("duplicate-payload-format-indicator", 5, packet(0x30, string("a") + b"\x04\x01\x01\x01\x01x"), RC_PROTOCOL_ERROR, CLOSES_SILENTLY),
    case("duplicate-content-type", 5, packet(0x30, string("a") + b"\x08\x03\x00\x01a\x03\x00\x01bx"), RC_PROTOCOL_ERROR, CLOSES_SILENTLY),
    case("subscription-identifier-in-client-publish", 5, packet(0x30, string("a") + b"\x02\x0b\x01x"), RC_PROTOCOL_ERROR, TOLERATES),
    case("topic-alias-above-maximum", 5, publish("a", b"x", props=[("TopicAlias", 11)]), RC_TOPIC_ALIAS_INVALID),
    case("topic-alias-zero", 5, publish("a", b"x", props=[("TopicAlias", 0)]), RC_TOPIC_ALIAS_INVALID, ITS_CODE + " (0x81)"),
    case("topic-alias-unknown", 5, publish("", b"x", props=[("TopicAlias", 3)]), RC_TOPIC_ALIAS_INVALID, ITS_CODE + " (0x82)"),
    # --- state
    *both("connect-twice", lambda v: connect(version=v), RC_PROTOCOL_ERROR, CLOSES_SILENTLY),
    case("auth-without-method", 5, b"\xf0\x00", RC_PROTOCOL_ERROR, CLOSES_SILENTLY),
    # --- SUBSCRIBE / UNSUBSCRIBE payloads
    *both("subscribe-without-filters", lambda v: packet(0x82, b"\x00\x01" + props_bytes(v)), RC_PROTOCOL_ERROR, ITS_CODE + " (0x81)"),
    *both("unsubscribe-without-filters", lambda v: packet(0xA2, b"\x00\x01" + props_bytes(v)), RC_PROTOCOL_ERROR, ITS_CODE + " (0x81)"),
    *both("subscribe-packet-id-0", lambda v: subscribe(0, ["a"], version=v), MAL_OR_PROTO),
    *both("unsubscribe-packet-id-0", lambda v: unsubscribe(0, ["a"], version=v), MAL_OR_PROTO),
    *both("subscribe-qos3", lambda v: subscribe(1, [("a", 3)], version=v), RC_PROTOCOL_ERROR, ITS_CODE + " (0x81)"),
    case("subscribe-reserved-option-bits", 4, subscribe(1, [("a", 0x04)], version=4), None),
    case("subscribe-reserved-option-bits", 5, subscribe(1, [("a", 0xC0)]), RC_MALFORMED),
    case("subscribe-retain-handling-3", 5, subscribe(1, [("a", 0x30)]), RC_PROTOCOL_ERROR, ITS_CODE + " (0x81)"),
    *[p for f in ["a/b#", "a/#/b", "a+/b", "+a", "#/x", "a/#b", "##", "a/++", ""]
      for p in both(f"filter-{f!r}", lambda v, f=f: subscribe(1, [(f, 0)], version=v), RC_MALFORMED)],
    *both("unsubscribe-misplaced-wildcard", lambda v: unsubscribe(1, ["a/b#"], version=v), RC_MALFORMED),
    # --- CONNECT itself (no handshake: the broker may answer with a refusing CONNACK, then closes)
]

CONNECT_CASES = [
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x03]) + b"\x00\x3c" + string("c")), id="v4-reserved-flag"),
    pytest.param(packet(0x10, string("MQTT") + bytes([5, 0x03]) + b"\x00\x3c\x00" + string("c")), id="v5-reserved-flag"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x1E]) + b"\x00\x3c" + string("c") + string("w") + string("x")), id="v4-will-qos3"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x22]) + b"\x00\x3c" + string("c")), id="v4-will-retain-without-will"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x42]) + b"\x00\x3c" + string("c") + string("pw")), id="v4-password-without-username"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x02]) + b"\x00\x3c" + string(b"c\xff")), id="v4-client-id-invalid-utf8"),
    pytest.param(packet(0x10, string("MQTT") + bytes([5, 0x02]) + b"\x00\x3c\x00" + string(b"c\x00")), id="v5-client-id-nul"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x06]) + b"\x00\x3c" + string("c") + string("w/+") + string("x")), id="v4-will-topic-wildcard"),
    pytest.param(packet(0x10, string("MQTT") + bytes([5, 0x02]) + b"\x00\x3c\x02\x21\x00" + string("c")), id="v5-truncated-property"),
    pytest.param(packet(0x10, string("MQTT") + bytes([5, 0x02]) + b"\x00\x3c\x03\x21\x00\x00" + string("c")), id="v5-receive-maximum-0"),
    pytest.param(packet(0x10, string("MQTT") + bytes([5, 0x02]) + b"\x00\x3c\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x01" + string("c")), id="v5-duplicate-session-expiry"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4, 0x02]) + b"\x00\x3c" + string("c") + b"extra"), id="v4-trailing-bytes"),
    pytest.param(packet(0x10, string("MQTT") + bytes([4])), id="v4-truncated"),
    pytest.param(publish("a", b"x", version=4), id="publish-before-connect"),
    pytest.param(subscribe(1, ["a"], version=4), id="subscribe-before-connect"),
    pytest.param(b"\xc0\x00", id="pingreq-before-connect"),
    pytest.param(b"\x10\xff\xff\xff\x7f", id="huge-connect-length-then-silence"),
    pytest.param(b"\x10\xff\xff\xff\xff\x01", id="connect-remaining-length-5-bytes"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-request"),
    pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32), id="tls-client-hello"),
]


@pytest.mark.parametrize("version,data,expect,handshake", CASES)
def test_malformed_packet(broker, version, data, expect, handshake):
    run_case(broker, version, data, expect, handshake)


@pytest.mark.parametrize("data", CONNECT_CASES)
def test_malformed_connect_is_refused(broker, data):
    r = Raw(broker, version=4, ordered=False)
    try:
        r.send(data)
        got = r.closed_with()
        # at most a refusing CONNACK (3.1.1 return code or 5.0 reason code), never a session
        assert all(p.type == CONNACK for p in got), got
        assert all(p.body[1] != 0 for p in got), got
    finally:
        r.close()
    assert_serving(broker)


@pytest.mark.parametrize("level", [6, 0, 255])
def test_unsupported_protocol_level_refused(broker, level):
    # 3.1.1 MQTT-3.1.2-2: CONNACK 0x01 then close (a 5.0-style 0x84 is also understood by clients).
    r = Raw(broker, version=4, ordered=False)
    try:
        r.send(packet(0x10, string("MQTT") + bytes([level, 0x02]) + b"\x00\x3c" + string("c")))
        got = r.closed_with()
        assert len(got) <= 1
        if got:
            assert got[0].type == CONNACK and got[0].body[1] in (0x01, 0x84), got
    finally:
        r.close()
    assert_serving(broker)


@pytest.mark.bastion_only  # mosquitto answers PUBREC 0x97 instead of DISCONNECT 0x93
def test_receive_maximum_exceeded(broker):
    r = Raw(broker, version=5, ordered=False)
    r.connect()
    assert r.connack.props.get("ReceiveMaximum") == MAX_INFLIGHT
    for pid in range(1, MAX_INFLIGHT + 1):  # QoS 2 without PUBREL stays in flight
        r.send(publish("rm/x", b"x", qos=2, pid=pid))
        assert r.expect(PUBREC).rc < 0x80  # 0x00 or 0x10 (no matching subscribers)
    r.send(publish("rm/x", b"x", qos=2, pid=MAX_INFLIGHT + 1))
    assert_disconnected(r, RC_RECEIVE_MAXIMUM_EXCEEDED)
    assert_serving(broker)


def test_receive_maximum_not_exceeded_when_released(broker):
    r = Raw(broker, version=5, ordered=False)
    r.connect()
    for pid in range(1, 3 * MAX_INFLIGHT):
        r.send(publish("rm/y", b"x", qos=2, pid=pid))
        assert r.expect(PUBREC).rc < 0x80
        r.send(ack(6, pid))  # PUBREL
        assert r.expect(7).rc == 0  # PUBCOMP
    r.send(disconnect())
    r.close()


def test_declared_length_then_silence_does_not_block_others(broker):
    # A client announcing a packet within the limit and never finishing it must not stall the broker.
    stalled = []
    for v in (4, 5):
        r = Raw(broker, version=v, ordered=False)
        r.connect()
        r.send(b"\x30" + varint(1000) + string("a") + b"partial")
        stalled.append(r)
    bare = socket.create_connection((broker.host, broker.port))
    bare.sendall(b"\x10" + varint(500) + b"\x00\x04MQ")  # half a CONNECT
    assert_serving(broker)
    assert_serving(broker, version=4)
    for r in stalled:
        r.close()
    bare.close()


def test_random_garbage_before_connect(broker):
    rng = random.Random(20240611)
    for _ in range(20):
        garbage = bytes([rng.choice([0x00, 0x20, 0x30, 0x50, 0xC0, 0xF0, 0xFF])]) + rng.randbytes(rng.randint(1, 200))
        r = Raw(broker, version=4, ordered=False)
        try:
            r.send(garbage)
            got = r.closed_with()
            assert all(p.type == CONNACK and p.body[1] != 0 for p in got), got
        finally:
            r.close()
    assert_serving(broker)


def test_random_garbage_after_connect(broker):
    rng = random.Random(7)
    socks = []
    for i in range(20):
        r = Raw(broker, version=5 if i % 2 else 4, ordered=False)
        r.connect()
        r.send(rng.randbytes(rng.randint(1, 300)))
        socks.append(r)
    assert_serving(broker)
    for r in socks:
        r.close()
    assert_serving(broker)


# ----- seeded fuzz -------------------------------------------------------------------------------

def _templates(version):
    return [
        publish("fz/a", b"hello", version=version),
        publish("fz/b/c", b"x" * 40, qos=1, pid=3, version=version),
        publish("fz/q2", b"two", qos=2, pid=9, retain=True, version=version),
        subscribe(2, [("fz/#", 1), ("fz/+/c", 2)], version=version),
        unsubscribe(4, ["fz/#"], version=version),
        ack(4, 3), ack(5, 9), ack(6, 9), ack(7, 9),
        b"\xc0\x00",
        disconnect() if version == 5 else b"\xe0\x00",
        connect("fz-client", version=version, will={"topic": "fz/will", "payload": b"w", "qos": 1}),
    ] + ([
        publish("fz/p", b"{}", qos=1, pid=5, props=[("PayloadFormatIndicator", 1), ("MessageExpiryInterval", 30),
                                                    ("ContentType", "json"), ("UserProperty", ("k", "v")),
                                                    ("TopicAlias", 2), ("ResponseTopic", "fz/r"),
                                                    ("CorrelationData", b"\x01")]),
        subscribe(6, [("fz/x", 0x2D)], props=[("SubscriptionIdentifier", 77), ("UserProperty", ("a", "b"))]),
        publish("", b"alias", props=[("TopicAlias", 2)]),
        disconnect(0x04, [("SessionExpiryInterval", 0), ("ReasonString", "bye")]),
        packet(0xF0, b"\x18" + b"\x05\x15\x00\x02ab"),
    ] if version == 5 else [])


def _mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # replace a byte with an interesting value
            data[rng.randrange(len(data))] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x2B, 0x23, 0x2F])
        elif op == 2 and len(data) > 1:  # truncate
            del data[rng.randrange(1, len(data)):]
        elif op == 3:  # insert random bytes
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and len(data) > 2:  # duplicate a slice
            i = rng.randrange(len(data))
            j = rng.randrange(i, len(data))
            data[j:j] = data[i:j + 1]
        elif op == 5 and len(data) > 1:  # corrupt the remaining length
            data[1] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, max(0, data[1] - 1), min(255, data[1] + 1)])
        elif op == 6 and len(data) > 2:  # delete a range
            i = rng.randrange(len(data))
            del data[i:i + rng.randint(1, 4)]
    return bytes(data)


def test_seeded_fuzz_broker_survives_and_serves(broker):
    rng = random.Random(0xB45710)
    iterations, batch = 300, 15
    for start in range(0, iterations, batch):
        open_conns = []
        for _ in range(batch):
            version = rng.choice([4, 5])
            s = socket.create_connection((broker.host, broker.port), timeout=2)
            first = connect("fz-" + str(rng.randrange(1 << 30)), version=version)
            if rng.random() < 0.1:  # sometimes fuzz the CONNECT itself
                data = _mutate(rng, first)
            else:
                data = first + b"".join(_mutate(rng, rng.choice(_templates(version)))
                                        for _ in range(rng.randint(1, 3)))
            try:
                s.sendall(data)
            except OSError:
                pass  # the broker may already have closed: that is a fine answer
            open_conns.append(s)
        deadline = time.monotonic() + 0.2
        for s in open_conns:  # read whatever comes back briefly, then drop the connection
            s.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()
        assert broker.proc.poll() is None, f"broker died during fuzz batch starting at {start}"
        if start % 60 == 0:
            assert_serving(broker)
    assert_serving(broker)
    assert_serving(broker, version=4)
