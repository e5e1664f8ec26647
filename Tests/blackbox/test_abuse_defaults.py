"""Abuse defences that stop attackers without locking out legitimate clients: flapping per client
id, address bans only on evidence of attack and never for trusted networks, the PROXY protocol,
and visible drops (0x97, per-reason counters, alerts). The first tests run against the embedded
default (`bastion serve` with no arguments)."""

import json
import socket
import struct
import subprocess
import time
import urllib.request

import pytest

import wire
from conftest import free_port, wait_for_port
from helpers_sec import mosquitto_passwd, unique
from mqttclient import V5, V311, Client, PacketTypes, props

pytestmark = pytest.mark.bastion_only


class Src(wire.Raw):
    """A raw connection from a chosen loopback source address, optionally to a given port."""

    def __init__(self, host, port, source="127.0.0.1", timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""

    def connack(self, client_id, version=4, username=None, password=None, timeout=5.0, prefix=b""):
        """CONNECT (after `prefix`); the CONNACK code, or None if the broker closed first."""
        try:
            self.send(prefix + wire.connect(client_id=client_id, version=version, username=username, password=password))
            p = self.read_packet(timeout)
        except OSError:
            return None
        if p is None:
            return None
        assert p[0] == 0x20, f"expected CONNACK, got {p[0]:#x}"
        return p[1][1]

    def disconnect(self):
        try:
            self.send(b"\xe0\x00")
        finally:
            self.close()

    def close(self):
        self.sock.close()


def session(broker, client_id, version=4, clean_end=True, source="127.0.0.1", **kw):
    c = Src(broker.host, broker.port, source)
    code = c.connack(client_id, version=version, **kw)
    if clean_end and code == 0:
        c.disconnect()
    else:
        c.close()
    return code


# ---------------------------------------------------------------- the embedded default

def test_a_shell_loop_of_mosquitto_pub_always_succeeds(embedded_default):
    b = embedded_default
    assert b.password
    failures = []
    for n in range(60):
        r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-u", "admin", "-P", b.password,
                            "-t", "plant/line1/temp", "-m", str(n)], capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            failures.append((n, r.stderr))
    assert failures == [], f"{len(failures)} of 60 runs refused: {failures[:3]}"


def test_a_thousand_short_sessions_from_one_address_are_all_accepted(embedded_default):
    b = embedded_default
    codes = [session(b, f"job-{i}", username="admin", password=b.password) for i in range(1000)]
    assert codes.count(0) == 1000, {c: codes.count(c) for c in set(codes)}


def test_a_conformance_style_run_of_refused_and_malformed_connects_leaves_the_broker_open(embedded_default):
    b = embedded_default
    garbage = [b"GET / HTTP/1.1\r\n\r\n", b"\x30\x02\x00\x00", b"\x10\xff\xff\xff\xff\x7f", b"\x10\x05\x00\x04MQT",
               wire.connect("bad", version=4, flags=0x01), wire.connect("", version=4, clean=False)]
    for i in range(300):
        c = Src(b.host, b.port)
        if i % 3 == 0:
            assert c.connack(f"anon-{i}") == 0x05          # anonymous is refused on the default
            c.close()
        elif i % 3 == 1:
            assert c.connack(f"wrong-{i}", username="admin", password="wrong") == 0x04
            c.close()
        else:
            try:
                c.send(garbage[i % len(garbage)])
                c.read_packet(2.0)
            except OSError:
                pass
            c.close()
    # Still serving: the address (loopback, trusted) was never banned.
    assert session(b, "after", username="admin", password=b.password) == 0
    assert session(b, "after-5", version=5, username="admin", password=b.password) == 0


# ---------------------------------------------------------------- flapping is per client id

def test_the_same_client_id_reconnecting_in_a_tight_loop_is_backed_off(broker):
    codes = []
    for _ in range(40):
        codes.append(session(broker, "twin", version=5, clean_end=False))
        if codes[-1] != 0:
            break
    # Thirty short sessions ended without DISCONNECT: the client id is told to slow down.
    assert codes[-1] == 0x9F, codes
    assert codes.count(0) == 30
    assert session(broker, "twin", version=4) == 0x03     # 3.1.1: server unavailable
    # Only that client id: others are served, from the same address.
    assert session(broker, "sibling", version=5) == 0


