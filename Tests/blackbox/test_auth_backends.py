"""Identity backends against the real binary: JWT (shared secret and JWKS, with reload), PostgreSQL
(a throw-away cluster), LDAP (slapd), an HTTP webhook, SCRAM enhanced authentication; the chain's
order, fail-closed answers for backends that are down, slow or answer garbage, "server busy" when
a backend's queue is full, the decision cache and its reset on reload, and configuration errors.
Behaviour of Bastion's own design, so bastion_only."""

import json
import pathlib
import re
import socket
import subprocess
import threading
import time

import pytest

import wire
from conftest import BASTION_BIN, EMBEDDED_LOCK, free_port, wait_for_port
from helpers_identity import (RC_BAD_AUTH_METHOD, RC_BAD_CREDENTIALS, RC_MAXIMUM_CONNECT_TIME, RC_NOT_AUTHORIZED,
                              RC_SERVER_BUSY, RC_SERVER_UNAVAILABLE, connect_rc, connected, jwks, postgres,  # noqa: F401
                              rsa_key, scram_connect, scram_reauthenticate, slapd, sql_text, suback_codes, token, webhook)
from helpers_sec import bastion, mosquitto_hash, reload, unique, wait_until, write

pytestmark = pytest.mark.bastion_only

SECRET = "plant-idp-shared-secret-0123456789abcdef"


def start(broker_factory, tmp_path, backends, **auth):
    config = {"auth": {"backends": backends, **auth}, "audit": {"path": str(tmp_path / f"audit-{unique()}.log")}}
    b = broker_factory(config=config, anonymous=False)
    b.audit_path = pathlib.Path(config["audit"]["path"])
    return b


def audit_alerts(b):
    if not b.audit_path.exists():
        return []
    records = [json.loads(line) for line in b.audit_path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("event") == "alert" and r.get("kind") == "backend_unavailable"]


def publish_rc(r, topic):
    """PUBACK's reason code, with 0x10 No matching subscribers (a success) read as 0."""
    rc = r.pub(topic, b"x", qos=1).rc
    return 0 if rc == 0x10 else rc


def jwt_backend(tmp_path, **extra):
    secret = write(tmp_path / "jwt.secret", SECRET + "\n")
    entry = {"type": "jwt", "secret_file": str(secret), "algorithms": ["HS256"], "issuer": "plant-idp", "audience": "bastion",
             "username_claim": "sub", "acl_claims": {"publish": "mqtt_pub", "subscribe": "mqtt_sub"}}
    entry.update(extra)
    return entry


def plant_token(**claims):
    body = {"sub": "dev-1", "iss": "plant-idp", "aud": "bastion", "mqtt_pub": ["plant/dev-1/#"], "mqtt_sub": ["cmd/dev-1"]}
    body.update(claims)
    return token(SECRET, **body)


# ---------------------------------------------------------------- configuration

