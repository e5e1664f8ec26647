"""Sessions and client-id rights belong to the identity that owns them, and the failure tracker can
neither lock a user out nor grow with what an unauthenticated client sends. Two ordinary accounts,
`alice` and `mallory`, each with only their own prefix; otherwise defaults."""

import os
import socket
import time
import uuid

import pytest

import wire
from helpers_sec import Secured, close_quietly, reason, suback, unique
from mqttclient import V5, V311, Client, PacketTypes, props

pytestmark = pytest.mark.bastion_only

USERS = {"alice": "alice-pw", "mallory": "mallory-pw", "gw": "gw-pw"}
ACL = """\
user alice
topic readwrite alice/#
topic readwrite devices/alice-dev/#

user mallory
topic readwrite mallory/#
topic deny plant/line1/#

user gw
topic read gw/#

pattern readwrite devices/%c/#
"""
CONFIG = {"auth": {"acl": [{"client_id": "line1-gw-01", "access": "publish", "topic": "plant/line1/#"}],
                   "allowed_clients": {"gw": ["line1-gw-*"]}}}
REFUSED = {V311: 0x05, V5: 0x87}
PERSIST = {"properties": props(PacketTypes.CONNECT, SessionExpiryInterval=3600)}


@pytest.fixture
def site(tmp_path):
    s = Secured(tmp_path, USERS, acl=ACL, config=CONFIG)
    yield s
    s.stop()


def persistent(site, user, client_id, version):
    kw = dict(PERSIST) if version == V5 else {}
    return site.client(user, protocol=version, client_id=client_id, clean=False, **kw)


def code(site, version, client_id, user, clean=True):
    r = wire.Raw(site.broker)
    r.send(wire.connect(client_id, version=4 if version == V311 else 5, clean=clean, username=user, password=USERS[user]))
    p = r.read_packet(5.0)
    r.sock.close()
    assert p is not None, "no CONNACK"
    return p[1][1]


# ---------------------------------------------------------------- 1. session hijack by client id

@pytest.mark.parametrize("version", [V311, V5], ids=["3.1.1", "5.0"])
def test_another_account_cannot_resume_take_over_or_wipe_a_session(site, version):
    cid = unique("alice-dev")
    alice = persistent(site, "alice", cid, version)
    alice.subscribe("alice/inbox", qos=1)
    alice.disconnect()
    feeder = site.client("alice")
    for i in range(3):
        feeder.publish("alice/inbox", f"m{i}".encode(), qos=1).wait_for_publish(5)
    # Resume, then clean start: both refused before the session is touched.
    assert code(site, version, cid, "mallory", clean=False) == REFUSED[version]
    assert code(site, version, cid, "mallory", clean=True) == REFUSED[version]
    back = persistent(site, "alice", cid, version)
    assert [back.expect_message().payload for _ in range(3)] == [b"m0", b"m1", b"m2"]


@pytest.mark.parametrize("version", [V311, V5], ids=["3.1.1", "5.0"])
def test_another_account_cannot_close_a_live_connection_or_fire_its_will(site, version):
    cid = unique("alice-dev")
    watcher = site.client("alice")
    watcher.subscribe("alice/will", qos=1)
    alice = site.client("alice", protocol=version, client_id=cid,
                        will={"topic": "alice/will", "payload": b"gone", "qos": 1})
    assert code(site, version, cid, "mallory") == REFUSED[version]
    watcher.expect_no_message(0.5)
    # alice is still connected and served.
    alice.subscribe("alice/echo", qos=1)
    watcher.publish("alice/echo", b"still here", qos=1)
    assert alice.expect_message().payload == b"still here"


def test_the_owner_takes_over_its_own_stale_connection(site):
    cid = unique("alice-dev")
    old = persistent(site, "alice", cid, V5)
    new = persistent(site, "alice", cid, V5)
    old.expect_disconnect()
    new.subscribe("alice/x", qos=1)


def test_a_refused_hijack_is_audited(tmp_path):
    audit = tmp_path / "audit.jsonl"
    s = Secured(tmp_path, USERS, acl=ACL, config=dict(CONFIG, audit={"path": str(audit)}))
    try:
        cid = unique("alice-dev")
        persistent(s, "alice", cid, V5).disconnect()
        assert code(s, V5, cid, "mallory") == 0x87
        import json
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            recs = [json.loads(l) for l in audit.read_text().splitlines()] if audit.exists() else []
            hit = [r for r in recs if r["event"] == "session_hijack_refused"]
            if hit:
                assert hit[0]["client_id"] == cid and hit[0]["identity"] == "user:mallory" and hit[0]["owner"] == "user:alice"
                return
            time.sleep(0.1)
        pytest.fail("no session_hijack_refused record")
    finally:
        s.stop()


