"""Transport security against real peers: openssl s_client, mosquitto_pub/sub, paho-mqtt over TLS
(TCP and WebSocket), testssl.sh. Certificates come from `bastion certs`; the odd ones (expired, no
clientAuth usage, foreign CA) are made with `openssl` from the same or another key."""

import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
import yaml

from conftest import BASTION_BIN, Broker, free_port

pytestmark = pytest.mark.bastion_only

TIMEOUT = 10


# --------------------------------------------------------------------------------------------
# PKI fixtures


def run(cmd, check=True, timeout=60, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def certs(*args):
    return run([BASTION_BIN, "certs", *args])


def serial_of(cert):
    return run(["openssl", "x509", "-in", str(cert), "-noout", "-serial"]).stdout.strip().split("=", 1)[1]


def openssl_ca_sign(directory, ca_cert, ca_key, name, ext_lines, start=None, end=None, days=30):
    """Issues a P-256 certificate with OpenSSL (for certificates `bastion certs` refuses to make)."""
    directory = pathlib.Path(directory)
    key = directory / f"{name}.key"
    csr = directory / f"{name}.csr"
    cert = directory / f"{name}.pem"
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)])
    os.chmod(key, 0o600)
    run(["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-out", str(csr)])
    ext = directory / f"{name}.ext"
    ext.write_text("\n".join(["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", *ext_lines]) + "\n")
    if start is None:
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-set_serial", str(int(uuid.uuid4().int >> 64)), "-days", str(days), "-extfile", str(ext), "-out", str(cert)])
    else:
        # `openssl ca` is the only OpenSSL 3.0 command that takes explicit validity dates.
        db = directory / f"{name}-db"
        db.mkdir()
        (db / "index.txt").write_text("")
        (db / "serial").write_text(f"{(uuid.uuid4().int >> 65) | 1 << 62:016X}\n")
        cnf = db / "ca.cnf"
        cnf.write_text(f"""[ca]
default_ca = x
[x]
database = {db}/index.txt
serial = {db}/serial
new_certs_dir = {db}
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
""")
        run(["openssl", "ca", "-batch", "-notext", "-config", str(cnf), "-cert", str(ca_cert), "-keyfile", str(ca_key),
             "-in", str(csr), "-out", str(cert), "-startdate", start, "-enddate", end, "-extfile", str(ext)])
    return cert, key


class PKI:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.dir = self.root / "pki"
        certs("init", "--dir", str(self.dir), "--crl-url", "http://127.0.0.1:9/crl.pem")
        certs("server", "--dir", str(self.dir), "--san", "localhost", "--san", "127.0.0.1", "--san", "::1")
        self.ca = self.dir / "ca.pem"
        self.ca_key = self.dir / "ca.key"
        self.server_cert = self.dir / "server.pem"
        self.server_key = self.dir / "server.key"
        self.crl = self.dir / "crl.pem"
        for name in ("alice", "bob", "mallory"):
            certs("client", name, "--dir", str(self.dir))
        certs("client", "carol", "--dir", str(self.dir), "--san", "email:carol@plant.example")
        certs("revoke", serial_of(self.client("mallory")[0]), "--dir", str(self.dir))
        odd = self.root / "odd"
        odd.mkdir()
        self.expired = openssl_ca_sign(odd, self.ca, self.ca_key, "expired", ["extendedKeyUsage=clientAuth"],
                                       start="20200101000000Z", end="20200201000000Z")
        self.server_only = openssl_ca_sign(odd, self.ca, self.ca_key, "serveronly", ["extendedKeyUsage=serverAuth"])
        foreign = self.root / "foreign"
        certs("init", "--dir", str(foreign), "--cn", "Bastion CA")  # same name, other key
        certs("client", "alice", "--dir", str(foreign))
        self.foreign = (foreign / "clients" / "alice.pem", foreign / "clients" / "alice.key")

    def client(self, name):
        return self.dir / "clients" / f"{name}.pem", self.dir / "clients" / f"{name}.key"

    def der_crl(self):
        der = self.root / "crl.der"
        run(["openssl", "crl", "-in", str(self.crl), "-outform", "DER", "-out", str(der)])
        return der


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


