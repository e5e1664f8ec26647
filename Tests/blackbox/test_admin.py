"""The admin console against the real binary: TLS by default with the development CA, every API
route for every role, first-start secrets, Host/Origin/content-type checks, the cross-site
text/plain ban, `bastion ban`, and LDAP logins against a throw-away slapd."""

import os
import pathlib
import shutil
import stat
import subprocess
import time

import pytest

from admin_helpers import Console, start_console, totp
from conftest import BASTION_BIN, ROOT, free_port
from mqttclient import Client

pytestmark = pytest.mark.bastion_only

ROLES = ["viewer", "operator", "admin"]
RANK = {None: -1, "viewer": 0, "operator": 1, "admin": 2}


@pytest.fixture
def console(broker_factory):
    return start_console(broker_factory)


def post_body(path):
    return {
        "/api/v1/clients/kick": {"client_id": "nobody-connected"},
        "/api/v1/bans": {"ip": "192.0.2.7", "duration_seconds": 60},
        "/api/v1/users": {"name": "bb-user", "role": "viewer"},
        "/api/v1/users/{name}/role": {"role": "viewer"},
        "/api/v1/tokens": {"name": "bb-ci", "role": "viewer", "expires_days": 1},
    }.get(path, {})


def concrete(path):
    query = {
        "/api/v1/acl/check": "?topic=a/b&action=publish&client_id=c",
        "/api/v1/retained": "?topic=x/y&filter=%23",
        "/api/v1/bans": "?ip=192.0.2.99",
    }.get(path, "")
    return path.replace("{name}", "nobody").replace("{id}", "none") + query


def test_https_by_default_with_the_development_ca(console):
    broker, admin = console
    assert admin.scheme == "https"
    r = admin.request("GET", "/healthz")
    assert r.status == 200 and r.text == "ok\n"
    assert r.header("strict-transport-security")
    # TLS only: plain HTTP to the port gets no answer a browser could use.
    plain = Console(broker, f"http://127.0.0.1:{admin.port}")
    try:
        status = plain.request("GET", "/healthz").status
    except Exception:
        status = None
    assert status != 200


def test_every_route_for_every_role(console):
    _, admin = console
    spec = admin.request("GET", "/api/v1/openapi.json")
    assert spec.status == 200
    paths = spec.json()["paths"]
    tokens = {None: None, "bad": "bst_nope_nope", **{role: admin.create_token(role) for role in ROLES}}
    checked = 0
    for path, methods in sorted(paths.items()):
        for method, operation in methods.items():
            required = operation.get("x-bastion-role")
            for caller, token in tokens.items():
                body = post_body(path) if method == "post" else None
                r = admin.request(method.upper(), concrete(path), body, token=token)
                label = f"{method.upper()} {path} as {caller}: {r.status} {r.text[:200]}"
                assert r.status < 500, label
                if required is None:
                    assert r.status == 200, label
                elif caller in (None, "bad"):
                    assert r.status == 401, label
                elif RANK[caller] < RANK[required]:
                    assert r.status == 403, label
                else:
                    assert r.status not in (401, 403), label
                checked += 1
    assert checked >= 29 * 5


def test_monitoring_routes_keep_working(console):
    _, admin = console
    assert admin.request("GET", "/readyz").status == 200
    metrics = admin.request("GET", "/metrics")  # loopback: no token needed
    assert metrics.status == 200
    assert "bastion_connections_current" in metrics.text
    assert admin.request("GET", "/bans").status == 401
    assert admin.request("GET", "/bans", token=admin.token).status == 200
    assert admin.request("GET", "/sessions", token=admin.token).status == 200


def test_first_start_secrets_are_private_files_never_printed(console):
    broker, admin = console
    log = broker.log_text()
    for name in ["admin-password", "admin-token", "admin-users"]:
        path = broker.data_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert str(broker.data_dir / "admin-password") in log
    assert str(broker.data_dir / "admin-token") in log
    assert admin.initial_password not in log
    assert admin.token not in log
    # Restarting reuses them; a file made readable by others is made private again.
    token = admin.token
    os.chmod(broker.data_dir / "admin-token", 0o644)
    broker.restart()
    admin.wait_ready()
    assert admin.token == token
    assert stat.S_IMODE((broker.data_dir / "admin-token").stat().st_mode) == 0o600
    assert admin.request("GET", "/api/v1/whoami", token=token).status == 200