def test_ownership_survives_a_restart(site):
    cid = unique("alice-dev")
    persistent(site, "alice", cid, V5).disconnect()
    site.broker.kill9()
    site.broker.start()
    assert code(site, V5, cid, "mallory", clean=False) == 0x87
    assert code(site, V5, cid, "alice", clean=False) == 0


def test_a_fleet_of_persistent_sessions_survives_another_account_trying_every_client_id(site):
    ids = [f"dev-{i:04d}" for i in range(1000)]
    for cid in ids:
        r = wire.Raw(site.broker)
        r.send(wire.connect(cid, version=4, clean=False, username="alice", password=USERS["alice"]))
        assert r.read_packet(5)[1][1] == 0
        r.send(b"\xe0\x00")
        r.sock.close()
    for cid in ids:
        r = wire.Raw(site.broker)
        r.send(wire.connect(cid, version=4, clean=True, username="mallory", password=USERS["mallory"]))
        assert r.read_packet(5)[1][1] == 0x05, cid
        r.sock.close()
    for cid in ids[::50]:
        r = wire.Raw(site.broker)
        r.send(wire.connect(cid, version=4, clean=False, username="alice", password=USERS["alice"]))
        first, body = r.read_packet(5)
        assert body == b"\x01\x00", f"{cid}: session lost ({body!r})"   # session present, accepted
        r.sock.close()


# ---------------------------------------------------------------- 2. rights taken with a chosen client id

def test_a_client_id_rule_does_not_beat_a_user_deny(site):
    mallory = site.client("mallory", client_id="line1-gw-01")
    assert reason(mallory.ack_reason(mallory.publish("plant/line1/valve", b"open", qos=1))) == 0x87
    close_quietly(mallory)
    gw = site.client("gw", client_id="line1-gw-01")             # bound by allowed_clients
    assert reason(gw.ack_reason(gw.publish("plant/line1/valve", b"open", qos=1))) < 0x80


def test_a_client_id_pattern_grants_nothing_to_a_chosen_client_id(site):
    mallory = site.client("mallory", client_id="alice-dev")
    assert suback(mallory, "devices/alice-dev/#") == 0x87


# ---------------------------------------------------------------- 3. no lock-out without a password

def password_less(broker, user, source):
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect((broker.host, broker.port))
    s.sendall(wire.connect(unique("x"), version=4, username=user))
    try:
        s.recv(4)
    except OSError:
        pass
    s.close()


def test_password_less_connects_do_not_lock_a_user_out(site):
    for i in range(21):
        password_less(site.broker, "alice", f"127.0.0.{11 + i % 3}")
    assert code(site, V311, unique("alice"), "alice") == 0
    # Real wrong passwords from those sources throttle alice there, not from a clean source.
    for i in range(21):
        r = wire.Raw(site.broker)
        r.send(wire.connect(unique("g"), version=4, username="alice", password="guess"))
        r.read_packet(5)
        r.sock.close()
    assert code(site, V311, unique("alice"), "alice") == 0


# ---------------------------------------------------------------- 4. bounded memory before authentication

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_long_user_names_do_not_grow_the_failure_tracker(site):
    pid = site.broker.proc.pid
    name = lambda i: uuid.uuid4().hex * 40 + str(i)  # 1.3 KB: over the 256-byte cap, refused before any lookup
    for i in range(1000):                             # warm up
        password_less(site.broker, name(i), f"127.0.{1 + i % 200}.{1 + i // 200 % 200}")
    before = rss_kib(pid)
    for i in range(10000):
        password_less(site.broker, name(i), f"127.1.{i % 250}.{1 + i // 250 % 250}")
    grown = rss_kib(pid) - before
    # 10,000 distinct user names (13 MB sent as names) from 10,000 addresses: what stays is the
    # fixed-size address counters (under 16 MiB in all), not the names.
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB"


def test_the_admin_api_shows_who_owns_each_session(tmp_path):
    import json
    import urllib.request
    from conftest import free_port
    admin = free_port()
    s = Secured(tmp_path, USERS, acl=ACL, config=CONFIG, args=["--admin-listen", f"http://127.0.0.1:{admin}"])
    try:
        cid = unique("alice-dev")
        persistent(s, "alice", cid, V5).disconnect()
        live = s.client("mallory")
        token = (s.broker.data_dir / "admin-token").read_text().strip()
        request = urllib.request.Request(f"http://127.0.0.1:{admin}/sessions", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            sessions = {e["client_id"]: e for e in json.load(r)}
        assert sessions[cid] == {"client_id": cid, "owner": "user:alice", "connected": False, "persistent": True}
        assert sessions[live.client_id]["owner"] == "user:mallory" and sessions[live.client_id]["connected"]
    finally:
        s.stop()
