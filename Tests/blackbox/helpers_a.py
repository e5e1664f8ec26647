"""Raw MQTT packet builders and parsers for the connect/session/QoS/will black-box tests.

Everything here speaks bytes on a socket so a test can check packet identifiers, flags and reason
codes exactly, and send what a well-behaved library never would."""

import struct
import time

import raw
from raw import RawClient, packet, string, varint

# Control packet types (high nibble of the first byte).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

# Property identifiers (MQTT 5.0 section 2.2.2.2).
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILL_DELAY = 0x18

_BYTE = {PAYLOAD_FORMAT, MAXIMUM_QOS, RETAIN_AVAILABLE, 0x17, 0x19, 0x28, 0x29, 0x2A}
_U16 = {SERVER_KEEP_ALIVE, RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS}
_U32 = {MESSAGE_EXPIRY, SESSION_EXPIRY, WILL_DELAY, MAXIMUM_PACKET_SIZE}
_VARINT = {SUBSCRIPTION_ID}
_STRING = {CONTENT_TYPE, RESPONSE_TOPIC, ASSIGNED_CLIENT_ID, REASON_STRING, 0x15, 0x1A, 0x1C}
_BINARY = {CORRELATION_DATA, 0x16}


# ---------------------------------------------------------------- properties

def prop(pid, value):
    """Encode one property by identifier; value type follows the identifier."""
    if pid in _BYTE:
        return bytes([pid, value])
    if pid in _U16:
        return bytes([pid]) + struct.pack("!H", value)
    if pid in _U32:
        return bytes([pid]) + struct.pack("!I", value)
    if pid in _VARINT:
        return bytes([pid]) + varint(value)
    if pid in _STRING or pid in _BINARY:
        return bytes([pid]) + string(value)
    if pid == USER_PROPERTY:
        k, v = value
        return bytes([pid]) + string(k) + string(v)
    raise ValueError(f"unknown property {pid:#x}")


def props(*pairs):
    """props((SESSION_EXPIRY, 10), (USER_PROPERTY, ("k", "v"))) -> encoded property bytes (no length)."""
    return b"".join(prop(p, v) for p, v in pairs)


def with_len(properties):
    return varint(len(properties)) + properties


def read_varint(data, i):
    mult, value = 1, 0
    while True:
        b = data[i]
        i += 1
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, i


def parse_props(data, i):
    """Parse a property block at data[i:]; returns (dict, next index). User properties and
    subscription identifiers are lists; everything else a single value."""
    length, i = read_varint(data, i)
    end = i + length
    out = {}
    while i < end:
        pid = data[i]
        i += 1
        if pid in _BYTE:
            v = data[i]
            i += 1
        elif pid in _U16:
            v = struct.unpack_from("!H", data, i)[0]
            i += 2
        elif pid in _U32:
            v = struct.unpack_from("!I", data, i)[0]
            i += 4
        elif pid in _VARINT:
            v, i = read_varint(data, i)
        elif pid in _STRING or pid in _BINARY:
            n = struct.unpack_from("!H", data, i)[0]
            v = bytes(data[i + 2:i + 2 + n])
            if pid in _STRING:
                v = v.decode()
            i += 2 + n
        elif pid == USER_PROPERTY:
            n = struct.unpack_from("!H", data, i)[0]
            k = bytes(data[i + 2:i + 2 + n]).decode()
            i += 2 + n
            n = struct.unpack_from("!H", data, i)[0]
            v = (k, bytes(data[i + 2:i + 2 + n]).decode())
            i += 2 + n
        else:
            raise ValueError(f"unknown property id {pid:#x} from broker")
        if pid in (USER_PROPERTY, SUBSCRIPTION_ID):
            out.setdefault(pid, []).append(v)
        else:
            out[pid] = v
    return out, end


# ---------------------------------------------------------------- builders

def connect(client_id="raw", version=4, clean=True, keepalive=60, properties=b"", username=None,
            password=None, will=None, flags=None, protocol_name=None):
    """CONNECT with optional will = dict(topic, payload, qos, retain, properties(bytes, 5.0)).
    `flags` overrides the computed connect flags byte; `protocol_name` the name string."""
    name = protocol_name if protocol_name is not None else (b"MQIsdp" if version == 3 else b"MQTT")
    f = 0x02 if clean else 0
    if will is not None:
        f |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        f |= 0x80
    if password is not None:
        f |= 0x40
    if flags is not None:
        f = flags
    body = string(name) + bytes([version, f]) + struct.pack("!H", keepalive)
    if version == 5:
        body += with_len(properties)
    body += string(client_id)
    if will is not None:
        if version == 5:
            body += with_len(will.get("properties", b""))
        body += string(will["topic"]) + string(will.get("payload", b""))
    if username is not None:
        body += string(username)
    if password is not None:
        body += string(password)
    return packet(0x10, body)


def publish(topic, payload=b"", qos=0, pid=None, dup=False, retain=False, version=4, properties=b""):
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = string(topic)
    if qos:
        body += struct.pack("!H", pid)
    if version == 5:
        body += with_len(properties)
    body += payload.encode() if isinstance(payload, str) else payload
    return packet(first, body)


def ack(kind, pid, version=4, reason=None, properties=b""):
    """PUBACK/PUBREC/PUBREL/PUBCOMP for `pid` (PUBREL gets its mandatory flags 0b0010)."""
    first = (kind << 4) | (0x02 if kind == PUBREL else 0)
    body = struct.pack("!H", pid)
    if version == 5 and (reason not in (None, 0) or properties):
        body += bytes([reason or 0]) + with_len(properties)
    return packet(first, body)