def test_a_configured_token_file_others_can_read_is_refused(tmp_path):
    token = tmp_path / "admin.token"
    token.write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(token, 0o644)
    config = tmp_path / "bastion.yaml"
    config.write_text(f"admin:\n  listen: https://127.0.0.1:{free_port()}\n  token_file: {token}\n")
    r = subprocess.run([BASTION_BIN, "serve", "--listen", f"mqtt://127.0.0.1:{free_port()}", "--allow-anonymous",
                        "--data-dir", str(tmp_path / "data"), "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "admin.token_file" in r.stderr and "chmod 600" in r.stderr


@pytest.mark.parametrize("listen", ["http://0.0.0.0:{port}", "https://0.0.0.0:{port}"])
def test_off_loopback_needs_https_and_a_real_certificate(tmp_path, listen):
    r = subprocess.run([BASTION_BIN, "serve", "--listen", f"mqtt://127.0.0.1:{free_port()}", "--allow-anonymous",
                        "--data-dir", str(tmp_path / "data"), "--admin-listen", listen.format(port=free_port())],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "loopback" in r.stderr


def test_plain_http_on_loopback_works_with_a_warning(broker_factory):
    broker, admin = start_console(broker_factory, scheme="http")
    assert admin.request("GET", "/healthz").status == 200
    assert "plain http" in broker.log_text()


def test_foreign_host_header_is_refused(console):
    _, admin = console
    for host in ["evil.example", f"evil.example:{admin.port}", "127.0.0.1:1", f"127.0.0.1.evil.example:{admin.port}"]:
        r = admin.request("GET", "/api/v1/whoami", token=admin.token, host=host)
        assert r.status == 400, host
    for host in [f"127.0.0.1:{admin.port}", f"localhost:{admin.port}"]:
        assert admin.request("GET", "/api/v1/whoami", token=admin.token, host=host).status == 200


def test_foreign_origin_is_refused(console):
    _, admin = console
    r = admin.request("POST", "/api/v1/bans", {"ip": "192.0.2.1"}, token=admin.token, headers={"Origin": "https://evil.example"})
    assert r.status == 403
    r = admin.request("POST", "/api/v1/bans", {"ip": "192.0.2.1"}, token=admin.token,
                      headers={"Origin": f"https://127.0.0.1:{admin.port}"})
    assert r.status == 201


def test_the_cross_site_text_plain_ban_is_refused(console):
    """What a web page in a browser on the broker host can send without a preflight."""
    _, admin = console
    body = '{"cidr":"0.0.0.0/0"}'
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for path in ["/bans", "/api/v1/bans"]:
        assert admin.request("POST", path, body, content_type="text/plain", headers=headers).status in (403, 415)
        assert admin.request("POST", path, body, content_type="text/plain").status == 415
        assert admin.request("POST", path, body, content_type="application/json").status == 401
        # With a token, text/plain is still not JSON.
        assert admin.request("POST", path, body, content_type="text/plain", token=admin.token).status == 415
    assert admin.request("GET", "/bans", token=admin.token).json() == []
    # And MQTT clients are still served.
    c = Client(admin.broker, client_id="still-served")
    c.disconnect()


def test_content_type_and_bad_input(console):
    _, admin = console
    token = admin.token
    assert admin.request("POST", "/api/v1/bans", "ip=1.2.3.4", content_type="application/x-www-form-urlencoded", token=token).status == 415
    r = admin.request("POST", "/api/v1/bans", "{not json", content_type="application/json", token=token)
    assert r.status == 400 and "error" in r.json()
    assert admin.request("POST", "/api/v1/bans", {"ip": "300.1.1.1"}, token=token).status == 400
    assert admin.request("GET", "/api/v1/retained?filter=a/%23/b", token=token).status == 400
    assert admin.request("GET", "/api/v1/nothing", token=token).status == 404


def test_api_acts_on_the_broker(console):
    broker, admin = console
    op = admin.create_token("operator")
    sub = Client(broker, client_id="watched")
    sub.subscribe("plant/+/temp", qos=1)
    pub = Client(broker, client_id="publisher")
    pub.publish("plant/line1/status", b"running", qos=1, retain=True)
    clients = admin.request("GET", "/api/v1/clients", token=op).json()
    watched = next(c for c in clients if c["client_id"] == "watched")
    assert watched["subscriptions"] == ["plant/+/temp"] and watched["protocol_version"] == "5.0"
    assert watched["listener"].startswith("mqtt://127.0.0.1:") and watched.get("tls") is None
    subs = admin.request("GET", "/api/v1/subscriptions", token=op).json()
    assert {"client_id": "watched", "filter": "plant/+/temp", "qos": 1, "connected": True} in subs  # null fields are left out
    retained = admin.request("GET", "/api/v1/retained?filter=plant/%23", token=op).json()
    assert [m["topic"] for m in retained] == ["plant/line1/status"] and retained[0]["preview"] == "running"
    assert admin.request("DELETE", "/api/v1/retained?topic=plant/line1/status", token=op).status == 200
    assert admin.request("GET", "/api/v1/retained?filter=%23", token=op).json() == []
    check = admin.request("GET", "/api/v1/acl/check?topic=$SYS/broker/uptime&action=subscribe&client_id=c", token=op).json()
    assert check["allowed"] is False and check["rule"]
    assert admin.request("GET", "/api/v1/stats", token=op).json()["clients_connected"] >= 2
    r = admin.request("POST", "/api/v1/clients/kick", {"client_id": "watched"}, token=op)
    assert r.status == 200, r.text
    reason_code, _ = sub.expect_disconnect()
    assert reason_code.value == 0x98  # administrative action
    assert admin.request("POST", "/api/v1/clients/kick", {"client_id": "watched"}, token=op).status in (200, 404)
    assert admin.request("POST", "/api/v1/acl/reload", {}, token=op).status == 403
    assert admin.request("POST", "/api/v1/acl/reload", {}, token=admin.token).status == 200


def test_bastion_ban_still_works(console, tmp_path):
    broker, admin = console
    url = f"https://127.0.0.1:{admin.port}"

    def ban(*args):
        return subprocess.run([BASTION_BIN, "ban", *args, "--admin", url, "--data-dir", str(broker.data_dir)],
                              capture_output=True, text=True, timeout=30)

    r = ban("add", "--ip", "192.0.2.0/24", "--duration", "15m", "--reason", "scanner")
    assert r.returncode == 0, r.stderr
    r = ban("list")
    assert "192.0.2.0/24" in r.stdout
    r = ban("remove", "--ip", "192.0.2.0/24")
    assert r.returncode == 0, r.stderr
    # Without the token: refused, exit 1.
    r = subprocess.run([BASTION_BIN, "ban", "list", "--admin", url, "--cafile", admin.ca_file, "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "401" in r.stderr


def test_admin_actions_and_logins_are_audited(broker_factory, tmp_path):
    audit = tmp_path / "audit.log"
    broker, admin = start_console(broker_factory, args=["--audit-log", str(audit)])
    assert admin.login("admin", "wrong").status == 401
    assert admin.login("admin", admin.initial_password).status == 303
    admin.request("POST", "/api/v1/bans", {"user": "mallory"}, token=admin.token)
    viewer = admin.create_token("viewer")
    assert admin.request("POST", "/api/v1/bans", {"user": "eve"}, token=viewer).status == 403
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = audit.read_text() if audit.exists() else ""
        if text.count('"event":"admin_action"') >= 3:
            break
        time.sleep(0.05)
    r = subprocess.run([BASTION_BIN, "audit", "validate", str(audit)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = audit.read_text().splitlines()
    assert any('"event":"admin_login"' in l and '"outcome":"failure"' in l and '"reason":"bad_password"' in l for l in lines)
    assert any('"event":"admin_login"' in l and '"outcome":"success"' in l for l in lines)
    assert any('"action":"ban_add"' in l and '"outcome":"success"' in l and '"user":"token:bootstrap"' in l for l in lines)
    assert any('"action":"ban_add"' in l and '"outcome":"denied"' in l and '"remote_ip":"127.0.0.1"' in l for l in lines)
    assert admin.request("GET", "/api/v1/audit?event=admin_action", token=admin.token).status == 200


def test_web_login_totp_and_cookie_flags(console):
    _, admin = console
    page = admin.get_page("/login")
    line = page.cookies()["bastion_session"][1]
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age="]:
        assert flag in line
    pre = admin.cookie
    r = admin.post_form("/login", {"_csrf": admin.csrf(page), "username": "admin", "password": admin.initial_password})
    assert r.status == 303 and r.header("location") == "/login/enrol"
    assert admin.cookie != pre
    admin.enrol_totp()
    assert not (admin.broker.data_dir / "admin-password").exists()
    overview = admin.get_page("/ui/overview")
    assert overview.status == 200 and "<svg" in overview.text
    # The session's API calls need the CSRF token as a header.
    assert admin.request("POST", "/api/v1/bans", {"ip": "192.0.2.50"}).status == 403
    csrf = admin.csrf(overview)
    assert admin.request("POST", "/api/v1/bans", {"ip": "192.0.2.50"}, headers={"X-CSRF-Token": csrf}).status == 201
    # A form without the token is refused.
    assert admin.post_form("/ui/bans/add", {"kind": "ip", "value": "0.0.0.0/0"}).status == 403


def test_lock_out_after_repeated_failures(console):
    _, admin = console
    for _ in range(5):
        assert admin.login("admin", "wrong").status == 401
    assert admin.login("admin", admin.initial_password).status == 429


# LDAP logins against the throw-away slapd of scripts/test-servers/slapd.sh.

SLAPD = ROOT / "scripts" / "test-servers" / "slapd.sh"


@pytest.fixture
def slapd(tmp_path):
    if not (shutil.which("slapd") or os.path.exists("/usr/sbin/slapd")):
        pytest.fail("slapd is missing: apt-get install -y slapd ldap-utils (scripts/test installs it)")
    port = free_port()
    directory = tmp_path / "slapd"
    subprocess.run(["bash", str(SLAPD), "start", str(directory), str(port)], check=True, capture_output=True, timeout=60)
    state = {"running": True}

    def stop():
        if state["running"]:
            subprocess.run(["bash", str(SLAPD), "stop", str(directory)], capture_output=True, timeout=60)
            state["running"] = False

    yield port, stop
    stop()


def ldap_config(port):
    return {"admin": {"ldap": {
        "url": f"ldap://127.0.0.1:{port}",
        "bind_dn": "uid=%u,ou=people,dc=bastion,dc=test",
        "group_base": "ou=groups,dc=bastion,dc=test",
        "role_map": {"viewers": "viewer", "operators": "operator", "admins": "admin"},
        "timeout_seconds": 3,
    }}}


def test_ldap_logins_map_groups_to_roles(broker_factory, slapd):
    port, stop = slapd
    broker, admin = start_console(broker_factory, config=ldap_config(port))
    for user, password, role in [("alice", "alice-pass", "operator"), ("bob", "bob-pass", "viewer"), ("carol", "carol-pass", "admin")]:
        admin.cookie = None
        r = admin.login(user, password)
        assert r.status == 303 and r.header("location") == "/ui/overview", (user, r.status, r.text[:300])
        who = admin.request("GET", "/api/v1/whoami").json()
        assert who == {"name": user, "role": role, "via": "session"}
    admin.cookie = None
    assert admin.login("alice", "wrong").status == 401
    assert admin.login("mallory", "x").status == 401
    # The directory goes away: a clear refusal, and the broker carries on.
    stop()
    admin.cookie = None
    r = admin.login("bob", "bob-pass")
    assert r.status == 503 and "directory cannot be reached" in r.text
    assert admin.request("GET", "/healthz").status == 200
    assert broker.proc.poll() is None
