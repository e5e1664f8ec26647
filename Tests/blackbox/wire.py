"""Raw MQTT (3.1, 3.1.1 and 5.0, properties included) on a plain socket: packet builders, a
decoder and a blocking client. Tests use it to check packet identifiers, flags and reason codes
exactly, and to send bytes a well-behaved library never would."""

import socket
import struct
import time
import uuid

TIMEOUT = 5.0

# Control packet types (upper nibble of the first byte).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
TYPE_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
              8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
              14: "DISCONNECT", 15: "AUTH"}

# 5.0 reason codes used by the tests.
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_BAD_AUTH_METHOD = 0x8C
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95

# Property identifier -> (name, wire type), MQTT 5.0 section 2.2.2.2.
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


# ----- primitives ------------------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(s):
    """A two-byte length followed by the bytes (UTF-8 string or binary data)."""
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(type_and_flags, body=b""):
    return bytes([type_and_flags]) + varint(len(body)) + body


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


def split_frame(buf, pos=0):
    """The packet starting at buf[pos]: (first byte, body, end index), or None while incomplete.
    A remaining length that has not ended after 4 bytes also reads as incomplete."""
    i, mult, length = pos + 1, 1, 0
    while i < len(buf) and i <= pos + 4:
        b = buf[i]
        length += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            if len(buf) >= i + length:
                return buf[pos], buf[i:i + length], i + length
            return None
    return None


# ----- properties ------------------------------------------------------------------------------

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
        return out + string(value)
    if kind == "pair":
        return out + string(value[0]) + string(value[1])
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


class Props(dict):
    """Decoded properties: name -> value (lists for UserProperty / SubscriptionIdentifier);
    `.order` keeps (name, value) in wire order."""

    def __init__(self):
        super().__init__()
        self.order = []


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


# ----- packet builders -------------------------------------------------------------------------

def connect(client_id=None, version=5, clean=True, keepalive=60, props=None, will=None, username=None,
            password=None, flags=None, protocol_name=None):
    """CONNECT; will = dict(topic, payload, qos, retain, props). `flags` replaces the computed
    connect flags byte and `protocol_name` the name that goes with `version`."""
    if client_id is None:
        client_id = "raw-" + uuid.uuid4().hex[:10]
    f = 0x02 if clean else 0
    tail = string(client_id)
    if will is not None:
        f |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if version == 5:
            tail += encode_properties(will.get("props"))
        tail += string(will["topic"]) + string(will.get("payload", b""))
    if username is not None:
        f |= 0x80
        tail += string(username)
    if password is not None:
        f |= 0x40
        tail += string(password)
    if flags is not None:
        f = flags
    if protocol_name is None:
        protocol_name = b"MQIsdp" if version == 3 else b"MQTT"
    body = string(protocol_name) + bytes([version, f]) + struct.pack("!H", keepalive)
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
    """filters: list of (filter, options byte) or plain filter strings (options 0); for 3.1.1 the
    options byte is the requested QoS."""
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
    """PUBACK / PUBREC / PUBREL / PUBCOMP (PUBREL with its mandatory flags 0b0010). The reason
    code is written only when given, the property length only when `props` is given."""
    first = {PUBACK: 0x40, PUBREC: 0x50, PUBREL: 0x62, PUBCOMP: 0x70}[kind]
    body = struct.pack("!H", pid)
    if rc is not None or props is not None:
        body += bytes([rc or 0])
        if props is not None:
            body += encode_properties(props)
    return packet(first, body)


def disconnect(rc=None, props=None):
    """DISCONNECT; reason code and property length are written as for ack()."""
    body = b""
    if rc is not None or props is not None:
        body = bytes([rc or 0])
        if props is not None:
            body += encode_properties(props)
    return packet(0xE0, body)


def auth(rc=0x18, props=None):
    return packet(0xF0, bytes([rc]) + encode_properties(props))


def pingreq():
    return packet(0xC0)