def serve_exit(tmp_path, auth):
    path = write(tmp_path / f"bad-{unique()}.yaml", json.dumps({"auth": auth}))
    p = subprocess.run([BASTION_BIN, "serve", "--config", str(path), "--listen", f"mqtt://127.0.0.1:{free_port()}",
                        "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr + p.stdout


@pytest.mark.parametrize("backend, key", [
    ({"type": "jwt", "secret_file": "/nonexistent", "url": "http://x"}, "auth.backends[0].url"),
    ({"type": "kerberos"}, "auth.backends[0].type"),
    ({"type": "jwt", "secret_file": "SECRET", "algorithms": ["none"]}, "auth.backends[0].algorithms"),
    ({"type": "jwt", "secret_file": "SHORT"}, "auth.backends[0].secret_file"),
    ({"type": "jwks", "jwks_file": "SECRET"}, "auth.backends[0].jwks_file"),
    ({"type": "postgres", "url": "postgres://u:pw@127.0.0.1/db", "password_query": "SELECT 1 WHERE $1 = ''"}, "auth.backends[0].url"),
    ({"type": "postgres", "url": "postgres://u@127.0.0.1/db", "password_query": "SELECT h FROM t WHERE u = $3"},
     "auth.backends[0].password_query"),
    ({"type": "http", "url": "http://192.0.2.7/auth"}, "auth.backends[0].url"),
    ({"type": "ldap", "url": "ldap://127.0.0.1:1", "bind_dn": "uid=%u,dc=x", "role_map": {"g": "undefined"}},
     "auth.backends[0].role_map.g"),
    ({"type": "http", "url": "http://127.0.0.1:1/", "timeout": 0}, "auth.backends[0].timeout"),
    ({"type": "jwt", "secret_file": "SECRET", "bogus_key": 1}, "auth.backends[0].bogus_key"),
])
def test_bad_backend_configuration_exits_2_naming_the_key(tmp_path, backend, key):
    secret = write(tmp_path / "secret", SECRET)
    short = write(tmp_path / "short", "tooshort")
    text = json.dumps(backend).replace('"SECRET"', json.dumps(str(secret))).replace('"SHORT"', json.dumps(str(short)))
    code, output = serve_exit(tmp_path, {"backends": [json.loads(text)]})
    assert code == 2, output
    assert key in output, output


def test_cache_settings_are_checked(tmp_path):
    code, output = serve_exit(tmp_path, {"backends": [{"type": "http", "url": "http://127.0.0.1:1/"}], "cache_ttl": -1})
    assert code == 2 and "auth.cache_ttl" in output, output


def test_defaults_serve_with_only_a_backend_config(tmp_path):
    """`bastion serve --config` with nothing but the backend: loopback 1883, no generated admin."""
    import fcntl
    path = write(tmp_path / "bastion.yaml", json.dumps({"auth": {"backends": [jwt_backend(tmp_path)]}}))
    with open(EMBEDDED_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = open(tmp_path / "broker.log", "wb")
        proc = subprocess.Popen([BASTION_BIN, "serve", "--config", str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            wait_for_port("127.0.0.1", 1883, proc, timeout=30)

            class Default:
                host, port = "127.0.0.1", 1883

            assert connect_rc(Default, password=plant_token()) == 0
            assert connect_rc(Default, username="dev-1", password="not-a-token") == RC_BAD_CREDENTIALS
            assert connect_rc(Default) == RC_NOT_AUTHORIZED
            text = (tmp_path / "broker.log").read_text(errors="replace")
            assert not re.search(r"password:\s+\S+", text), "no admin password is generated when backends are configured"
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------- JWT

def test_jwt_logs_in_and_its_claims_are_the_acl(broker_factory, tmp_path):
    b = start(broker_factory, tmp_path, [jwt_backend(tmp_path)])
    r = connected(b, username="dev-1", password=plant_token(), client_id="dev-1")
    try:
        assert suback_codes(r, "cmd/dev-1", "cmd/#") == [1, RC_NOT_AUTHORIZED]
        assert publish_rc(r, "plant/dev-1/temp") == 0
        assert publish_rc(r, "plant/dev-2/temp") == RC_NOT_AUTHORIZED
    finally:
        r.close()
    # MQTT 5.0 may send the token without a user name.
    assert connect_rc(b, password=plant_token()) == 0


@pytest.mark.parametrize("case", ["expired", "forged", "unsigned", "audience", "issuer", "other_user", "too_large"])
def test_bad_tokens_are_refused(broker_factory, tmp_path, case):
    import jwt
    b = start(broker_factory, tmp_path, [jwt_backend(tmp_path)])
    bad = {
        "expired": lambda: plant_token(exp=int(time.time()) - 5),
        "forged": lambda: token("another-secret-of-sufficient-length-000", sub="dev-1", iss="plant-idp", aud="bastion"),
        "unsigned": lambda: jwt.encode({"sub": "dev-1", "iss": "plant-idp", "aud": "bastion", "exp": int(time.time()) + 60},
                                       None, algorithm="none"),
        "audience": lambda: plant_token(aud="someone-else"),
        "issuer": lambda: plant_token(iss="evil-idp"),
        "other_user": lambda: plant_token(),
        "too_large": lambda: plant_token(pad="x" * 9000),
    }[case]()
    username = "admin" if case == "other_user" else "dev-1"
    assert connect_rc(b, username=username, password=bad) == RC_BAD_CREDENTIALS


def test_token_bound_to_client_ids(broker_factory, tmp_path):
    b = start(broker_factory, tmp_path, [jwt_backend(tmp_path, clientid_claim="client_ids")])
    tok = plant_token(client_ids=["dev-1", "dev-1-spare"])
    assert connect_rc(b, password=tok, client_id="dev-1-spare") == 0
    assert connect_rc(b, password=tok, client_id="dev-9") == RC_NOT_AUTHORIZED


def test_session_ends_when_the_token_expires(broker_factory, tmp_path):
    b = start(broker_factory, tmp_path, [jwt_backend(tmp_path, disconnect_on_expiry=True)])
    r = connected(b, password=plant_token(exp=int(time.time()) + 2))
    try:
        wire.assert_disconnected(r, RC_MAXIMUM_CONNECT_TIME, timeout=10)
    finally:
        r.close()


def test_jwks_keys_follow_the_file_on_reload(broker_factory, tmp_path):
    first, second = rsa_key(), rsa_key()
    keys = write(tmp_path / "jwks.json", jwks((first, "k1")))
    b = start(broker_factory, tmp_path, [{"type": "jwks", "jwks_file": str(keys), "algorithms": ["RS256", "ES256"]}])
    old = token(first, algorithm="RS256", kid="k1", sub="gw-1")
    new = token(second, algorithm="RS256", kid="k2", sub="gw-1")
    assert connect_rc(b, password=old, client_id="gw-1") == 0
    assert connect_rc(b, password=new, client_id="gw-1") == RC_BAD_CREDENTIALS
    # An HS256 token "signed" with the public key is not accepted by a key set.
    from cryptography.hazmat.primitives import serialization
    pem = first.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hmac, hashlib, base64  # noqa: E401
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k1"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "gw-1", "exp": int(time.time()) + 60}).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()).rstrip(b"=")
    assert connect_rc(b, password=(header + b"." + payload + b"." + signature).decode()) == RC_BAD_CREDENTIALS

    write(keys, jwks((second, "k2")))
    reload(b)
    assert connect_rc(b, password=new, client_id="gw-1") == 0
    assert connect_rc(b, password=old, client_id="gw-1") == RC_BAD_CREDENTIALS, "the cache must not keep a key the reload removed"


# ---------------------------------------------------------------- PostgreSQL

def pg_backend(pg, tmp_path, **extra):
    password = write(tmp_path / "pg.password", "bastion-pass\n")
    entry = {"type": "postgres", "url": pg.url, "password_file": str(password),
             "password_query": "SELECT password_hash FROM mqtt_users WHERE username = $1",
             "acl_query": "SELECT access, topic FROM mqtt_acl WHERE username = $1 AND (clientid IS NULL OR clientid = $2)"}
    entry.update(extra)
    return entry


def pg_user(pg, name, password=None, hash_=None):
    hash_ = hash_ or mosquitto_hash(password)
    pg.sql(f"DELETE FROM mqtt_users WHERE username = {sql_text(name)}; "
           f"INSERT INTO mqtt_users VALUES ({sql_text(name)}, {sql_text(hash_)})")


def scram_line(tmp_path, user, password, mechanism="sha-256"):
    path = tmp_path / f"scram-{unique()}"
    code, _, err = bastion("passwd", "-c", "--scram", mechanism, "-b", path, user, password)
    assert code == 0, err
    return path.read_text().strip().split(":", 1)[1]


def test_postgres_users_and_acl_rows(broker_factory, tmp_path, postgres):
    user = unique("pg")
    pg_user(postgres, user, "pg-pass")
    postgres.sql(f"INSERT INTO mqtt_acl VALUES ({sql_text(user)}, NULL, 'readwrite', {sql_text(f'plant/{user}/#')}), "
                 f"({sql_text(user)}, NULL, 'deny', {sql_text(f'plant/{user}/secret')})")
    b = start(broker_factory, tmp_path, [pg_backend(postgres, tmp_path)])
    r = connected(b, username=user, password="pg-pass")
    try:
        assert publish_rc(r, f"plant/{user}/temp") == 0
        assert publish_rc(r, f"plant/{user}/secret") == RC_NOT_AUTHORIZED
        assert publish_rc(r, "plant/other/temp") == RC_NOT_AUTHORIZED
    finally:
        r.close()
    assert connect_rc(b, username=user, password="wrong") == RC_BAD_CREDENTIALS
    assert connect_rc(b, username=unique("nobody"), password="pg-pass") == RC_BAD_CREDENTIALS


@pytest.mark.parametrize("name", ["' OR '1'='1", "x' UNION SELECT password_hash FROM mqtt_users --", "%", "$1"])
def test_postgres_user_names_are_data_not_sql(broker_factory, tmp_path, postgres, name):
    victim = unique("victim")
    pg_user(postgres, victim, "victim-pass")
    b = start(broker_factory, tmp_path, [pg_backend(postgres, tmp_path)])
    assert connect_rc(b, username=name, password="victim-pass") == RC_BAD_CREDENTIALS
    assert connect_rc(b, username=victim, password="victim-pass") == 0


def test_postgres_scram_keys_serve_both_logins(broker_factory, tmp_path, postgres):
    user = unique("scram")
    pg_user(postgres, user, hash_=scram_line(tmp_path, user, "scram-pass"))
    b = start(broker_factory, tmp_path, [pg_backend(postgres, tmp_path)])
    ack, _, _ = scram_connect(b, user, "scram-pass")
    assert ack.rc == 0
    assert scram_connect(b, user, "wrong")[0].rc == RC_NOT_AUTHORIZED
    assert connect_rc(b, username=user, password="scram-pass") == 0


def test_postgres_decisions_are_cached_until_a_reload(broker_factory, tmp_path, postgres):
    user = unique("cached")
    pg_user(postgres, user, "cache-pass")
    b = start(broker_factory, tmp_path, [pg_backend(postgres, tmp_path)], cache_ttl=300)
    # The cache keys on everything a backend may decide on, the client id included.
    assert connect_rc(b, username=user, password="cache-pass", client_id="cached-dev") == 0
    postgres.sql(f"DELETE FROM mqtt_users WHERE username = {sql_text(user)}")
    assert connect_rc(b, username=user, password="cache-pass", client_id="cached-dev") == 0, "answered from the cache"
    assert connect_rc(b, username=user, password="cache-pass", client_id="other-dev") == RC_BAD_CREDENTIALS
    reload(b)
    assert connect_rc(b, username=user, password="cache-pass", client_id="cached-dev") == RC_BAD_CREDENTIALS


def test_slow_postgres_fails_closed_with_an_alert(broker_factory, tmp_path, postgres):
    user = unique("slow")
    pg_user(postgres, user, "slow-pass")
    b = start(broker_factory, tmp_path, [pg_backend(
        postgres, tmp_path, timeout=1,
        password_query="SELECT password_hash FROM mqtt_users WHERE username = $1 AND pg_sleep(4) IS NOT NULL")])
    assert connect_rc(b, username=user, password="slow-pass") == RC_SERVER_UNAVAILABLE
    wait_until(lambda: audit_alerts(b), 10, "no backend_unavailable alert in the audit log")


def test_postgres_answering_garbage_fails_closed(broker_factory, tmp_path, postgres):
    b = start(broker_factory, tmp_path, [pg_backend(postgres, tmp_path, password_query="SELECT 'plain-text'::text WHERE $1 <> ''")])
    assert connect_rc(b, username="anyone", password="plain-text") == RC_SERVER_UNAVAILABLE


def test_postgres_down_fails_closed_and_later_backends_are_not_asked(broker_factory, tmp_path, webhook):
    hook = webhook(lambda body: (200, {"result": "allow"}))
    down = {"type": "postgres", "url": f"postgres://bastion@127.0.0.1:{free_port()}/iot", "timeout": 2,
            "password_query": "SELECT password_hash FROM mqtt_users WHERE username = $1"}
    b = start(broker_factory, tmp_path, [down, {"type": "http", "url": hook.url}])
    assert connect_rc(b, username="alice", password="pw") == RC_SERVER_UNAVAILABLE
    assert hook.requests == []
    wait_until(lambda: audit_alerts(b), 10, "no backend_unavailable alert in the audit log")


# ---------------------------------------------------------------- LDAP

def test_ldap_binds_and_maps_groups_to_roles(broker_factory, tmp_path, slapd):
    b = start(broker_factory, tmp_path, [{
        "type": "ldap", "url": slapd.url, "bind_dn": "uid=%u,ou=people,dc=bastion,dc=test",
        "group_base": "ou=groups,dc=bastion,dc=test", "role_map": {"operators": "ops"}}],
        roles={"ops": []}, acl=[{"role": "ops", "access": "readwrite", "topic": "plant/#"}])
    alice = connected(b, username="alice", password="alice-pass")
    try:
        assert publish_rc(alice, "plant/line1/valve") == 0
    finally:
        alice.close()
    bob = connected(b, username="bob", password="bob-pass")
    try:
        assert publish_rc(bob, "plant/line1/valve") == RC_NOT_AUTHORIZED
    finally:
        bob.close()
    assert connect_rc(b, username="alice", password="wrong") == RC_BAD_CREDENTIALS
    for hostile in ["*", "alice,ou=people", "alice)(uid=*"]:
        assert connect_rc(b, username=hostile, password="alice-pass") == RC_BAD_CREDENTIALS


def test_ldap_down_fails_closed(broker_factory, tmp_path):
    b = start(broker_factory, tmp_path, [{"type": "ldap", "url": f"ldap://127.0.0.1:{free_port()}", "timeout": 2,
                                          "bind_dn": "uid=%u,ou=people,dc=bastion,dc=test"}])
    assert connect_rc(b, username="alice", password="alice-pass") == RC_SERVER_UNAVAILABLE


# ---------------------------------------------------------------- webhook

def test_webhook_allow_with_acl_and_the_request_it_gets(broker_factory, tmp_path, webhook):
    def answer(body):
        if body["password"] == "hook-pass":
            return 200, {"result": "allow", "acl": [{"access": "write", "topic": "plant/hook/#"}]}
        return 200, {"result": "deny"}

    hook = webhook(answer)
    b = start(broker_factory, tmp_path, [{"type": "http", "url": hook.url, "timeout": 2}])
    r = connected(b, username="hooked", password="hook-pass", client_id="dev-h")
    try:
        assert publish_rc(r, "plant/hook/x") == 0
        assert publish_rc(r, "plant/other") == RC_NOT_AUTHORIZED
    finally:
        r.close()
    assert connect_rc(b, username="hooked", password="nope") == RC_BAD_CREDENTIALS
    first = hook.requests[0]
    assert first["username"] == "hooked" and first["password"] == "hook-pass" and first["client_id"] == "dev-h"
    assert first["listener"].startswith("mqtt://127.0.0.1:") and first["remote_address"] == "127.0.0.1"
    assert first["certificate"] is None


@pytest.mark.parametrize("answer", [
    lambda body: (200, b"<html>not json</html>"),
    lambda body: (200, {"result": "maybe"}),
    lambda body: (500, {"result": "allow"}),
    lambda body: (200, {"result": "allow", "acl": [{"access": "everything", "topic": "#"}]}),
    lambda body: (time.sleep(3), (200, {"result": "allow"}))[1],
], ids=["html", "unknown-result", "http-500", "bad-acl", "slow"])
def test_webhook_garbage_and_slowness_fail_closed(broker_factory, tmp_path, webhook, answer):
    hook = webhook(answer)
    b = start(broker_factory, tmp_path, [{"type": "http", "url": hook.url, "timeout": 1}])
    assert connect_rc(b, username="u", password="p") == RC_SERVER_UNAVAILABLE


def test_webhook_queue_full_answers_server_busy(broker_factory, tmp_path, webhook):
    release = threading.Event()

    def answer(body):
        release.wait(8)
        return 200, {"result": "allow"}

    hook = webhook(answer)
    b = start(broker_factory, tmp_path, [{"type": "http", "url": hook.url, "timeout": 10, "max_concurrent": 1, "max_queued": 0}])
    first = {}
    worker = threading.Thread(target=lambda: first.setdefault("rc", connect_rc(b, username="u1", password="p", timeout=15)))
    worker.start()
    try:
        wait_until(lambda: hook.requests, 10, "the first login never reached the webhook")
        assert connect_rc(b, username="u2", password="p") == RC_SERVER_BUSY
    finally:
        release.set()
        worker.join(15)
    assert first.get("rc") == 0


# ---------------------------------------------------------------- the chain

def test_password_file_decides_first_and_a_dead_backend_fails_closed(broker_factory, tmp_path):
    passwd = tmp_path / "passwd"
    code, _, err = bastion("passwd", "-c", "-b", passwd, "local", "local-pass")
    assert code == 0, err
    config = {"auth": {"password_file": str(passwd), "backends": [{"type": "http", "url": f"http://127.0.0.1:{free_port()}/", "timeout": 1}]}}
    b = broker_factory(config=config, anonymous=False)
    assert connect_rc(b, username="local", password="local-pass") == 0
    assert connect_rc(b, username="local", password="wrong") == RC_BAD_CREDENTIALS
    assert connect_rc(b, username="remote", password="x") == RC_SERVER_UNAVAILABLE


# ---------------------------------------------------------------- SCRAM

@pytest.fixture
def scram_broker(broker_factory, tmp_path):
    passwd = tmp_path / "passwd"
    for i, (user, password, mechanism) in enumerate([("dev-256", "pw-256", "sha-256"), ("dev-512", "pw-512", "sha-512")]):
        args = ["passwd"] + (["-c"] if i == 0 else []) + ["--scram", mechanism, "-b", passwd, user, password]
        code, _, err = bastion(*args)
        assert code == 0, err
    code, _, err = bastion("passwd", "-b", passwd, "plain", "plain-pass")
    assert code == 0, err
    return broker_factory(args=["--password-file", str(passwd)], anonymous=False)


def test_scram_sha_256_and_512(scram_broker):
    assert scram_connect(scram_broker, "dev-256", "pw-256")[0].rc == 0
    assert scram_connect(scram_broker, "dev-512", "pw-512", "SCRAM-SHA-512")[0].rc == 0
    assert scram_connect(scram_broker, "dev-256", "wrong")[0].rc == RC_NOT_AUTHORIZED
    assert connect_rc(scram_broker, username="dev-256", password="pw-256") == 0, "stored keys check plain passwords too"
    assert connect_rc(scram_broker, props=[("AuthenticationMethod", "SCRAM-SHA-1"), ("AuthenticationData", b"n,,n=u,r=x")]) == RC_BAD_AUTH_METHOD


def test_scram_unknown_users_look_like_real_ones(scram_broker):
    real = scram_connect(scram_broker, "dev-256", "wrong")
    ghost = scram_connect(scram_broker, "ghost", "wrong")
    assert real[0].rc == ghost[0].rc == RC_NOT_AUTHORIZED

    def fields(message):
        return dict(part.split("=", 1) for part in message.decode().split(","))

    import base64
    assert fields(real[2])["i"] == fields(ghost[2])["i"]
    assert len(base64.b64decode(fields(real[2])["s"])) == len(base64.b64decode(fields(ghost[2])["s"]))
    assert scram_connect(scram_broker, "plain", "plain-pass")[0].rc == RC_NOT_AUTHORIZED, "no SCRAM keys for a $7$ entry"


def test_scram_reauthentication(scram_broker):
    ack, r, _ = scram_connect(scram_broker, "dev-256", "pw-256", keep=True)
    try:
        assert ack.rc == 0
        reply = scram_reauthenticate(r, "dev-256", "pw-256")
        assert reply.type == wire.AUTH and reply.rc == 0, f"{reply!r}"
        reply = scram_reauthenticate(r, "dev-256", "wrong")
        assert reply.type == wire.DISCONNECT and reply.rc == RC_NOT_AUTHORIZED, f"{reply!r}"
    finally:
        r.close()
    ack, r, _ = scram_connect(scram_broker, "dev-256", "pw-256", keep=True)
    try:
        reply = scram_reauthenticate(r, "dev-512", "pw-512", "SCRAM-SHA-256")
        assert reply.type == wire.DISCONNECT and reply.rc == RC_NOT_AUTHORIZED, "the session's user only"
    finally:
        r.close()


def test_malformed_scram_data_is_refused(scram_broker):
    r = wire.Raw(scram_broker, ordered=False)
    try:
        r.send(wire.connect(props=[("AuthenticationMethod", "SCRAM-SHA-256"), ("AuthenticationData", b"p=tls-unique,,n=u,r=x")]))
        assert r.expect(wire.CONNACK).rc == 0x82
    finally:
        r.close()