def test_sessions_ending_with_disconnect_never_count_as_flapping(broker):
    codes = [session(broker, "cron-job", version=5, clean_end=True) for _ in range(60)]
    assert codes == [0] * 60


# ---------------------------------------------------------------- address bans

def password_broker(broker_factory, tmp_path, config=None):
    pw = tmp_path / "passwd"
    mosquitto_passwd(pw, {"alice": "correct horse"})
    return broker_factory(anonymous=False, args=["--password-file", str(pw)], config=config or {})


def test_bad_passwords_ban_an_untrusted_address_only(broker_factory, tmp_path):
    b = password_broker(broker_factory, tmp_path)
    for i in range(30):
        code = session(b, f"guess{i}", source="127.0.0.2", username="alice", password="wrong")
        assert code in (0x04, 0x05, None), code
    # 127.0.0.2 is banned: even the right password is refused before MQTT.
    assert session(b, "attacker", source="127.0.0.2", username="alice", password="correct horse") is None
    # The host itself (trusted) and other addresses are not affected.
    assert session(b, "legit", username="alice", password="correct horse") == 0
    assert session(b, "legit3", source="127.0.0.3", username="alice", password="correct horse") == 0


def test_bad_passwords_from_loopback_are_not_banned_but_are_audited(broker_factory, tmp_path):
    audit = tmp_path / "audit.jsonl"
    b = password_broker(broker_factory, tmp_path, config={"audit": {"path": str(audit)}})
    for i in range(30):
        session(b, f"guess{i}", username="nobody", password="wrong")
    assert session(b, "legit", username="alice", password="correct horse") == 0
    deadline = time.monotonic() + 5
    events = []
    while time.monotonic() < deadline:
        events = [json.loads(l) for l in audit.read_text().splitlines()] if audit.exists() else []
        if any(e["event"] == "ban_suppressed" for e in events):
            break
        time.sleep(0.1)
    assert any(e["event"] == "ban_suppressed" and e["subject"] == "127.0.0.1" for e in events)
    assert any(e["event"] == "alert" and e["kind"] == "ban_suppressed" for e in events)
    assert not any(e["event"] == "ban" for e in events)


def test_with_trusted_networks_emptied_loopback_is_banned_too(broker_factory, tmp_path):
    b = password_broker(broker_factory, tmp_path, config={"limits": {"trusted_networks": []}})
    for i in range(30):
        session(b, f"guess{i}", username="alice", password="wrong")
    assert session(b, "attacker", username="alice", password="correct horse") is None


def test_protocol_violations_before_connect_ban_an_untrusted_address(broker):
    for _ in range(30):
        c = Src(broker.host, broker.port, source="127.0.0.4")
        try:
            c.send(b"GET / HTTP/1.1\r\n\r\n")
            c.read_packet(2.0)
        except OSError:
            pass
        c.close()
    time.sleep(0.2)
    assert session(broker, "after", source="127.0.0.4") is None
    assert session(broker, "loopback") == 0


# ---------------------------------------------------------------- visible drops

def metric(broker_admin, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker_admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith(name)}


def test_a_message_no_subscriber_can_keep_gets_0x97_and_is_counted(broker_factory):
    admin = free_port()
    acl = {"auth": {"acl": [{"all": True, "access": "readwrite", "topic": "drops/#"},
                            {"all": True, "access": "read", "topic": "$SYS/bastion/alerts"}]}}
    b = broker_factory(config={"limits": {"max_queued_messages": 2}, **acl}, args=["--admin-listen", f"http://127.0.0.1:{admin}"])
    sub = Client(b, protocol=V5, client_id=unique("slow"), clean=False,
                 properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    sub.subscribe("drops/t", qos=1)
    sub.disconnect()
    alerts = Client(b, protocol=V5)
    alerts.subscribe("$SYS/bastion/alerts", qos=0)
    pub = Client(b, protocol=V5)
    codes = []
    for i in range(4):
        info = pub.publish("drops/t", f"m{i}".encode(), qos=1)
        codes.append(pub.ack_reason(info))
    codes = [int(getattr(c, "value", c)) for c in codes]
    assert codes[:2] == [0, 0]
    assert codes[2:] == [0x97, 0x97]
    got = alerts.expect_message()
    alert = json.loads(got.payload)
    assert alert["kind"] == "session_dropping" and sub.client_id in alert["subject"]
    m = metric(admin, "bastion_messages_dropped_total")
    assert m['bastion_messages_dropped_total{reason="queue_full"}'] == 2


# ---------------------------------------------------------------- PROXY protocol

def proxy_v1(src, sport=40001, dst="127.0.0.1", dport=1883):
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def proxy_v2(src, sport=40001, command=1, extra=b""):
    sig = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
    addrs = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, 1883) + extra
    return sig + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(addrs)) + addrs