# --------------------------------------------------------------------------------------------
# Broker fixtures


class TLSBroker(Broker):
    """A broker whose listeners all come from the config file (so each may have its own `tls:`).
    `listeners` maps a name to a listener config with a `{port}` placeholder in its URL."""

    def __init__(self, workdir, listeners, config=None, args=None):
        self.ports = {name: free_port() for name in listeners}
        self.listener_configs = []
        for name, listener in listeners.items():
            listener = dict(listener)
            listener["url"] = listener["url"].format(port=self.ports[name])
            self.listener_configs.append(listener)
        first = next(iter(self.ports.values()))
        super().__init__(workdir, config=config or {}, args=args, anonymous=False, port=first)

    def command(self):
        config = dict(self.config)
        config["listeners"] = self.listener_configs
        # testssl.sh opens hundreds of failing handshakes from loopback: the defaults must take it
        # (loopback is a trusted network, never banned automatically).
        path = self.workdir / "bastion.yaml"
        path.write_text(yaml.safe_dump(config))
        return [BASTION_BIN, "serve", "--config", str(path), "--data-dir", str(self.data_dir),
                "--log-level", "debug"] + self.args

    def wait_for_log(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return True
            time.sleep(0.05)
        return False


def tls_section(pki, **extra):
    section = {"cert": str(pki.server_cert), "key": str(pki.server_key), "ca": str(pki.ca)}
    section.update(extra)
    return section


ACL = {"acl": [
    {"certificate": "alice", "access": "readwrite", "topic": "alice/#"},
    {"certificate": "carol@plant.example", "access": "readwrite", "topic": "carol/#"},
    {"certificate": "bob", "access": "readwrite", "topic": "bob/#"},
]}


@pytest.fixture
def tls_broker(tmp_path, pki):
    """mqtts (mutual TLS, CRL), wss (mutual TLS) and an mqtts listener with optional client certs."""
    started = []

    def make(listeners=None, config=None):
        listeners = listeners or {
            "mtls": {"url": "mqtts://127.0.0.1:{port}", "tls": tls_section(pki, crl=[str(pki.crl)], require_certificate=True)},
            "wss": {"url": "wss://127.0.0.1:{port}/mqtt", "tls": tls_section(pki, crl=[str(pki.crl)], require_certificate=True)},
            "open": {"url": "mqtts://127.0.0.1:{port}", "tls": tls_section(pki)},
        }
        b = TLSBroker(tmp_path / f"broker{len(started)}", listeners, config=config or {"auth": ACL})
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


# --------------------------------------------------------------------------------------------
# Clients


def s_client(port, *args, input_text="", cert=None):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *args]
    if cert:
        cmd += ["-cert", str(cert[0]), "-key", str(cert[1])]
    return run(cmd, check=False, input=input_text, timeout=TIMEOUT + 5)


def handshake_ok(result):
    out = result.stdout
    return result.returncode == 0 and "Cipher is (NONE)" not in out and "New, TLSv1." in out


def paho_client(pki, cert, port, transport="tcp", alpn=None, client_id=None, protocol=mqtt.MQTTv311):
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                    client_id=client_id or f"t-{uuid.uuid4().hex[:8]}", transport=transport, protocol=protocol)
    if transport == "websockets":
        c.ws_set_options(path="/mqtt")
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    if alpn:
        context.set_alpn_protocols(alpn)
    c.tls_set_context(context)
    return c


