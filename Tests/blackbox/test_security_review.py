"""Findings of the security review: browser origins on WebSocket listeners, certificate serials,
Unicode identities, secret files others can read, retained and subscription budgets."""

import base64
import os
import socket
import subprocess

import pytest

import wire
from conftest import BASTION_BIN, free_port, wait_for_port

TIMEOUT = 10


def ws_handshake(port, origin=None):
    """The HTTP status of an MQTT WebSocket upgrade request, with or without an Origin header."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = (f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n")
        if origin:
            headers += f"Origin: {origin}\r\n"
        s.sendall((headers + "\r\n").encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = s.recv(1024)
            if not chunk:
                break
            reply += chunk
        return int(reply.split(b" ", 2)[1])


def ws_broker(broker_factory, **listener):
    mqtt, ws = free_port(), free_port()
    b = broker_factory(port=mqtt, anonymous=False, config={"listeners": [{"url": f"mqtt://127.0.0.1:{mqtt}", "allow_anonymous": True},
                                                        {"url": f"ws://127.0.0.1:{ws}/mqtt", **listener}]})
    wait_for_port("127.0.0.1", ws, b.proc)  # the broker is waited for on its first listener only
    return b, ws


def test_an_anonymous_websocket_listener_refuses_browser_pages_by_default(broker_factory):
    b, ws = ws_broker(broker_factory, allow_anonymous=True)
    assert ws_handshake(ws, origin="http://evil.example") == 403
    assert ws_handshake(ws, origin="null") == 403  # sandboxed frames and file: pages
    assert ws_handshake(ws) == 101  # not a browser: no Origin header
    assert "evil.example" in b.log_text()


def test_allowed_origins_admit_only_the_listed_pages(broker_factory):
    _, ws = ws_broker(broker_factory, allow_anonymous=True, allowed_origins=["https://scada.example:8443"])
    assert ws_handshake(ws, origin="https://SCADA.example:8443") == 101
    assert ws_handshake(ws, origin="https://scada.example") == 403
    assert ws_handshake(ws, origin="https://evil.example") == 403


def test_a_listener_that_authenticates_accepts_any_origin(broker_factory):
    _, ws = ws_broker(broker_factory, allow_anonymous=False)
    assert ws_handshake(ws, origin="https://dashboard.example") == 101


def test_an_allowed_origin_that_is_not_an_origin_is_a_config_error(tmp_path):
    config = tmp_path / "bastion.yaml"
    config.write_text(f"listeners:\n  - url: ws://127.0.0.1:{free_port()}/mqtt\n    allowed_origins: [\"https://x.example/path\"]\n")
    result = subprocess.run([BASTION_BIN, "serve", "--config", str(config), "--data-dir", str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2 and "allowed_origins[0]" in result.stderr


def test_certificate_serials_fit_twenty_octets(tmp_path):
    # RFC 5280 4.1.2.2: positive, at most 20 octets. A random 20-byte value with its top bit set
    # needs a 21st (sign) octet; eight certificates make hitting that by chance near certain.
    pki = tmp_path / "pki"

    def certs(*args):
        result = subprocess.run([BASTION_BIN, "certs", *args, "--dir", str(pki)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    certs("init")
    certs("server", "--san", "localhost")
    for i in range(6):
        certs("client", f"device{i}")
    files = [pki / "ca.pem", pki / "server.pem", *sorted((pki / "clients").glob("*.pem"))]
    assert len(files) == 8
    for cert in files:
        der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"], capture_output=True, timeout=10).stdout
        serial = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-serial"], capture_output=True, text=True,
                                timeout=10).stdout.strip().split("=", 1)[1]
        octets = bytes.fromhex(serial if len(serial) % 2 == 0 else "0" + serial)
        # openssl prints the magnitude; DER adds a zero octet when its top bit is set.
        encoded = len(octets) + (1 if octets[0] & 0x80 else 0)
        assert der and encoded <= 20, f"{cert.name}: serial {serial} takes {encoded} octets"


# ---------------------------------------------------------------- Unicode client ids

NFC = "caf\u00e9-1"       # é precomposed
NFD = "cafe\u0301-1"      # e + combining acute accent: canonically the same name


def connack_code(broker, client_id):
    r = wire.Raw(broker, version=5)
    code = r.connect(client_id=client_id, expect_rc=None).rc
    r.close()
    return code


def test_canonically_equal_client_ids_are_one_name_to_the_allowlist(broker_factory):
    # The pattern's bytes are a prefix of the NFD spelling but not of the NFC one: matched as
    # bytes, NFD would pass where its NFC twin fails. Both are the same name, so both fail.
    b = broker_factory(config={"auth": {"allowed_clients": {"*": ["cafe*"]}}})
    assert connack_code(b, NFC) >= 0x80
    assert connack_code(b, NFD) >= 0x80
    assert connack_code(b, "cafeteria") == 0


def test_canonically_equal_client_ids_share_one_session(broker_factory):
    b = broker_factory()
    first = wire.Raw(b, version=5)
    first.connect(client_id=NFC)
    second = wire.Raw(b, version=5)
    second.connect(client_id=NFD)
    # Taking over is allowed for the same identity (both anonymous here) and the first is told so.
    wire.assert_disconnected(first, 0x8E)  # Session taken over
    second.close()


# ---------------------------------------------------------------- retained budget counts topics

def test_retained_topics_count_against_max_retained_bytes(broker_factory):
    # One-byte payloads on 50 KB topics: the topics are what a flood of retained messages pins.
    b = broker_factory(config={"limits": {"max_retained_bytes": 1024 * 1024, "max_retained_bytes_per_identity": 1024 * 1024,
                                          "max_topic_length": 65535,
                                          "max_packet_size": 256 * 1024}})
    r = wire.Raw(b, version=5)
    r.connect(client_id=wire.unique("retain"))
    codes = [r.pub(f"{'t' * 50_000}/{i}", b"x", qos=1, retain=True).rc for i in range(25)]
    stored = sum(1 for c in codes if c < 0x80)  # 0x10 "no matching subscribers" is success too
    assert 15 <= stored <= 20, codes  # 1 MiB / (50 KB topic + entry) ≈ 20
    assert set(codes[stored:]) == {0x97}, codes  # Quota exceeded, and from then on
    r.close()


# ---------------------------------------------------------------- secret files others can read

def test_a_password_file_others_can_read_is_made_private_with_a_warning(broker_factory, tmp_path):
    from helpers_sec import mosquitto_passwd
    pw = mosquitto_passwd(tmp_path / "passwd", {"alice": "correct horse"})
    os.chmod(pw, 0o644)
    b = broker_factory(anonymous=False, args=["--password-file", str(pw)])
    assert os.stat(pw).st_mode & 0o777 == 0o600
    assert "made it private" in b.log_text()
    r = wire.Raw(b, version=5)
    r.connect(client_id="alice-1", username="alice", password=b"correct horse")
    r.close()


# ---------------------------------------------------------------- subscription memory

@pytest.mark.parametrize("version,refused", [(5, 0x8F), (4, 0x80)], ids=["v5", "v311"])
def test_filters_longer_than_the_default_limit_are_refused(broker, version, refused):
    r = wire.Raw(broker, version=version)
    r.connect(client_id=wire.unique("filters"))
    fits, too_long = "f/" + "x" * 4094, "f/" + "x" * 5000
    assert r.sub([(fits, 1), (too_long, 1)]).codes == [1, refused]
    r.close()


def test_a_session_holds_at_most_a_mebibyte_of_filters_by_default(broker):
    r = wire.Raw(broker, version=5)
    r.connect(client_id=wire.unique("filters"))
    codes = []
    for batch in range(6):  # 6 × 50 filters of ~4 KB (each SUBSCRIBE under 256 KiB): 1 MiB ends in the sixth
        codes += r.sub([(f"b{batch}/{i}/" + "x" * 4000, 0) for i in range(50)]).codes
    granted = codes.count(0)
    assert 250 <= granted <= 262, granted
    assert set(codes[granted:]) == {0x97}
    r.close()


# ---------------------------------------------------------------- password-hashing pool fairness

def test_a_flood_of_wrong_passwords_does_not_lock_out_a_legitimate_user(broker_factory, tmp_path):
    # Each unknown user costs a full KDF (`bastion passwd` hashes: 50,000 iterations, tens of ms on
    # the one default hashing thread): 384 of them from 32 addresses, none past a ban threshold,
    # are seconds of hashing. Addresses take turns and, under contention, each keeps only a few
    # checks waiting (the rest are shed with 0x89 at once), so a user from another address is
    # answered after a few turns — not shed, and not after the whole backlog.
    pw = tmp_path / "passwd"
    made = subprocess.run([BASTION_BIN, "passwd", "-c", "-b", str(pw), "alice", "correct horse"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    b = broker_factory(anonymous=False, args=["--password-file", str(pw)])
    flood = []
    try:
        for i in range(32):
            for j in range(12):
                s = socket.socket()
                s.bind((f"127.0.0.{i + 2}", 0))
                s.connect((b.host, b.port))
                s.sendall(wire.connect(client_id=f"x{i}-{j}", version=5, username=f"nobody-{i}-{j}", password=b"wrong"))
                flood.append(s)
        r = wire.Raw(b, version=5)
        r.connect(client_id="alice-1", username="alice", password=b"correct horse")  # CONNACK 0, not 0x89
        r.close()
        busy = 0
        for s in flood:
            s.settimeout(0.05)
            try:
                data = s.recv(8)
            except OSError:
                continue
            busy += data[:1] == b"\x20" and len(data) >= 4 and data[3] == 0x89
            if busy:
                break
        assert busy > 0  # the flooding addresses' excess was shed, not queued
    finally:
        for s in flood:
            s.close()


# ---------------------------------------------------------------- retained quota per identity

def test_one_account_cannot_take_the_whole_retained_quota(broker_factory, tmp_path):
    # Each identity gets a quarter of max_retained_messages by default.
    pw = tmp_path / "passwd"
    for i, user in enumerate(["mallory", "alice"]):
        made = subprocess.run([BASTION_BIN, "passwd", *(["-c"] if i == 0 else []), "-b", str(pw), user, "pw-" + user],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
    b = broker_factory(anonymous=False, args=["--password-file", str(pw)], config={"limits": {"max_retained_messages": 40}})
    mallory = wire.Raw(b, version=5)
    mallory.connect(client_id="m-1", username="mallory", password=b"pw-mallory")
    codes = [mallory.pub(f"m/{i}", b"x", qos=1, retain=True).rc for i in range(15)]
    assert [c < 0x80 for c in codes] == [True] * 10 + [False] * 5, codes
    assert set(codes[10:]) == {0x97}
    alice = wire.Raw(b, version=5)
    alice.connect(client_id="a-1", username="alice", password=b"pw-alice")
    assert alice.pub("a/status", b"online", qos=1, retain=True).rc < 0x80
    mallory.close()
    alice.close()
