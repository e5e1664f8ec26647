"""Connection limits, brute-force bans, publish rate limits and packet size (black box)."""

import json
import os
import selectors
import socket
import struct
import subprocess
import time

import pytest

import wire
from conftest import BASTION_BIN

pytestmark = pytest.mark.bastion_only


class Conn(wire.Raw):
    """A raw MQTT connection from a chosen loopback source address (buffered packet reader)."""

    def __init__(self, broker, source="127.0.0.1", timeout=5.0):
        super().__init__(broker, timeout=timeout, source=source)

    def setblocking(self, flag):
        self.sock.setblocking(flag)

    def fileno(self):
        return self.sock.fileno()

    def connack_code(self, version=4, client_id="c", username=None, password=None, timeout=5.0):
        """Send CONNECT; return the CONNACK return/reason code, or None if the broker closed."""
        try:
            self.send(wire.connect(client_id=client_id, version=version, username=username, password=password))
        except (BrokenPipeError, ConnectionResetError):
            return None
        try:
            p = self.read_packet(timeout)
        except OSError:
            return None
        if p is None:
            return None
        assert p[0] == 0x20, f"expected CONNACK, got {p[0]:#x}"
        return p[1][1]


def open_socket(broker, source="127.0.0.1", timeout=5.0):
    return Conn(broker, source, timeout)


def connack_code(conn, **kwargs):
    return conn.connack_code(**kwargs)


def closed_soon(conn, timeout):
    """True if the broker closes the connection (EOF or reset) within `timeout` seconds."""
    conn.sock.settimeout(timeout)
    try:
        return conn.sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def password_file(workdir, users):
    path = workdir / "passwords"
    path.write_text("")
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True, capture_output=True)
    return path


def test_half_open_sockets_are_closed_after_the_timeout_without_delaying_a_client(broker_factory):
    timeout = 3
    broker = broker_factory(config={"limits": {
        "connect_timeout": timeout, "max_connections_per_ip": 2000,
        "connect_rate_per_ip": 100000, "connect_burst_per_ip": 100000}})
    idle = []
    try:
        for _ in range(500):
            idle.append(open_socket(broker))
        # A legitimate client is served at once, not after the idle sockets: its CONNACK comes
        # while every idle socket is still open (none has reached its timeout yet).
        legit = open_socket(broker)
        assert connack_code(legit, client_id="legit") == 0
        legit.close()
        still_open = 0
        for s in idle:
            s.setblocking(False)
            try:
                if s.sock.recv(1) != b"":
                    still_open += 1
            except BlockingIOError:
                still_open += 1
            except (ConnectionResetError, BrokenPipeError):
                pass
        assert still_open == len(idle), "idle sockets were closed before the legitimate client was served"
        # Every idle socket is closed by the broker once the timeout passes.
        selector = selectors.DefaultSelector()
        for s in idle:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        open_ones = set(idle)
        deadline = time.monotonic() + timeout + 10
        while open_ones and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.sock.recv(1)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except BlockingIOError:
                    continue
                if data == b"":
                    selector.unregister(s)
                    open_ones.discard(s)
        assert not open_ones, f"{len(open_ones)} idle sockets still open"
    finally:
        for s in idle:
            s.close()


def test_wrong_passwords_ban_the_address_but_not_other_clients(broker_factory, tmp_path):
    pw = password_file(tmp_path, {"alice": "correct horse"})
    broker = broker_factory(anonymous=False, args=["--password-file", str(pw)], config={"limits": {
        "auth_failures_per_ip": 100, "auth_failures_per_user": 0,
        "connect_rate_per_ip": 10000, "connect_burst_per_ip": 10000}})
    for i in range(100):
        s = open_socket(broker, source="127.0.0.7")
        code = connack_code(s, client_id=f"guess{i}", username="alice", password="wrong")
        assert code in (4, 5, None), code
        s.close()
    # The address is banned now: even the right password is refused before MQTT.
    s = open_socket(broker, source="127.0.0.7")
    assert connack_code(s, client_id="attacker", username="alice", password="correct horse") is None
    s.close()
    # A client from another loopback address is not affected.
    s = open_socket(broker, source="127.0.0.2")
    assert connack_code(s, client_id="legit", username="alice", password="correct horse") == 0
    s.close()