# ----- decoded packets -------------------------------------------------------------------------

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
        name = TYPE_NAMES.get(self.type, f"type{self.type}")
        extra = f" rc=0x{self.rc:02x}" if self.rc is not None else ""
        if self.type == PUBLISH:
            extra = f" topic={self.topic!r} qos={self.qos} retain={self.retain} payload={self.payload[:40]!r}"
        return f"<{name}{extra} props={dict(self.props)} ({self.first:#04x} {self.body[:40].hex()})>"


def disconnect_reasons(packets):
    return [p.rc for p in packets if p.type == DISCONNECT]


# ----- the client ------------------------------------------------------------------------------

class Raw:
    """A raw connection that knows its protocol version and decodes what it reads.

    With `ordered` (the default) expect() and expect_nothing() see every packet in arrival order,
    PINGRESP included. Without it, PINGRESP is skipped and PUBLISH packets arriving while an
    acknowledgement is awaited are kept in `inbox`: their order relative to acknowledgements is
    not defined."""

    def __init__(self, broker, version=5, timeout=TIMEOUT, ordered=True, source=None):
        """`source`: the local address to connect from (per-address limits)."""
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""
        self.version = version
        self.ordered = ordered
        self.next_pid = 1
        self.connack = None
        self.inbox = []

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def pid(self):
        p = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return p

    # ----- reading

    def read_packet(self, timeout=TIMEOUT):
        """(first byte, body) of the next packet, or None when the broker closed the connection.
        Raises TimeoutError when nothing complete arrives in time."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                frame = split_frame(self.buf)
                if frame is not None:
                    first, body, end = frame
                    self.buf = self.buf[end:]
                    return first, body
            if time.monotonic() > deadline:
                raise TimeoutError("no packet from broker")
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def read(self, timeout=TIMEOUT):
        """The next packet, decoded, or None when the broker closed the connection."""
        p = self.read_packet(timeout)
        return None if p is None else Packet(p[0], p[1], self.version)

    def recv(self, timeout=TIMEOUT):
        """Next packet (PINGRESP skipped) or None when the broker closed the connection."""
        while True:
            pkt = self.read(timeout)
            if pkt is None or pkt.type != PINGRESP:
                return pkt

    def expect(self, ptype, timeout=TIMEOUT):
        """Next packet, which must be of type `ptype`."""
        if self.ordered:
            pkt = self.read(timeout)
            assert pkt is not None, f"connection closed while waiting for packet type {ptype}"
            assert pkt.type == ptype, f"expected packet type {ptype}, got {pkt!r}"
            return pkt
        if ptype == PUBLISH and self.inbox:
            return self.inbox.pop(0)
        while True:
            pkt = self.read(timeout) if ptype == PINGRESP else self.recv(timeout)
            assert pkt is not None, f"connection closed while waiting for packet type {ptype}"
            if pkt.type == PUBLISH and ptype != PUBLISH:
                self.inbox.append(pkt)
                continue
            assert pkt.type == ptype, f"expected packet type {ptype}, got {pkt!r}"
            return pkt

    def expect_ack(self, kind, pid=None, timeout=TIMEOUT):
        """PUBACK / PUBREC / PUBREL / PUBCOMP, for packet id `pid` if given."""
        pkt = self.expect(kind, timeout)
        if kind == PUBREL:
            assert pkt.flags == 0x02, f"PUBREL flags must be 0b0010, got {pkt.first:#04x}"
        if pid is not None:
            assert pkt.pid == pid, f"ack for packet id {pkt.pid}, expected {pid}"
        return pkt

    def expect_publish(self, timeout=TIMEOUT, ack_it=False):
        """The next PUBLISH; with `ack_it` its QoS 1 / QoS 2 flow is completed."""
        pkt = self.expect(PUBLISH, timeout)
        if ack_it and pkt.qos == 1:
            self.send(ack(PUBACK, pkt.pid))
        elif ack_it and pkt.qos == 2:
            self.send(ack(PUBREC, pkt.pid))
            self.expect(PUBREL)
            self.send(ack(PUBCOMP, pkt.pid))
        return pkt

    def expect_nothing(self, timeout=1.0):
        """No packet within `timeout`, and the connection stays open."""
        try:
            pkt = self.read(timeout) if self.ordered else self.recv(timeout)
        except TimeoutError:
            return
        if pkt is None:
            raise AssertionError("broker closed the connection")
        raise AssertionError(f"unexpected packet {pkt!r}")

    def closed_within(self, timeout=TIMEOUT):
        """Wait for the broker to close; returns (packets received before the close, `inbox` first,
        seconds waited). Raises AssertionError if still open after `timeout`."""
        start = time.monotonic()
        got = list(self.inbox)
        self.inbox = []
        while True:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s; received {got!r}")
            try:
                pkt = self.read(left) if self.ordered else self.recv(left)
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout}s; received {got!r}") from None
            except OSError:
                pkt = None
            if pkt is None:
                return got, time.monotonic() - start
            got.append(pkt)

    def closed_with(self, timeout=TIMEOUT):
        """Read until the broker closes; returns the packets received before the close."""
        return self.closed_within(timeout)[0]

    def expect_closed_after(self, allowed=(), timeout=TIMEOUT):
        """The broker closes the connection; only packets of the listed types may precede it."""
        got = self.closed_with(timeout)
        for pkt in got:
            assert pkt.type in allowed, f"unexpected packet {pkt!r} before close"
        return got

    # ----- flows

    def connect(self, client_id=None, expect_rc=0, **kw):
        """Send CONNECT (arguments as for connect()) and return the CONNACK."""
        self.send(connect(client_id, version=self.version, **kw))
        self.connack = self.expect(CONNACK)
        if expect_rc is not None:
            assert self.connack.rc == expect_rc, f"CONNACK {self.connack!r}, expected code {expect_rc:#x}"
        return self.connack

    def sub(self, filters, props=None, pid=None):
        """SUBSCRIBE and return the SUBACK; filters as for subscribe()."""
        pid = self.pid() if pid is None else pid
        self.send(subscribe(pid, filters, props=props, version=self.version))
        suback = self.expect(SUBACK)
        assert suback.pid == pid
        return suback

    def pub(self, topic, payload=b"", qos=0, retain=False, props=None):
        """PUBLISH and complete the QoS flow; returns the PUBACK/PUBCOMP (or None for QoS 0)."""
        pid = self.pid() if qos else None
        self.send(publish(topic, payload, qos=qos, pid=pid, retain=retain, props=props, version=self.version))
        if qos == 1:
            return self.expect(PUBACK)
        if qos == 2:
            self.expect(PUBREC)
            self.send(ack(PUBREL, pid))
            return self.expect(PUBCOMP)
        return None

    def ping_ok(self):
        """A PINGREQ is answered: the connection is alive."""
        self.send(pingreq())
        self.expect(PINGRESP)


def connected(broker, version=5, client_id=None, props=None, ordered=False, **kw):
    """A Raw client that completed CONNECT/CONNACK successfully."""
    r = Raw(broker, version=version, ordered=ordered)
    r.connect(client_id=client_id, props=props, **kw)
    return r


def assert_disconnected(r, rc, timeout=TIMEOUT):
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


def unique(prefix="t"):
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


def assert_serving(broker, version=5):
    """A fresh raw client can connect, subscribe, publish to itself and receive the message."""
    r = connected(broker, version=version)
    try:
        topic = "alive/" + uuid.uuid4().hex[:8]
        assert r.sub([(topic, 1)]).codes == [1]
        r.pub(topic, b"ping", qos=1)
        m = r.expect_publish(ack_it=True)
        assert (m.topic, m.payload) == (topic, b"ping")
        r.send(disconnect())
    finally:
        r.close()
