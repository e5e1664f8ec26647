"""A small raw MQTT encoder/decoder (3.1.1 and 5.0, properties included) for tests that need bytes
paho-mqtt will not produce or that must see exactly what the broker sent."""

import struct
import time
import uuid

import pytest

import raw
from raw import RawClient, packet, string, varint

# Control packet types (upper nibble of the first byte).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

# 5.0 reason codes used by the tests.
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_BAD_AUTH_METHOD = 0x8C
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_NO_SUBSCRIPTION_EXISTED = 0x11

# Property identifier -> (name, wire type)
PROPERTIES = {
    0x01: ("PayloadFormatIndicator", "byte"), 0x02: ("MessageExpiryInterval", "u32"),
    0x03: ("ContentType", "str"), 0x08: ("ResponseTopic", "str"), 0x09: ("CorrelationData", "bin"),
    0x0B: ("SubscriptionIdentifier", "varint"), 0x11: ("SessionExpiryInterval", "u32"),
    0x12: ("AssignedClientIdentifier", "str"), 0x13: ("ServerKeepAlive", "u16"),
    0x15: ("AuthenticationMethod", "str"), 0x16: ("AuthenticationData", "bin"),
    0x17: ("RequestProblemInformation", "byte"), 0x18: ("WillDelayInterval", "u32"),
    0x19: ("RequestResponseInformation", "byte"), 0x1A: ("ResponseInformation", "str"),
    0x1C: ("ServerReference", "str"), 0x1F: ("ReasonString", "str"), 0x21: ("ReceiveMaximum", "u16"),
    0x22: ("TopicAliasMaximum", "u16"), 0x23: ("TopicAlias", "u16"), 0x24: ("MaximumQoS", "byte"),
    0x25: ("RetainAvailable", "byte"), 0x26: ("UserProperty", "pair"), 0x27: ("MaximumPacketSize", "u32"),
    0x28: ("WildcardSubscriptionAvailable", "byte"), 0x29: ("SubscriptionIdentifierAvailable", "byte"),
    0x2A: ("SharedSubscriptionAvailable", "byte"),
}
PROPERTY_ID = {name: pid for pid, (name, _) in PROPERTIES.items()}
REPEATABLE = {"UserProperty", "SubscriptionIdentifier"}


def _bin(b):
    b = b.encode() if isinstance(b, str) else bytes(b)
    return struct.pack("!H", len(b)) + b


def encode_property(name_or_id, value):
    pid = PROPERTY_ID[name_or_id] if isinstance(name_or_id, str) else name_or_id
    kind = PROPERTIES[pid][1]
    out = varint(pid)
    if kind == "byte":
        return out + bytes([value])
    if kind == "u16":
        return out + struct.pack("!H", value)
    if kind == "u32":
        return out + struct.pack("!I", value)
    if kind == "varint":
        return out + varint(value)
    if kind in ("str", "bin"):
        return out + _bin(value)
    if kind == "pair":
        return out + _bin(value[0]) + _bin(value[1])
    raise ValueError(kind)


def encode_properties(props=None):
    """props: a list of (name, value) pairs (order and duplicates kept), a dict, or raw bytes
    (already encoded property list, without its length). Returns length-prefixed bytes."""
    if props is None:
        body = b""
    elif isinstance(props, (bytes, bytearray)):
        body = bytes(props)
    else:
        items = props.items() if isinstance(props, dict) else props
        body = b"".join(encode_property(k, v) for k, v in items)
    return varint(len(body)) + body


def read_varint(data, i):
    mult, value = 1, 0
    for _ in range(4):
        b = data[i]
        i += 1
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, i
    raise ValueError("variable byte integer longer than 4 bytes")


def read_bin(data, i):
    n = struct.unpack_from("!H", data, i)[0]
    return bytes(data[i + 2:i + 2 + n]), i + 2 + n