def test_connections_per_address_are_capped(broker_factory):
    broker = broker_factory(config={"limits": {"max_connections_per_ip": 3}})
    # 127.0.0.5: an address no other socket of this test (or the fixture's port probe) uses.
    held = [open_socket(broker, source="127.0.0.5") for _ in range(3)]
    try:
        for i, s in enumerate(held):
            assert connack_code(s, client_id=f"held{i}") == 0
        extra = open_socket(broker, source="127.0.0.5")
        assert closed_soon(extra, 5), "fourth connection from one address was not closed"
        extra.close()
        other = open_socket(broker, source="127.0.0.2")
        assert connack_code(other, client_id="other") == 0
        other.close()
    finally:
        for s in held:
            s.close()


def test_connect_rate_per_address_is_limited(broker_factory):
    broker = broker_factory(config={"limits": {"connect_rate_per_ip": 1, "connect_burst_per_ip": 5}})
    sockets = [open_socket(broker, source="127.0.0.6") for _ in range(10)]
    try:
        refused = sum(1 for s in sockets if closed_soon(s, 2))
        assert refused >= 4, f"only {refused} of 10 rapid connections were refused"
    finally:
        for s in sockets:
            s.close()


def publish_qos1(topic, payload, packet_id):
    body = wire.string(topic) + struct.pack("!H", packet_id) + payload
    return wire.packet(0x32, body)


def test_over_rate_publisher_is_throttled(broker_factory, tmp_path):
    audit = tmp_path / "audit.log"
    broker = broker_factory(config={"limits": {"publish_rate_messages": 10, "publish_burst_seconds": 1}},
                            args=["--audit-log", str(audit)])
    s = open_socket(broker)
    assert connack_code(s, client_id="fast") == 0
    for i in range(1, 41):
        s.send(publish_qos1("rate/t", b"x", i))
    acks = 0
    while acks < 40:
        p = s.read_packet(timeout=15)
        assert p is not None, "throttled publisher was disconnected"
        if p[0] == 0x40:
            acks += 1
    # All accepted, none lost, and the broker says it paused the publisher (rather than the
    # burst simply being large enough).
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    assert any("publish_rate" in json.dumps(r) and "throttled" in json.dumps(r) for r in records), records
    s.close()


def test_over_rate_publisher_is_disconnected_when_configured(broker_factory):
    broker = broker_factory(config={"limits": {"publish_rate_messages": 5, "publish_burst_seconds": 1,
                                               "publish_rate_action": "disconnect"}})
    s = open_socket(broker)
    assert connack_code(s, version=5, client_id="fast5") == 0
    for i in range(1, 31):
        try:
            s.send(wire.packet(0x32, wire.string("rate/t") + struct.pack("!H", i) + b"\x00" + b"x"))
        except (BrokenPipeError, ConnectionResetError):
            break
    reasons = []
    while True:
        p = s.read_packet(timeout=5)
        if p is None:
            break
        if p[0] == 0xE0:
            reasons.append(p[1][0])
    assert 0x96 in reasons, f"expected DISCONNECT 0x96, got {reasons}"
    s.close()


def test_oversized_packet_is_refused(broker_factory):
    broker = broker_factory(config={"limits": {"max_packet_size": 1024}})
    # 5.0: the limit is advertised in CONNACK, and a larger packet gets DISCONNECT 0x95.
    s = open_socket(broker)
    s.send(wire.connect(client_id="big5", version=5))
    p = s.read_packet()
    assert p is not None and p[0] == 0x20 and p[1][1] == 0
    assert b"\x27" + struct.pack("!I", 1024) in p[1], "Maximum Packet Size not advertised"
    s.send(wire.packet(0x30, wire.string("big") + b"\x00" + b"x" * 2000))
    got = s.closed_with()
    assert any(q.first == 0xE0 and q.body[:1] == b"\x95" for q in got), got
    s.close()
    # 3.1.1: the connection is closed.
    s = open_socket(broker)
    assert connack_code(s, client_id="big4") == 0
    s.send(wire.packet(0x30, wire.string("big") + b"x" * 2000))
    assert s.closed_with() == []
    s.close()
