"""Memory a client with a socket can make the broker hold is bounded by configuration, before and
after authentication: the first packet is capped (max_connect_packet_size) and must keep arriving
(connect_min_bytes_per_second), replies to a client that does not read stop being produced (the
broker stops reading), a client that never reads is closed (write_stall_timeout), and long
subscription filters and many topic aliases stay within their limits. Each test compares RSS
growth with the documented bound (docs/ARCHITECTURE.md, "Memory bounds")."""

import base64
import os
import socket
import struct
import time

import pytest

import wire

pytestmark = pytest.mark.bastion_only

KIB = 1024
MIB = 1024 * 1024


def rss(broker):
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * KIB
    return 0


def settled_rss(broker, timeout=5.0):
    """RSS once start-up allocations (loops' first buffers, the first $SYS round) are done: two
    readings half a second apart within 64 KiB, or the last reading after `timeout`."""
    deadline = time.monotonic() + timeout
    last = rss(broker)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss(broker)
        if abs(now - last) < 64 * KIB:
            return now
        last = now
    return last


def sock(broker, port=None, rcvbuf=None, source="127.0.0.1"):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect((broker.host, port or broker.port))
    return s


def closed(s, timeout):
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# ---------------------------------------------------------------- before CONNECT

def test_a_connect_announcing_more_than_the_first_packet_limit_is_refused_from_its_header(broker):
    s = sock(broker)
    # Fixed header announcing a 200 KB CONNECT (within max_packet_size, over the 16 KiB first-packet cap).
    s.sendall(b"\x10" + wire.varint(200_000) + b"\x00\x04MQTT\x05")
    assert closed(s, 3)


def test_a_trickled_connect_is_dropped_by_the_rate_floor_before_the_connect_timeout(broker_factory):
    b = broker_factory(config={"limits": {"connect_timeout": 30}})
    s = sock(b)
    packet = wire.connect("slow", version=4, username="u" * 200, password="p" * 8000)
    started = time.monotonic()
    sent = 0
    try:
        while sent < len(packet) and time.monotonic() - started < 20:
            s.sendall(packet[sent:sent + 50])
            sent += 50
            time.sleep(0.2)                      # 250 B/s, under the 1024 B/s floor
    except OSError:
        pass
    assert closed(s, 10)
    # Closed for its rate, not by the (30 s) connect timeout.
    b.wait_for_log("CONNECT arriving slower than the minimum rate")


def test_unauthenticated_connections_holding_partial_connects_stay_bounded(broker_factory):
    b = broker_factory(config={"limits": {"connect_timeout": 30, "connect_min_bytes_per_second": 0}})
    before = rss(b)
    held = []
    for i in range(300):
        s = sock(b, source=f"127.0.{2 + i // 200}.{1 + i % 200}")
        # 16 KiB CONNECT announced, all but the last byte sent: buffered until the timeout.
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + wire.string("c%d" % i) + b"x" * (16 * KIB - 40)
        s.sendall(b"\x10" + wire.varint(len(body)) + body[:-1])
        held.append(s)
    time.sleep(1)
    grown = rss(b) - before
    # Bound: max_connect_packet_size + receive buffer + connection state per socket (~100 KiB).
    assert grown < 2 * 300 * 100 * KIB, f"RSS grew {grown // KIB} KiB for 300 partial CONNECTs"
    for s in held:
        s.close()


# ---------------------------------------------------------------- replies nobody reads

def connected(broker, rcvbuf=4096, client_id=None):
    s = sock(broker, rcvbuf=rcvbuf)
    s.sendall(wire.connect(client_id or f"reader-{os.urandom(4).hex()}", version=4))
    assert s.recv(4)[:1] == b"\x20"
    return s


class Stream:
    """Sends `data` over and over on a non-blocking socket, keeping packet boundaries intact
    across partial sends."""

    def __init__(self, s, data):
        self.s, self.data, self.offset, self.taken = s, data, 0, 0
        s.setblocking(False)

    def push(self):
        """One send; returns bytes taken (0 when the socket would block). Raises OSError if closed."""
        try:
            n = self.s.send(self.data[self.offset:] if self.offset else self.data)
        except BlockingIOError:
            return 0
        self.offset = (self.offset + n) % len(self.data)
        self.taken += n
        return n