def subscribe(pid, filters, version=4, properties=b""):
    """filters: [(topic_filter, options_byte)] (options byte = QoS for 3.1.1)."""
    body = struct.pack("!H", pid)
    if version == 5:
        body += with_len(properties)
    for f, opts in filters:
        body += string(f) + bytes([opts])
    return packet(0x82, body)


def pingreq():
    return packet(0xC0)


def disconnect(version=4, reason=None, properties=b""):
    if version == 5 and (reason is not None or properties):
        return packet(0xE0, bytes([reason or 0]) + with_len(properties))
    return packet(0xE0)


# ---------------------------------------------------------------- parsers

def ptype(first):
    return first >> 4


def parse_connack(body, version):
    """-> (session_present, return/reason code, properties dict)"""
    present, rc = body[0] & 0x01, body[1]
    properties = {}
    if version == 5 and len(body) > 2:
        properties, _ = parse_props(body, 2)
    return bool(present), rc, properties


def parse_publish(first, body, version):
    """-> dict(topic, qos, dup, retain, pid, props, payload)"""
    qos = (first >> 1) & 0x03
    n = struct.unpack_from("!H", body, 0)[0]
    topic = bytes(body[2:2 + n]).decode()
    i = 2 + n
    pid = None
    if qos:
        pid = struct.unpack_from("!H", body, i)[0]
        i += 2
    properties = {}
    if version == 5:
        properties, i = parse_props(body, i)
    return dict(topic=topic, qos=qos, dup=bool(first & 0x08), retain=bool(first & 0x01), pid=pid,
                props=properties, payload=bytes(body[i:]))


def parse_ack(body, version):
    """PUBACK/PUBREC/PUBREL/PUBCOMP -> (pid, reason code)"""
    pid = struct.unpack_from("!H", body, 0)[0]
    rc = body[2] if version == 5 and len(body) > 2 else 0
    return pid, rc


def parse_disconnect(body):
    """-> (reason code, properties); an empty body means 0x00."""
    if not body:
        return 0, {}
    rc = body[0]
    properties = parse_props(body, 1)[0] if len(body) > 1 else {}
    return rc, properties


# ---------------------------------------------------------------- a raw client with expectations

class Raw(RawClient):
    """RawClient plus protocol-aware expectations. `version` is the protocol level (3, 4, 5)."""

    def __init__(self, broker, version=4, timeout=raw.TIMEOUT):
        super().__init__(broker, timeout)
        self.version = version
        self.local_port = self.sock.getsockname()[1]

    def connect(self, client_id="raw", expect_rc=0, **kw):
        """Send CONNECT and read the CONNACK; returns (session_present, rc, props)."""
        self.send(connect(client_id, version=self.version, **kw))
        p = self.expect(CONNACK)
        present, rc, properties = parse_connack(p[1], self.version)
        if expect_rc is not None:
            assert rc == expect_rc, f"CONNACK code {rc:#x}, expected {expect_rc:#x}"
        return present, rc, properties

    def expect(self, kind, timeout=raw.TIMEOUT):
        """Next packet must be of type `kind`; returns (first byte, body)."""
        p = self.read_packet(timeout)
        assert p is not None, f"connection closed while waiting for packet type {kind}"
        assert ptype(p[0]) == kind, f"expected packet type {kind}, got {ptype(p[0])} ({p[0]:#04x} {p[1].hex()})"
        return p

    def expect_publish(self, timeout=raw.TIMEOUT):
        first, body = self.expect(PUBLISH, timeout)
        return parse_publish(first, body, self.version)

    def expect_ack(self, kind, pid=None, timeout=raw.TIMEOUT):
        first, body = self.expect(kind, timeout)
        if kind == PUBREL:
            assert first & 0x0F == 0x02, f"PUBREL flags must be 0b0010, got {first:#04x}"
        got_pid, rc = parse_ack(body, self.version)
        if pid is not None:
            assert got_pid == pid, f"ack for packet id {got_pid}, expected {pid}"
        return got_pid, rc

    def expect_nothing(self, timeout=1.0):
        """No packet arrives within `timeout` and the connection stays open."""
        try:
            p = self.read_packet(timeout)
        except (TimeoutError, OSError):
            return
        if p is None:
            raise AssertionError("broker closed the connection")
        raise AssertionError(f"unexpected packet {p[0]:#04x} {p[1].hex()}")

    def subscribe(self, topic, qos=1, pid=1, properties=b""):
        self.send(subscribe(pid, [(topic, qos)], self.version, properties))
        first, body = self.expect(SUBACK)
        assert struct.unpack_from("!H", body, 0)[0] == pid
        return body[-1]

    def ping_ok(self):
        """A PINGREQ is answered: the connection is alive."""
        self.send(pingreq())
        self.expect(PINGRESP)

    def closed_within(self, timeout):
        """Wait for the broker to close; returns (packets received before the close, seconds waited).
        Raises AssertionError if still open after `timeout`."""
        start = time.monotonic()
        got = []
        while True:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s")
            try:
                p = self.read_packet(left)
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout}s") from None
            except OSError:
                p = None
            if p is None:
                return got, time.monotonic() - start
            got.append(p)

    def expect_closed_after(self, allowed=(), timeout=raw.TIMEOUT):
        """The broker closes the connection; only packets of the listed types may precede it.
        Returns those packets."""
        got, _ = self.closed_within(timeout)
        for first, body in got:
            assert ptype(first) in allowed, f"unexpected packet {first:#04x} {body.hex()} before close"
        return got


def disconnect_reasons(packets):
    return [parse_disconnect(b)[0] for f, b in packets if ptype(f) == DISCONNECT]
