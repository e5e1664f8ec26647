"""Identity-backend test support: a throw-away PostgreSQL and slapd, a webhook server, JWTs made
with PyJWT, and a SCRAM client speaking MQTT 5.0 AUTH packets. Every wait is bounded; servers
bind 127.0.0.1 only and stop with their fixture."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import threading
import time

import pytest

import wire
from conftest import ROOT, free_port

SCRIPTS = ROOT / "scripts" / "test-servers"

# 5.0 CONNACK / DISCONNECT reason codes.
RC_SUCCESS = 0x00
RC_PROTOCOL_ERROR = 0x82
RC_BAD_CREDENTIALS = 0x86
RC_NOT_AUTHORIZED = 0x87
RC_SERVER_UNAVAILABLE = 0x88
RC_SERVER_BUSY = 0x89
RC_BAD_AUTH_METHOD = 0x8C
RC_MAXIMUM_CONNECT_TIME = 0xA0


# ---------------------------------------------------------------- raw CONNECT

def connect_rc(broker, username=None, password=None, client_id=None, timeout=10.0, props=None):
    """One 5.0 CONNECT; the CONNACK's reason code (the connection is closed afterwards)."""
    r = wire.Raw(broker, timeout=timeout, ordered=False)
    try:
        r.send(wire.connect(client_id, username=username, password=password, props=props))
        return r.expect(wire.CONNACK, timeout).rc
    finally:
        r.close()


def connected(broker, username=None, password=None, client_id=None, timeout=10.0):
    """A raw 5.0 connection that got CONNACK 0 (the caller closes it)."""
    r = wire.Raw(broker, timeout=timeout, ordered=False)
    r.send(wire.connect(client_id, username=username, password=password))
    ack = r.expect(wire.CONNACK, timeout)
    assert ack.rc == 0, f"CONNACK {ack!r}"
    return r


def suback_codes(r, *filters):
    return list(r.sub([(f, 1) for f in filters]).codes)


# ---------------------------------------------------------------- JWT

def token(key, algorithm="HS256", kid=None, **claims):
    import jwt
    now = int(time.time())
    body = {"exp": now + 600, "iat": now}
    body.update(claims)
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*keys_with_ids):
    """A JWKS document of the public halves of (private_key, kid) pairs."""
    import jwt
    out = []
    for key, kid in keys_with_ids:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "use": "sig"})
        out.append(jwk)
    return json.dumps({"keys": out})


# ---------------------------------------------------------------- SCRAM (RFC 5802 / 7677)

class Scram:
    """The client side of SCRAM-SHA-256/512 for MQTT enhanced authentication."""

    def __init__(self, username, password, mechanism="SCRAM-SHA-256"):
        self.username, self.password, self.mechanism = username, password, mechanism
        self.hash = hashlib.sha256 if mechanism.endswith("256") else hashlib.sha512
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.bare = f"n={username.replace('=', '=3D').replace(',', '=2C')},r={self.nonce}"
        self.server_signature = None

    def first(self):
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        text = server_first.decode()
        fields = dict(part.split("=", 1) for part in text.split(","))
        assert fields["r"].startswith(self.nonce), "the server nonce must extend ours"
        salted = hashlib.pbkdf2_hmac(self.hash().name, self.password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored_key = self.hash(client_key).digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{self.bare},{text},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        self.server_signature = b"v=" + base64.b64encode(hmac.new(server_key, auth_message, self.hash).digest())
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def scram_connect(broker, username, password, mechanism="SCRAM-SHA-256", connect_username=None, keep=False):
    """CONNECT with SCRAM; returns (CONNACK, Raw, the server-first message or None)."""
    client = Scram(username, password, mechanism)
    r = wire.Raw(broker, ordered=False)
    r.send(wire.connect(username=connect_username, props=[("AuthenticationMethod", mechanism), ("AuthenticationData", client.first())]))
    reply = r.recv()
    server_first = None
    if reply.type == wire.AUTH:
        assert reply.rc == 0x18, f"AUTH {reply!r}"
        server_first = reply.props["AuthenticationData"]
        r.send(wire.auth(0x18, [("AuthenticationMethod", mechanism), ("AuthenticationData", client.final(server_first))]))
        reply = r.expect(wire.CONNACK)
    assert reply.type == wire.CONNACK, f"expected CONNACK, got {reply!r}"
    if reply.rc == 0:
        assert reply.props.get("AuthenticationData") == client.server_signature, "the server must prove it knows the keys"
    if not keep:
        r.close()
    return reply, r, server_first


def scram_reauthenticate(r, username, password, mechanism="SCRAM-SHA-256"):
    """AUTH 0x19 on a connected client; returns the broker's last answer (AUTH 0x00 or DISCONNECT)."""
    client = Scram(username, password, mechanism)
    r.send(wire.auth(0x19, [("AuthenticationMethod", mechanism), ("AuthenticationData", client.first())]))
    reply = r.recv()
    if reply.type == wire.AUTH and reply.rc == 0x18:
        r.send(wire.auth(0x18, [("AuthenticationMethod", mechanism), ("AuthenticationData", client.final(reply.props["AuthenticationData"]))]))
        reply = r.recv()
    return reply


# ---------------------------------------------------------------- webhook

class Webhook:
    """A webhook on 127.0.0.1: `answer(request_json) -> (status, body)` decides; requests are kept."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                hook.requests.append(body)
                status, reply = hook.answer(body)
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/mqtt/auth"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    started = []

    def make(answer):
        w = Webhook(answer)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


# ---------------------------------------------------------------- PostgreSQL

class Postgres:
    def __init__(self):
        if not shutil.which("psql") or not list(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            pytest.fail("PostgreSQL is not installed: apt-get install -y postgresql (./scripts/test installs it)")
        self.port = free_port()
        out = subprocess.run([str(SCRIPTS / "postgres.sh"), "start", str(self.port)], capture_output=True, text=True, timeout=90)
        if out.returncode != 0:
            raise RuntimeError(f"postgres.sh start failed: {out.stderr}")
        self.dir = out.stdout.strip().splitlines()[-1]
        self.url = f"postgres://bastion@127.0.0.1:{self.port}/iot"

    def sql(self, statement):
        subprocess.run([str(SCRIPTS / "postgres.sh"), "sql", self.dir, statement], check=True, capture_output=True, timeout=30)

    def stop(self):
        subprocess.run([str(SCRIPTS / "postgres.sh"), "stop", self.dir], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres()
    yield pg
    pg.stop()


def sql_text(value):
    """A SQL string literal (for seeding rows in tests only)."""
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------- slapd

class Slapd:
    def __init__(self, workdir):
        if not (shutil.which("slapd") or os.path.exists("/usr/sbin/slapd")):
            pytest.fail("slapd is not installed: apt-get install -y slapd ldap-utils (./scripts/test installs it)")
        self.dir = pathlib.Path(workdir) / "slapd"
        self.port = free_port()
        out = subprocess.run([str(SCRIPTS / "slapd.sh"), "start", str(self.dir), str(self.port)], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"slapd.sh start failed: {out.stderr}")
        self.url = f"ldap://127.0.0.1:{self.port}"

    def stop(self):
        subprocess.run([str(SCRIPTS / "slapd.sh"), "stop", str(self.dir)], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("ldap"))
    yield server
    server.stop()