def flood(sockets, data, seconds):
    """Send `data` repeatedly on every socket, without reading, for `seconds` in all; returns
    the bytes the broker took."""
    streams = [Stream(s, data) for s in sockets]
    deadline = time.monotonic() + seconds
    while streams and time.monotonic() < deadline:
        moved = 0
        for stream in list(streams):
            try:
                moved += stream.push()
            except OSError:
                streams.remove(stream)
        if not moved:
            time.sleep(0.01)
    return sum(stream.taken for stream in streams)


def test_pingreqs_from_a_client_that_never_reads_do_not_grow_memory(broker):
    before = rss(broker)
    conns = [connected(broker) for _ in range(10)]
    pings = b"\xc0\x00" * 32768
    taken = flood(conns, pings, 4)
    grown = rss(broker) - before
    # The broker stops reading once 1 MiB of replies waits per connection: it does not take what
    # the clients keep sending, and what it holds stays under 2x the per-connection bound.
    assert taken < 10 * 16 * MIB, f"broker read {taken // MIB} MiB of PINGREQs from clients that never read"
    assert grown < 2 * 10 * (MIB + 128 * KIB), f"RSS grew {grown // KIB} KiB"
    for s in conns:
        s.close()


def flood_until_refused(s, data, stuck_for=1.5, limit=60):
    """Send without reading until the broker stops taking bytes for `stuck_for` seconds."""
    stream = Stream(s, data)
    last = time.monotonic()
    deadline = last + limit
    while time.monotonic() < deadline:
        try:
            if stream.push():
                last = time.monotonic()
                continue
        except OSError:
            return True
        if time.monotonic() - last > stuck_for:
            return True
        time.sleep(0.01)
    return False


def test_a_client_that_never_reads_is_closed_after_the_write_stall_timeout(broker_factory):
    b = broker_factory(config={"limits": {"write_stall_timeout": 2}})
    s = connected(b)
    s.sendall(wire.packet(0x82, struct.pack("!H", 1) + wire.string("stall/me") + b"\x00"))
    time.sleep(0.5)
    # Large messages to its own subscription fill the path to the client quickly.
    publish = wire.packet(0x30, wire.string("stall/me") + b"x" * 200_000)
    assert flood_until_refused(s, publish), "the broker kept reading from a client that never reads"
    assert closed_without_reading(s, 10)
    assert "write stall timeout" in b.log_text()


def closed_without_reading(s, timeout):
    """Whether the broker closed `s` (a reset, or EOF once the queued replies are drained)."""
    deadline = time.monotonic() + timeout
    time.sleep(timeout / 2)
    return closed(s, max(0.5, deadline - time.monotonic()))


# ---------------------------------------------------------------- WebSocket pings before CONNECT

def ws_upgrade(broker, port):
    s = sock(broker, port=port, rcvbuf=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += s.recv(1)
    assert b" 101 " in reply
    return s


def ws_ping(payload=b"p" * 125):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x89, 0x80 | len(payload)]) + mask + masked


def test_websocket_pings_before_connect_do_not_grow_memory(broker_factory):
    from conftest import free_port
    port, ws = free_port(), free_port()
    b = broker_factory(port=port, config={"listeners": [{"url": f"mqtt://127.0.0.1:{port}", "allow_anonymous": True},
                                                       {"url": f"ws://127.0.0.1:{ws}/mqtt", "allow_anonymous": True}],
                                          "limits": {"connect_timeout": 30}})
    before = settled_rss(b)
    conns = [ws_upgrade(b, ws) for _ in range(10)]
    pings = ws_ping() * 400
    taken = flood(conns, pings, 4)
    grown = rss(b) - before
    # Before CONNECT the outbound budget is 64 KiB per connection.
    assert taken < 10 * 16 * MIB, f"broker read {taken // MIB} MiB of pings"
    assert grown < 2 * 10 * (256 * KIB), f"RSS grew {grown // KIB} KiB"
    for s in conns:
        s.close()


# ---------------------------------------------------------------- after authentication

def test_subscriptions_with_long_filters_stop_at_their_bounds(broker_factory):
    b = broker_factory(config={"limits": {"max_subscriptions_per_client": 100}})
    s = connected(b, rcvbuf=None)
    before = rss(b)
    for i in range(300):
        f = f"{i}/" + "x" * 60000
        body = struct.pack("!H", i + 1) + wire.string(f) + b"\x01"
        s.sendall(wire.packet(0x82, body))
    time.sleep(1)
    grown = rss(b) - before
    # 100 subscriptions of 60 KB at most (x one replica per event loop, and the session's copy).
    assert grown < 2 * 100 * 60000 * (os.cpu_count() + 2), f"RSS grew {grown // KIB} KiB"
    s.close()