class Session:
    """Blocking helpers on a paho client: connect, subscribe, publish, wait for a message."""

    def __init__(self, client):
        self.c = client
        self.connected = threading.Event()
        self.connack = None
        self.subacks = []
        self.suback_event = threading.Event()
        self.messages = []
        self.message_event = threading.Event()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.connack = reason
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reasons, properties):
        self.subacks.append(reasons)
        self.suback_event.set()

    def _on_message(self, client, userdata, message):
        self.messages.append((message.topic, message.payload))
        self.message_event.set()

    def connect(self, port):
        self.c.connect("localhost", port, 30)
        self.c.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"
        assert not self.connack.is_failure, f"CONNACK {self.connack}"
        return self

    def subscribe(self, topic):
        self.suback_event.clear()
        self.c.subscribe(topic, qos=1)
        assert self.suback_event.wait(TIMEOUT), "no SUBACK"
        return self.subacks[-1][0]

    def wait_message(self):
        assert self.message_event.wait(TIMEOUT), "no message"
        return self.messages[-1]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def connect_fails(pki, cert, port, transport="tcp"):
    """True when the TLS connection is refused (the handshake, or the first read after a TLS 1.3
    handshake, fails and no CONNACK arrives)."""
    c = paho_client(pki, cert, port, transport=transport)
    s = Session(c)
    try:
        c.connect("localhost", port, 30)
    except (ssl.SSLError, OSError, ConnectionError):
        return True
    c.loop_start()
    got = s.connected.wait(3)
    c.loop_stop()
    try:
        c.disconnect()
    except Exception:
        pass
    return not got or s.connack.is_failure


# --------------------------------------------------------------------------------------------
# Protocol versions and cipher suites (openssl s_client)


def test_tls_versions_and_ciphers(tls_broker, pki):
    b = tls_broker()
    port = b.ports["open"]
    ca = ["-CAfile", str(pki.ca), "-verify_return_error"]
    assert not handshake_ok(s_client(port, "-tls1_1", *ca))
    assert not handshake_ok(s_client(port, "-tls1", *ca))
    r12 = s_client(port, "-tls1_2", *ca)
    assert handshake_ok(r12), r12.stdout
    assert "Verify return code: 0 (ok)" in r12.stdout
    r13 = s_client(port, "-tls1_3", *ca)
    assert handshake_ok(r13), r13.stdout
    # Only ECDHE key exchange with AEAD ciphers.
    for cipher in ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                   "ECDHE-ECDSA-AES256-SHA"]:
        assert not handshake_ok(s_client(port, "-tls1_2", "-cipher", cipher, *ca)), cipher
    good = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", *ca)
    assert handshake_ok(good)
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in good.stdout
    assert b.wait_for_log("reason=protocol_version")


def test_tls13_only_listener(tls_broker, pki):
    b = tls_broker({"only13": {"url": "mqtts://127.0.0.1:{port}", "tls": tls_section(pki, min_version="1.3")}})
    port = b.ports["only13"]
    assert not handshake_ok(s_client(port, "-tls1_2", "-CAfile", str(pki.ca)))
    assert handshake_ok(s_client(port, "-tls1_3", "-CAfile", str(pki.ca)))


# --------------------------------------------------------------------------------------------
# Clients with certificates