@pytest.fixture
def proxied(broker_factory, tmp_path):
    port, direct = free_port(), free_port()
    audit = tmp_path / "audit.jsonl"
    b = broker_factory(port=direct, config={
        "listeners": [{"url": f"mqtt://127.0.0.1:{direct}", "allow_anonymous": True},
                      {"url": f"mqtt://127.0.0.1:{port}", "allow_anonymous": True,
                       "proxy_protocol": {"trusted_sources": ["127.0.0.1"]}}],
        "bans": [{"address": "192.0.2.66"}],
        "audit": {"path": str(audit)},
        "limits": {"connect_timeout": 3},
    })
    b.proxy_port = port
    b.audit = audit
    wait_for_port(b.host, port, b.proc)
    return b


def proxied_connack(b, prefix, source="127.0.0.1", client_id=None):
    c = Src(b.host, b.proxy_port, source)
    code = c.connack(client_id or unique("px"), prefix=prefix, timeout=3)
    c.close()
    return code


@pytest.mark.parametrize("header", [proxy_v1("192.0.2.7"), proxy_v2("192.0.2.7")], ids=["v1", "v2"])
def test_a_proxy_header_from_a_trusted_source_names_the_client(proxied, header):
    cid = unique("px")
    assert proxied_connack(proxied, header, client_id=cid) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        recs = [json.loads(l) for l in proxied.audit.read_text().splitlines()] if proxied.audit.exists() else []
        accepted = [r for r in recs if r["event"] == "connection_accepted" and r["client_id"] == cid]
        if accepted:
            assert accepted[0]["remote_ip"] == "192.0.2.7"
            return
        time.sleep(0.1)
    pytest.fail("no connection_accepted record")


def test_the_address_a_proxy_names_is_the_one_bans_apply_to(proxied):
    assert proxied_connack(proxied, proxy_v1("192.0.2.66")) is None
    assert proxied_connack(proxied, proxy_v2("192.0.2.66")) is None
    assert proxied_connack(proxied, proxy_v1("192.0.2.67")) == 0


def test_a_proxy_header_from_an_untrusted_source_is_refused(proxied):
    assert proxied_connack(proxied, proxy_v1("192.0.2.7"), source="127.0.0.9") is None
    assert proxied_connack(proxied, proxy_v2("192.0.2.7"), source="127.0.0.9") is None
    # A direct client from there (no header) is served under its own address.
    assert proxied_connack(proxied, b"", source="127.0.0.9") == 0


def test_the_proxy_must_send_a_header(proxied):
    assert proxied_connack(proxied, b"") is None
    # v2 LOCAL (a health check) proceeds under the proxy's own address.
    assert proxied_connack(proxied, proxy_v2("0.0.0.0", command=0)) == 0


@pytest.mark.parametrize("bad", [
    b"PROXY TCP4 192.0.2.7 127.0.0.1 40001\r\n",                      # a field missing
    b"PROXY TCP4 999.0.2.7 127.0.0.1 40001 1883\r\n",                 # not an address
    b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 1883\n",                   # LF without CR
    b"PROXY TCP4 " + b"1" * 120 + b"\r\n",                            # longer than 107 bytes
    b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\xff\xff",  # v2 length 65535: oversize
    proxy_v2("192.0.2.7")[:20],                                        # v2 truncated
    b"PROXY TCP4 192.0.2.7",                                           # v1 truncated
], ids=["v1-fields", "v1-address", "v1-lf", "v1-long", "v2-oversize", "v2-truncated", "v1-truncated"])
def test_a_malformed_or_incomplete_proxy_header_closes_before_mqtt(proxied, bad):
    c = Src(proxied.host, proxied.proxy_port, timeout=8)
    c.send(bad)
    if bad.endswith(b"\r\n") or bad.endswith(b"\n") or len(bad) > 100:
        # Complete (but wrong) headers: closed at once, no MQTT byte read.
        c.send(wire.connect("px", version=4))
    assert c.read_packet(8) is None
    c.close()