def decode_properties(data, i):
    """Decode a length-prefixed property list at data[i:]. Returns (Props, next index)."""
    length, i = read_varint(data, i)
    end = i + length
    props = Props()
    while i < end:
        pid, i = read_varint(data, i)
        name, kind = PROPERTIES[pid]
        if kind == "byte":
            value, i = data[i], i + 1
        elif kind == "u16":
            value, i = struct.unpack_from("!H", data, i)[0], i + 2
        elif kind == "u32":
            value, i = struct.unpack_from("!I", data, i)[0], i + 4
        elif kind == "varint":
            value, i = read_varint(data, i)
        elif kind == "str":
            b, i = read_bin(data, i)
            value = b.decode("utf-8")
        elif kind == "bin":
            value, i = read_bin(data, i)
        else:
            k, i = read_bin(data, i)
            v, i = read_bin(data, i)
            value = (k.decode(), v.decode())
        props.order.append((name, value))
        if name in REPEATABLE:
            props.setdefault(name, []).append(value)
        else:
            props[name] = value
    return props, end


class Props(dict):
    """Decoded properties: name -> value (lists for UserProperty / SubscriptionIdentifier);
    `.order` keeps (name, value) in wire order."""

    def __init__(self):
        super().__init__()
        self.order = []


# ----- packet builders -------------------------------------------------------------------------

def connect(client_id=None, version=5, clean=True, keepalive=60, props=None, will=None, username=None,
            password=None):
    """CONNECT; will = dict(topic, payload, qos, retain, props)."""
    if client_id is None:
        client_id = "raw-" + uuid.uuid4().hex[:10]
    f = 0x02 if clean else 0
    tail = string(client_id)
    if will is not None:
        f |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if version == 5:
            tail += encode_properties(will.get("props"))
        tail += string(will["topic"]) + _bin(will.get("payload", b""))
    if username is not None:
        f |= 0x80
        tail += string(username)
    if password is not None:
        f |= 0x40
        tail += _bin(password)
    body = string(b"MQIsdp" if version == 3 else b"MQTT") + bytes([version, f]) + struct.pack("!H", keepalive)
    if version == 5:
        body += encode_properties(props)
    return packet(0x10, body + tail)


def publish(topic, payload=b"", qos=0, pid=None, retain=False, dup=False, props=None, version=5):
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = string(topic)
    if qos > 0:
        body += struct.pack("!H", pid if pid is not None else 1)
    if version == 5:
        body += encode_properties(props)
    payload = payload.encode() if isinstance(payload, str) else payload
    return packet(0x30 | flags, body + payload)


def subscribe(pid, filters, props=None, version=5):
    """filters: list of (filter, options byte) or plain filter strings (options 0)."""
    body = struct.pack("!H", pid)
    if version == 5:
        body += encode_properties(props)
    for f in filters:
        if isinstance(f, (str, bytes)):
            f = (f, 0)
        body += string(f[0]) + bytes([f[1]])
    return packet(0x82, body)


def sub_options(qos=0, no_local=False, rap=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if rap else 0) | (retain_handling << 4)


def unsubscribe(pid, filters, props=None, version=5):
    body = struct.pack("!H", pid)
    if version == 5:
        body += encode_properties(props)
    for f in filters:
        body += string(f)
    return packet(0xA2, body)


def ack(kind, pid, rc=None, props=None):
    """PUBACK / PUBREC / PUBREL / PUBCOMP."""
    first = {PUBACK: 0x40, PUBREC: 0x50, PUBREL: 0x62, PUBCOMP: 0x70}[kind]
    body = struct.pack("!H", pid)
    if rc is not None or props is not None:
        body += bytes([rc or 0])
        if props is not None:
            body += encode_properties(props)
    return packet(first, body)


def disconnect(rc=None, props=None):
    body = b""
    if rc is not None or props is not None:
        body = bytes([rc or 0])
        if props is not None:
            body += encode_properties(props)
    return packet(0xE0, body)


def auth(rc=0x18, props=None):
    return packet(0xF0, bytes([rc]) + encode_properties(props))


PINGREQ_BYTES = b"\xc0\x00"