def test_mosquitto_pub_sub_with_client_certificates(tls_broker, pki):
    b = tls_broker()
    port = b.ports["mtls"]
    alice = pki.client("alice")
    tls = ["-h", "localhost", "-p", str(port), "--cafile", str(pki.ca), "--cert", str(alice[0]), "--key", str(alice[1])]
    sub = subprocess.Popen(["mosquitto_sub", *tls, "-t", "alice/#", "-C", "1", "-W", str(TIMEOUT), "-v"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        # Retained, so the subscriber gets it whether or not its SUBSCRIBE was processed first.
        run(["mosquitto_pub", *tls, "-t", "alice/temp", "-m", "21.5", "-q", "1", "-r"])
        out, err = sub.communicate(timeout=TIMEOUT + 5)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.strip() == "alice/temp 21.5", err


def test_mosquitto_pub_without_certificate_is_refused(tls_broker, pki):
    b = tls_broker()
    r = run(["mosquitto_pub", "-h", "localhost", "-p", str(b.ports["mtls"]), "--cafile", str(pki.ca),
             "-t", "alice/x", "-m", "x"], check=False, timeout=TIMEOUT + 5)
    assert r.returncode != 0
    assert b.wait_for_log("reason=missing_certificate")


@pytest.mark.parametrize("transport,listener", [("tcp", "mtls"), ("websockets", "wss")])
def test_paho_tls_roundtrip(tls_broker, pki, transport, listener):
    b = tls_broker()
    s = Session(paho_client(pki, pki.client("alice"), b.ports[listener], transport=transport)).connect(b.ports[listener])
    try:
        assert s.subscribe("alice/#") == 1
        s.c.publish("alice/line1", b"hello", qos=1)
        assert s.wait_message() == ("alice/line1", b"hello")
    finally:
        s.close()


def test_certificate_rule(tls_broker, pki):
    """`{certificate: NAME, ...}` grants the client whose verified certificate carries NAME, and
    nobody else: a client with another certificate is refused the topic, and a deny for that
    certificate beats a grant to every client (subject rank before filter width)."""
    b = tls_broker(config={"auth": {"acl": [
        {"certificate": "alice", "access": "publish", "topic": "devices/9/#"},
        {"certificate": "bob", "access": "read", "topic": "devices/#"},
        {"all": True, "access": "publish", "topic": "shared/#"},
        {"certificate": "carol", "access": "deny", "topic": "shared/#"},
        {"certificate": "bob", "access": "read", "topic": "shared/#"},
    ]}})
    port = b.ports["mtls"]
    reader = Session(paho_client(pki, pki.client("bob"), port)).connect(port)
    alice = Session(paho_client(pki, pki.client("alice"), port)).connect(port)
    carol = Session(paho_client(pki, pki.client("carol"), port)).connect(port)
    try:
        assert reader.subscribe("devices/#") == 1
        assert reader.subscribe("shared/#") == 1
        # Carol's publishes are refused (3.1.1: dropped), so the reader's first messages are
        # Alice's, in order.
        carol.c.publish("devices/9/forged", b"x", qos=1).wait_for_publish(TIMEOUT)
        carol.c.publish("shared/forged", b"x", qos=1).wait_for_publish(TIMEOUT)
        alice.c.publish("devices/9/temp", b"21", qos=1).wait_for_publish(TIMEOUT)
        assert reader.wait_message() == ("devices/9/temp", b"21")
        reader.message_event.clear()
        alice.c.publish("shared/ok", b"y", qos=1).wait_for_publish(TIMEOUT)
        assert reader.wait_message() == ("shared/ok", b"y")
        assert [t for t, _ in reader.messages] == ["devices/9/temp", "shared/ok"]
    finally:
        for s in (reader, alice, carol):
            s.close()


def test_one_port_serves_raw_mqtt_and_websocket_by_alpn(tls_broker, pki):
    b = tls_broker()
    alice = pki.client("alice")
    # A WebSocket client (ALPN http/1.1) on the mqtts listener ...
    ws = Session(paho_client(pki, alice, b.ports["mtls"], transport="websockets", alpn=["http/1.1"])).connect(b.ports["mtls"])
    # ... and a raw MQTT client (ALPN mqtt) on the wss listener.
    raw = Session(paho_client(pki, alice, b.ports["wss"], transport="tcp", alpn=["mqtt"])).connect(b.ports["wss"])
    try:
        assert ws.subscribe("alice/alpn") == 1
        raw.c.publish("alice/alpn", b"both", qos=1)
        assert ws.wait_message() == ("alice/alpn", b"both")
    finally:
        ws.close()
        raw.close()
    r = run(["mosquitto_pub", "-h", "localhost", "-p", str(b.ports["wss"]), "--cafile", str(pki.ca),
             "--cert", str(alice[0]), "--key", str(alice[1]), "--tls-alpn", "mqtt", "-t", "alice/a", "-m", "x"], check=False)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("kind,reason", [
    ("revoked", "revoked"),
    ("foreign", "unknown_ca"),
    ("expired", "expired"),
    ("missing", "missing_certificate"),
    ("server_only", "no_client_auth"),
])
def test_refused_client_certificates(tls_broker, pki, kind, reason):
    b = tls_broker()
    cert = {
        "revoked": pki.client("mallory"),
        "foreign": pki.foreign,
        "expired": pki.expired,
        "missing": None,
        "server_only": pki.server_only,
    }[kind]
    for listener, transport in (("mtls", "tcp"), ("wss", "websockets")):
        assert connect_fails(pki, cert, b.ports[listener], transport=transport), f"{kind} accepted on {listener}"
    assert b.wait_for_log(f"reason={reason}"), b.log_text()[-3000:]
    assert "TLS handshake rejected" in b.log_text()
    # Other clients are unaffected.
    s = Session(paho_client(pki, pki.client("alice"), b.ports["mtls"])).connect(b.ports["mtls"])
    s.close()


def test_crl_in_der_form(tls_broker, pki):
    der = pki.der_crl()
    b = tls_broker({"der": {"url": "mqtts://127.0.0.1:{port}",
                            "tls": tls_section(pki, crl=[str(der)], require_certificate=True)}})
    assert connect_fails(pki, pki.client("mallory"), b.ports["der"])
    assert b.wait_for_log("reason=revoked")
    s = Session(paho_client(pki, pki.client("bob"), b.ports["der"])).connect(b.ports["der"])
    s.close()


def raw_connect(port, context, session=None):
    """TLS + a minimal MQTT 3.1.1 CONNECT; returns (CONNACK bytes, TLS session, whether it was resumed)."""
    connect = bytes([0x10, 0x10, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x04]) + b"rs-1"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(connect)
            ack = tls.recv(4)
            return ack, tls.session, tls.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_resumed_sessions_are_verified_again(tls_broker, pki, version):
    """A resumed TLS session carries no certificate message; the broker must still know (and
    re-check) who the client is."""
    b = tls_broker()
    port = b.ports["mtls"]
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.minimum_version = context.maximum_version = version
    alice = pki.client("alice")
    context.load_cert_chain(str(alice[0]), str(alice[1]))
    first, session, reused = raw_connect(port, context)
    assert not reused
    assert first[:1] == b"\x20"
    second, _, reused = raw_connect(port, context, session)
    assert reused
    assert second == first  # same outcome as the full handshake
    assert b.wait_for_log("client certificate verified again")


# --------------------------------------------------------------------------------------------
# Identity


def test_common_name_is_the_identity_for_authorization(tls_broker, pki):
    b = tls_broker()
    s = Session(paho_client(pki, pki.client("alice"), b.ports["mtls"])).connect(b.ports["mtls"])
    try:
        assert s.subscribe("alice/#") == 1
        assert s.subscribe("bob/#") >= 0x80  # not alice's
    finally:
        s.close()


def test_a_user_name_ban_covers_a_certificate_identity(tls_broker, pki):
    # The certificate's CN is the identity even without a user name field in CONNECT.
    b = tls_broker(config={"auth": ACL, "bans": [{"user": "alice"}]})
    assert connect_fails(pki, pki.client("alice"), b.ports["mtls"])
    Session(paho_client(pki, pki.client("bob"), b.ports["mtls"])).connect(b.ports["mtls"]).close()


def test_a_ca_without_a_crl_is_named_at_start(tls_broker, pki):
    with_crl = tls_broker({"mtls": {"url": "mqtts://127.0.0.1:{port}",
                                    "tls": tls_section(pki, crl=[str(pki.crl)], require_certificate=True)}})
    without = tls_broker({"mtls": {"url": "mqtts://127.0.0.1:{port}", "tls": tls_section(pki, require_certificate=True)}})
    assert "revocation is not checked" not in with_crl.log_text()
    assert "revocation is not checked for certificates it issued" in without.log_text()


def test_identity_from_email_san(tls_broker, pki):
    b = tls_broker({"email": {"url": "mqtts://127.0.0.1:{port}",
                              "tls": tls_section(pki, require_certificate=True, identity_from="san_email")}})
    s = Session(paho_client(pki, pki.client("carol"), b.ports["email"])).connect(b.ports["email"])
    try:
        assert s.subscribe("carol/#") == 1
    finally:
        s.close()
    # alice has no e-mail SAN, so she has no identity on this listener.
    assert connect_fails(pki, pki.client("alice"), b.ports["email"])
    assert b.wait_for_log("reason=no_identity")


# --------------------------------------------------------------------------------------------
# Hostile input


def test_garbage_and_stalled_handshakes_are_closed(tls_broker, pki):
    b = tls_broker({"t": {"url": "mqtts://127.0.0.1:{port}", "tls": tls_section(pki, handshake_timeout=1)}})
    port = b.ports["t"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as garbage:
        garbage.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # an MQTT CONNECT, not a ClientHello
        garbage.settimeout(5)
        closed = False
        try:
            while garbage.recv(4096):  # perhaps an alert, then EOF
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        assert closed, "the broker kept a connection that sent no ClientHello"
    stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
    stalled.settimeout(8)
    try:
        data = stalled.recv(1)
        assert data == b""
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("the broker kept a connection that never completed its TLS handshake")
    stalled.close()
    assert b.wait_for_log("reason=not_tls")
    assert b.wait_for_log("reason=handshake_timeout")
    assert handshake_ok(s_client(port, "-CAfile", str(pki.ca)))


# --------------------------------------------------------------------------------------------
# Reload and refusals


def test_sighup_reloads_certificates_and_keeps_old_on_broken_files(tmp_path, pki):
    d = tmp_path / "reload"
    shutil.copytree(pki.dir, d)
    listeners = {"r": {"url": "mqtts://127.0.0.1:{port}",
                       "tls": {"cert": str(d / "server.pem"), "key": str(d / "server.key"), "ca": str(d / "ca.pem"),
                               "crl": [str(d / "crl.pem")], "require_certificate": True}}}
    b = TLSBroker(tmp_path / "b", listeners, config={"auth": ACL})
    try:
        port = b.ports["r"]
        alice = (d / "clients" / "alice.pem", d / "clients" / "alice.key")
        kept = Session(paho_client(pki, alice, port)).connect(port)

        def served_serial():
            out = s_client(port, "-CAfile", str(d / "ca.pem"), cert=bob).stdout
            pem = out[out.index("-----BEGIN CERTIFICATE-----"):out.index("-----END CERTIFICATE-----") + 25]
            return run(["openssl", "x509", "-noout", "-serial"], input=pem).stdout.strip().split("=", 1)[1]

        bob = (d / "clients" / "bob.pem", d / "clients" / "bob.key")
        before = served_serial()
        certs("server", "--dir", str(d), "--san", "localhost", "--san", "127.0.0.1", "--force")
        certs("revoke", serial_of(alice[0]), "--dir", str(d))
        b.proc.send_signal(signal.SIGHUP)
        assert b.wait_for_log("TLS material reloaded")
        # New handshakes get the new server certificate and see the new CRL ...
        after = served_serial()
        assert after != before and after == serial_of(d / "server.pem")
        assert connect_fails(pki, alice, port)
        # ... while the connection made before the reload is untouched.
        assert kept.c.is_connected()

        # A broken certificate file is rejected with a log line; the previous material stays.
        (d / "server.pem").write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        b.proc.send_signal(signal.SIGHUP)
        assert b.wait_for_log("TLS reload rejected")
        s = Session(paho_client(pki, bob, port)).connect(port)
        s.close()
        kept.close()
    finally:
        b.stop()


def start_fails(tmp_path, tls, name):
    workdir = tmp_path / name
    workdir.mkdir()
    config = workdir / "bastion.yaml"
    port = free_port()
    config.write_text(yaml.safe_dump({"listeners": [{"url": f"mqtts://127.0.0.1:{port}", "tls": tls}]}))
    return run([BASTION_BIN, "serve", "--config", str(config), "--data-dir", str(workdir / "data")],
               check=False, timeout=30)


def test_refuses_to_start_with_readable_key(tmp_path, pki):
    key = tmp_path / "server.key"
    shutil.copy(pki.server_key, key)
    os.chmod(key, 0o644)
    r = start_fails(tmp_path, {"cert": str(pki.server_cert), "key": str(key)}, "perm")
    assert r.returncode == 2
    assert "mqtts://127.0.0.1" in r.stderr and f"chmod 600 {key}" in r.stderr


def test_refuses_to_start_with_mismatched_key(tmp_path, pki):
    other_key = pki.client("bob")[1]
    r = start_fails(tmp_path, {"cert": str(pki.server_cert), "key": str(other_key)}, "mismatch")
    assert r.returncode == 2
    assert "do not belong together" in r.stderr


def test_refuses_to_start_with_expired_server_certificate(tmp_path, pki):
    odd = tmp_path / "odd"
    odd.mkdir()
    cert, key = openssl_ca_sign(odd, pki.ca, pki.ca_key, "oldserver", ["extendedKeyUsage=serverAuth", "subjectAltName=DNS:localhost"],
                                start="20200101000000Z", end="20200201000000Z")
    r = start_fails(tmp_path, {"cert": str(cert), "key": str(key)}, "expired")
    assert r.returncode == 2
    assert "expired" in r.stderr


# --------------------------------------------------------------------------------------------
# Secure defaults


def ports_free(*ports):
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def test_default_development_ca(tmp_path):
    if not ports_free(1883, 8883):
        pytest.skip("ports 1883/8883 are in use")
    data = tmp_path / "data"
    log_path = tmp_path / "default.log"

    def start():
        log = open(log_path, "ab")
        proc = subprocess.Popen([BASTION_BIN, "serve", "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", 8883), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.05)
        proc.kill()
        raise AssertionError("no TLS listener on 127.0.0.1:8883:\n" + log_path.read_text())

    proc = start()
    try:
        ca = data / "tls" / "ca.pem"
        assert str(ca) in log_path.read_text() or "tls/ca.pem" in log_path.read_text()
        result = s_client(8883, "-CAfile", str(ca), "-verify_return_error", "-verify_hostname", "localhost")
        assert handshake_ok(result) and "Verify return code: 0 (ok)" in result.stdout
        assert oct(os.stat(data / "tls" / "server.key").st_mode & 0o777) == "0o600"
        first = ca.read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    proc = start()
    try:
        assert ca.read_bytes() == first  # reused, not regenerated
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


# --------------------------------------------------------------------------------------------
# testssl.sh


@pytest.mark.skipif(shutil.which("testssl") is None and shutil.which("testssl.sh") is None, reason="testssl.sh not installed")
def test_testssl_finds_nothing_medium_or_worse(tls_broker, pki, tmp_path):
    b = tls_broker()
    tool = shutil.which("testssl") or shutil.which("testssl.sh")
    report = tmp_path / "testssl.json"
    run([tool, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", str(pki.ca), "--jsonfile", str(report),
         f"127.0.0.1:{b.ports['open']}"], check=False, timeout=600)
    findings = json.loads(report.read_text())
    bad = [f for f in findings if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")]
    assert not bad, "\n".join(f"{f['severity']} {f['id']}: {f['finding']}" for f in bad)
    assert any(f.get("id") == "TLS1_3" and "offered" in f.get("finding", "") for f in findings)