# ----- parsed packets --------------------------------------------------------------------------

class Packet:
    """A packet received from the broker, decoded according to the protocol version."""

    def __init__(self, first, body, version):
        self.first = first
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = bytes(body)
        self.version = version
        self.props = Props()
        self.rc = None
        b = self.body
        if self.type == CONNACK:
            self.session_present = bool(b[0] & 1)
            self.rc = b[1]
            if version == 5 and len(b) > 2:
                self.props, _ = decode_properties(b, 2)
        elif self.type == PUBLISH:
            self.qos = (self.flags >> 1) & 3
            self.retain = bool(self.flags & 1)
            self.dup = bool(self.flags & 8)
            tb, i = read_bin(b, 0)
            self.topic = tb.decode("utf-8")
            self.pid = None
            if self.qos:
                self.pid = struct.unpack_from("!H", b, i)[0]
                i += 2
            if version == 5:
                self.props, i = decode_properties(b, i)
            self.payload = b[i:]
        elif self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = struct.unpack_from("!H", b, 0)[0]
            self.rc = b[2] if len(b) > 2 else 0
            if len(b) > 3:
                self.props, _ = decode_properties(b, 3)
        elif self.type in (SUBACK, UNSUBACK):
            self.pid = struct.unpack_from("!H", b, 0)[0]
            i = 2
            if version == 5:
                self.props, i = decode_properties(b, i)
            self.codes = list(b[i:])
        elif self.type in (DISCONNECT, AUTH):
            self.rc = b[0] if b else 0
            if len(b) > 1:
                self.props, _ = decode_properties(b, 1)

    def __repr__(self):
        name = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
                8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
                14: "DISCONNECT", 15: "AUTH"}.get(self.type, f"type{self.type}")
        extra = f" rc=0x{self.rc:02x}" if self.rc is not None else ""
        if self.type == PUBLISH:
            extra = f" topic={self.topic!r} qos={self.qos} retain={self.retain} payload={self.payload[:40]!r}"
        return f"<{name}{extra} props={dict(self.props)}>"


class Raw(RawClient):
    """Raw client that knows its protocol version and decodes what it reads."""

    def __init__(self, broker, version=5, timeout=raw.TIMEOUT):
        super().__init__(broker, timeout=timeout)
        self.version = version
        self.next_pid = 1
        self.connack = None
        self.inbox = []  # PUBLISH packets read while waiting for something else

    def pid(self):
        p = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return p

    def recv(self, timeout=raw.TIMEOUT):
        """Next packet (PINGRESP skipped) or None when the broker closed the connection."""
        while True:
            p = self.read_packet(timeout)
            if p is None:
                return None
            pkt = Packet(p[0], p[1], self.version)
            if pkt.type != PINGRESP:
                return pkt

    def expect(self, ptype, timeout=raw.TIMEOUT):
        """Next packet, which must be of type `ptype`. PUBLISH packets arriving first are kept in
        `inbox` (their order relative to acknowledgements is not defined) unless PUBLISH is asked."""
        if ptype == PUBLISH and self.inbox:
            return self.inbox.pop(0)
        while True:
            pkt = self.recv(timeout)
            assert pkt is not None, f"connection closed while waiting for packet type {ptype}"
            if pkt.type == PUBLISH and ptype != PUBLISH:
                self.inbox.append(pkt)
                continue
            assert pkt.type == ptype, f"expected packet type {ptype}, got {pkt!r}"
            return pkt

    def expect_nothing(self, timeout=0.5):
        """No packet within timeout (and the connection stays open)."""
        try:
            pkt = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected packet or close: {pkt!r}")

    def handshake(self, client_id=None, clean=True, keepalive=60, props=None, expect_rc=0, **kw):
        self.send(connect(client_id, version=self.version, clean=clean, keepalive=keepalive, props=props, **kw))
        self.connack = self.expect(CONNACK)
        if expect_rc is not None:
            assert self.connack.rc == expect_rc, f"CONNACK {self.connack!r}"
        return self.connack

    def sub(self, filters, props=None):
        """SUBSCRIBE and return the SUBACK; filters as for subscribe()."""
        pid = self.pid()
        self.send(subscribe(pid, filters, props=props, version=self.version))
        ack_ = self.expect(SUBACK)
        assert ack_.pid == pid
        return ack_

    def pub(self, topic, payload=b"", qos=0, retain=False, props=None):
        """PUBLISH and complete the QoS flow; returns the PUBACK/PUBCOMP (or None for QoS 0)."""
        pid = self.pid() if qos else None
        self.send(publish(topic, payload, qos=qos, pid=pid, retain=retain, props=props, version=self.version))
        if qos == 1:
            return self.expect(PUBACK)
        if qos == 2:
            rec = self.expect(PUBREC)
            self.send(ack(PUBREL, pid))
            return self.expect(PUBCOMP)
        return None

    def expect_publish(self, timeout=raw.TIMEOUT, ack_it=True):
        pkt = self.expect(PUBLISH, timeout)
        if ack_it and pkt.qos == 1:
            self.send(ack(PUBACK, pkt.pid))
        elif ack_it and pkt.qos == 2:
            self.send(ack(PUBREC, pkt.pid))
            self.expect(PUBREL)
            self.send(ack(PUBCOMP, pkt.pid))
        return pkt

    def closed_with(self, timeout=raw.TIMEOUT):
        """Read until the broker closes; returns the decoded packets received before the close.
        Raises TimeoutError when the broker keeps the connection open."""
        got = list(self.inbox)
        self.inbox = []
        while True:
            try:
                pkt = self.recv(timeout)
            except TimeoutError:
                raise AssertionError(f"broker kept the connection open; received {got!r}") from None
            if pkt is None:
                return got
            got.append(pkt)


def connected(broker, version=5, client_id=None, props=None, **kw):
    """A Raw client that completed CONNECT/CONNACK successfully."""
    r = Raw(broker, version=version)
    r.handshake(client_id=client_id, props=props, **kw)
    return r


def assert_disconnected(r, rc, timeout=raw.TIMEOUT):
    """5.0: the broker sends exactly one DISCONNECT with reason `rc` (or one of `rc` if a set),
    then closes. 3.1.1/3.1: the broker just closes."""
    got = r.closed_with(timeout)
    if r.version == 5:
        discs = [p for p in got if p.type == DISCONNECT]
        assert discs, f"expected DISCONNECT before close, got {got!r}"
        codes = rc if isinstance(rc, (set, frozenset, tuple, list)) else {rc}
        assert discs[-1].rc in codes, f"expected DISCONNECT {[hex(c) for c in codes]}, got {discs[-1]!r}"
        assert got[-1].type == DISCONNECT, f"packets after DISCONNECT: {got!r}"
    else:
        assert not [p for p in got if p.type not in (PUBLISH,)], f"3.1.1 close expected, got {got!r}"
    return got


def assert_serving(broker, version=5):
    """A fresh raw client can connect, subscribe, publish to itself and receive the message."""
    r = connected(broker, version=version)
    try:
        topic = "alive/" + uuid.uuid4().hex[:8]
        assert r.sub([(topic, 1)]).codes == [1]
        r.pub(topic, b"ping", qos=1)
        m = r.expect_publish()
        assert (m.topic, m.payload) == (topic, b"ping")
        r.send(disconnect())
    finally:
        r.close()


def wait_until(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def unique(prefix="t"):
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def close_clients(broker_factory, monkeypatch):
    """Stop every paho client a test created (before its broker stops), so no network thread
    outlives the test."""
    import mqttclient
    created = []
    original = mqttclient.Client.__init__

    def init(self, *a, **kw):
        created.append(self)
        original(self, *a, **kw)

    monkeypatch.setattr(mqttclient.Client, "__init__", init)
    yield created
    for c in created:
        try:
            if c.c.is_connected():
                c.c.disconnect()
        except Exception:
            pass
        c.c.loop_stop()
