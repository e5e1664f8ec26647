"""Authentication: Mosquitto password files (written by Debian's mosquitto_passwd and by
`bastion passwd`), CONNACK codes for refused clients in 3.1.1 and 5.0, the device allowlist, the
default credentials created on first start, and passwords never reaching the log.

Which refusal code a broker picks for which failure is partly Bastion's decision (the specification
offers 0x86 and 0x87 / 0x04 and 0x05 without tying them to causes), so most tests are bastion_only."""

import os
import re
import stat
import subprocess

import pytest

from conftest import BASTION_BIN, free_port, wait_for_port
from helpers_sec import (BAD_CREDENTIALS, NOT_AUTHORIZED, Secured, add_user_line, bastion, connack, connack_code,
                         mosquitto_passwd, reload, secured, unique, write)  # noqa: F401 (fixture)
from mqttclient import V5, V31, V311, Client

pytestmark = pytest.mark.bastion_only

PROTOCOLS = [pytest.param(V311, id="3.1.1"), pytest.param(V5, id="5.0")]
USERS = {"alice": "alice-pw-3141", "bob": "bob-pw-2718"}


# ---------------------------------------------------------------- password files

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_users_from_mosquitto_passwd_file_connect(secured, protocol):
    s = secured(USERS)
    for user in USERS:
        c = s.client(user, protocol=protocol)  # asserts a successful CONNACK
        c.publish("plain/topic", b"x", qos=1)  # no ACL: ordinary topics are open
        c.disconnect()
    assert connack_code(s.broker, protocol, username="alice", password=USERS["alice"]) == 0


def test_mqtt_31_clients_get_the_same_codes_as_311(secured):
    s = secured(USERS)
    assert connack_code(s.broker, V31, username="alice", password=USERS["alice"]) == 0
    assert connack_code(s.broker, V31, username="alice", password="wrong") == 0x04
    assert connack_code(s.broker, V31, username="nobody", password="wrong") == 0x04
    assert connack_code(s.broker, V31) == 0x05


@pytest.mark.parametrize("password", ["pässwörd-ünïcode", "with spaces and : colons", "x" * 4096])
def test_unusual_passwords_from_mosquitto_passwd(secured, password):
    s = secured({"alice": password})
    assert connack_code(s.broker, V5, username="alice", password=password) == 0
    assert connack_code(s.broker, V5, username="alice", password=password[:-1]) == 0x86


def test_huge_credentials_are_refused_cleanly(secured):
    # Over max_connect_packet_size (16 KiB): refused from the fixed header, before buffering;
    # a 5.0 client is told why (0x95 packet too large).
    s = secured(USERS)
    assert connack_code(s.broker, V5, username="u" * 60000, password="p" * 60000) == 0x95
    assert connack_code(s.broker, V5, username="alice", password="p" * 60000) == 0x95
    # Within it, a long user name is refused before any lookup, like a wrong password.
    assert connack_code(s.broker, V5, username="u" * 5000, password="p" * 5000) == 0x86
    assert connack_code(s.broker, V5, username="alice", password="p" * 5000) == 0x86
    assert connack_code(s.broker, V5, username="alice", password=USERS["alice"]) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_password_and_unknown_user_get_the_same_answer(secured, protocol):
    s = secured(USERS)
    wrong = connack(s.broker, protocol, client_id="same-id", username="alice", password="not-alices")
    unknown = connack(s.broker, protocol, client_id="same-id", username="nobody", password="not-alices")
    assert wrong is not None and unknown is not None
    assert wrong[1] == BAD_CREDENTIALS[protocol]
    # Byte for byte the same CONNACK (reason string included): nothing tells the two cases apart.
    assert wrong[2] == unknown[2]
    assert wrong[0] == 0, "session present must be 0 on a refused CONNECT"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_anonymous_refused_without_allow_anonymous(secured, protocol):
    s = secured(USERS)
    assert connack_code(s.broker, protocol) == NOT_AUTHORIZED[protocol]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_username_without_password_is_bad_credentials(secured, protocol):
    s = secured(USERS)
    assert connack_code(s.broker, protocol, username="alice") == BAD_CREDENTIALS[protocol]


def test_password_without_username_is_bad_credentials_on_5(secured):
    s = secured(USERS)
    assert connack_code(s.broker, V5, password=USERS["alice"]) == 0x86


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_empty_username_with_password_is_refused(secured, protocol):
    s = secured(USERS)
    assert connack_code(s.broker, protocol, username="", password=USERS["alice"]) == BAD_CREDENTIALS[protocol]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_paho_client_sees_the_refusal(secured, protocol):
    s = secured(USERS)
    c = Client(s.broker, protocol=protocol, username="alice", password="wrong", auto_connect=False)
    _, rc, _ = c.connect(expect_success=False)
    assert rc.is_failure
    assert rc.value == 0x86  # paho maps 3.1.1 return code 4 to "Bad user name or password" too
    c.c.loop_stop()


@pytest.mark.parametrize("algorithm", ["sha512", "sha512-pbkdf2"])
def test_every_mosquitto_hash_scheme_is_accepted(secured, tmp_path, algorithm):
    s = secured({"alice": "a-pw"})
    add_user_line(s.passwd, "carol", "carol-pw", algorithm=algorithm)
    expected = "$6$" if algorithm == "sha512" else "$7$"
    assert f"carol:{expected}" in s.passwd.read_text()
    reload(s.broker)
    assert connack_code(s.broker, V5, username="carol", password="carol-pw") == 0
    assert connack_code(s.broker, V5, username="carol", password="carol-px") == 0x86


def test_password_file_comments_blank_lines_and_spaces(secured):
    s = secured({"alice": "a-pw"})
    text = s.passwd.read_text()
    name, hashed = text.strip().split(":", 1)
    write(s.passwd, f"# users\n\n  {name} : {hashed}  \n")
    reload(s.broker)
    assert connack_code(s.broker, V311, username="alice", password="a-pw") == 0


def test_broken_password_file_refuses_to_start_naming_the_line(tmp_path):
    passwd = mosquitto_passwd(tmp_path / "passwd", {"alice": "a-pw"})
    with open(passwd, "a") as f:
        f.write("mallory:Plaintext-Never-Logged-42\n")
    port = free_port()
    p = subprocess.run([BASTION_BIN, "serve", "--listen", f"mqtt://127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"),
                        "--password-file", str(passwd)], capture_output=True, text=True, timeout=15)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert f"{passwd}:2" in out, f"error does not name FILE:LINE: {out!r}"
    assert "Plaintext-Never-Logged-42" not in out


# ---------------------------------------------------------------- bastion passwd interop

def mosquitto_broker(tmp_path, password_file):
    """Debian's mosquitto on a free loopback port with `password_file`; returns (proc, port)."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous false", f"password_file {password_file}"]
    if os.geteuid() == 0:
        lines.append("user root")  # otherwise it drops to `mosquitto`, which cannot read a 0600 file
    conf.write_text("\n".join(lines) + "\n")
    log = open(tmp_path / "mosquitto.log", "wb")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_for_port("127.0.0.1", port, proc)
    return proc, port


class Endpoint:
    def __init__(self, port):
        self.host, self.port = "127.0.0.1", port


def test_bastion_passwd_entry_works_with_mosquitto_and_bastion(tmp_path, broker_factory):
    passwd = tmp_path / "passwd"
    code, out, err = bastion("passwd", "-c", "-b", passwd, "alice", "Alice-Interop-77")
    assert code == 0, err
    assert "Alice-Interop-77" not in out + err
    line = passwd.read_text().strip()
    assert re.fullmatch(r"alice:\$7\$50000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", line), line
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600

    proc, port = mosquitto_broker(tmp_path, passwd)
    try:
        ep = Endpoint(port)
        assert connack_code(ep, V311, username="alice", password="Alice-Interop-77") == 0
        # Mosquitto answers a wrong password with 0x05 (not authorized); any refusal will do here.
        assert connack_code(ep, V311, username="alice", password="alice-interop-77") in (0x04, 0x05)
        assert connack_code(ep, V5, username="alice", password="Alice-Interop-77") == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    b = broker_factory(anonymous=False, args=["--password-file", str(passwd)])
    assert connack_code(b, V5, username="alice", password="Alice-Interop-77") == 0


def test_bastion_passwd_and_mosquitto_passwd_edit_the_same_file(secured, tmp_path):
    s = secured({"alice": "a-pw"})                    # written by mosquitto_passwd
    code, _, err = bastion("passwd", "-b", s.passwd, "bob", "b-pw")
    assert code == 0, err
    mosquitto_passwd(s.passwd, {"carol": "c-pw"}, create=False)  # mosquitto_passwd reads bastion's file
    reload(s.broker)
    for user, pw in [("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw")]:
        assert connack_code(s.broker, V5, username=user, password=pw) == 0, user

    code, _, err = bastion("passwd", "-D", s.passwd, "bob")
    assert code == 0, err
    reload(s.broker)
    assert connack_code(s.broker, V5, username="bob", password="b-pw") == 0x86
    assert connack_code(s.broker, V5, username="alice", password="a-pw") == 0


def test_bastion_passwd_refuses_a_username_with_a_colon(tmp_path):
    code, _, err = bastion("passwd", "-c", "-b", tmp_path / "p", "a:b", "pw")
    assert code != 0
    assert not (tmp_path / "p").exists() or "a:b" not in (tmp_path / "p").read_text()


# ---------------------------------------------------------------- device allowlist

ALLOW_USERS = {"gw": "gw-pw", "meter": "meter-pw", "olga": "olga-pw", "other": "other-pw", "twofold": "tf-pw"}
ALLOWLIST = {
    "auth": {
        "roles": {"operators": ["olga", "twofold"]},
        "allowed_clients": {
            "gw": ["line1-gw-*"],
            "meter": ["meter-01"],
            "operators": ["ops-console-*"],
            "twofold": ["tf-own"],
            "*": ["plant-*"],
        },
        "acl": [{"all": True, "access": "readwrite", "topic": "x/#"}],
    }
}


@pytest.fixture(scope="module")
def allowlist(tmp_path_factory):
    s = Secured(tmp_path_factory.mktemp("allowlist"), ALLOW_USERS, config=ALLOWLIST, anonymous=True)
    yield s
    s.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("user,client_id,allowed", [
    ("gw", "line1-gw-7", True),
    ("gw", "line1-gw-", True),              # `*` also matches nothing
    ("gw", "line2-gw-7", False),
    ("gw", "xline1-gw-7", False),           # the pattern is anchored at both ends
    ("gw", "plant-1", False),               # an own entry replaces the "*" fallback
    ("meter", "meter-01", True),
    ("meter", "meter-011", False),
    ("meter", "meter-0", False),
    ("olga", "ops-console-3", True),        # through her role
    ("olga", "plant-3", False),
    ("twofold", "tf-own", True),            # own entry and role entry: their union
    ("twofold", "ops-console-9", True),
    ("twofold", "tf-other", False),
    ("other", "plant-42", True),            # no entry of its own: the "*" entry
    ("other", "gw-42", False),
    (None, "plant-anon", True),             # anonymous clients fall back to "*" too
    (None, "anon-1", False),
])
def test_device_allowlist(allowlist, protocol, user, client_id, allowed):
    s = allowlist
    password = ALLOW_USERS[user] if user else None
    code = connack_code(s.broker, protocol, client_id=client_id, username=user, password=password)
    assert code == (0 if allowed else NOT_AUTHORIZED[protocol]), f"{user} as {client_id}: {code:#x}"


def test_allowlist_without_default_entry_leaves_others_unrestricted(secured):
    config = {"auth": {"allowed_clients": {"gw": ["line1-gw-*"]},
                       "acl": [{"all": True, "access": "readwrite", "topic": "x/#"}]}}
    s = secured({"gw": "gw-pw", "other": "other-pw"}, config=config)
    assert connack_code(s.broker, V5, client_id="anything-at-all", username="other", password="other-pw") == 0
    assert connack_code(s.broker, V5, client_id="anything-at-all", username="gw", password="gw-pw") == 0x87


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_require_client_id_equals_username(secured, protocol):
    config = {"auth": {"require_client_id_equals_username": True,
                       "allowed_clients": {"line1-gw-3": ["line1-gw-*"]},
                       "acl": [{"all": True, "access": "readwrite", "topic": "x/#"}]}}
    users = {"meter-07": "m-pw", "line1-gw-3": "g-pw", "line2-gw-3": "g2-pw"}
    s = secured(users, config=config, anonymous=True)
    ok, refused = 0, NOT_AUTHORIZED[protocol]
    assert connack_code(s.broker, protocol, client_id="meter-07", username="meter-07", password="m-pw") == ok
    assert connack_code(s.broker, protocol, client_id="meter-08", username="meter-07", password="m-pw") == refused
    assert connack_code(s.broker, protocol, client_id="METER-07", username="meter-07", password="m-pw") == refused
    # Both rules apply together.
    assert connack_code(s.broker, protocol, client_id="line1-gw-3", username="line1-gw-3", password="g-pw") == ok
    assert connack_code(s.broker, protocol, client_id="line1-gw-4", username="line1-gw-3", password="g-pw") == refused
    # Anonymous clients are not affected.
    assert connack_code(s.broker, protocol, client_id="anon-77") == ok


def test_require_client_id_equals_username_refuses_assigned_ids(secured):
    config = {"auth": {"require_client_id_equals_username": True}}
    s = secured({"meter-07": "m-pw"}, config=config)
    # 5.0 empty client id: the broker would assign "bastion-…", which is not the username.
    assert connack_code(s.broker, V5, client_id="", username="meter-07", password="m-pw") == 0x87


# ---------------------------------------------------------------- default credentials

def banner_password(broker):
    found = re.findall(r"password:\s+(\S+)", broker.log_text())
    return found


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_first_start_creates_admin_with_a_printed_password(broker_factory, protocol):
    b = broker_factory(anonymous=False)
    passwd = b.data_dir / "passwd"
    assert passwd.exists()
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    lines = [l for l in passwd.read_text().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("admin:$7$"), lines
    found = banner_password(b)
    assert len(found) == 1, f"expected one printed password, got {len(found)}"
    password = found[0]
    assert len(password) >= 16
    assert connack_code(b, protocol, username="admin", password=password) == 0
    assert connack_code(b, protocol, username="admin", password=password + "x") == BAD_CREDENTIALS[protocol]
    assert connack_code(b, protocol) == NOT_AUTHORIZED[protocol]
    c = Client(b, protocol=protocol, username="admin", password=password)
    c.disconnect()


def test_default_credentials_are_kept_and_not_printed_again(broker_factory):
    b = broker_factory(anonymous=False)
    password = banner_password(b)[0]
    before = (b.data_dir / "passwd").read_text()
    b.restart()
    assert (b.data_dir / "passwd").read_text() == before
    assert b.log_text().count(password) == 1, "the password must be shown only on the first start"
    assert connack_code(b, V5, username="admin", password=password) == 0


def test_each_first_start_gets_a_different_password(broker_factory):
    a = broker_factory(anonymous=False)
    b = broker_factory(anonymous=False)
    assert banner_password(a)[0] != banner_password(b)[0]


def test_no_default_credentials_when_anonymous_is_allowed(broker_factory):
    b = broker_factory(anonymous=True)
    assert not (b.data_dir / "passwd").exists()
    assert connack_code(b, V5) == 0


# ---------------------------------------------------------------- secrets stay out of the log

def test_passwords_never_reach_the_log(secured):
    users = {"alice": "Correct-Horse-7781"}
    s = secured(users)
    hashed = s.passwd.read_text().split(":", 1)[1].strip()
    c = s.client("alice")
    c.publish("t/x", b"1", qos=1)
    assert connack_code(s.broker, V5, username="alice", password="Wrong-Battery-1234") == 0x86
    assert connack_code(s.broker, V311, username="alice", password="Wrong-Battery-1235") == 0x04
    assert connack_code(s.broker, V5, username="nobody", password="Staple-9876") == 0x86
    assert connack_code(s.broker, V5, password="Orphan-5432") == 0x86
    # A broken password file on reload: the error names the line, not its content.
    with open(s.passwd, "a") as f:
        f.write("mallory:Plaintext-Secret-5555\n")
    reload(s.broker, ok=False)
    c.disconnect()
    log = s.broker.log_text()
    for secret in ["Correct-Horse-7781", "Wrong-Battery-1234", "Wrong-Battery-1235", "Staple-9876", "Orphan-5432",
                   "Plaintext-Secret-5555", hashed, hashed.split("$")[-1]]:
        assert secret not in log, f"secret {secret[:12]}… found in broker.log"
    assert f"{s.passwd}:2" in log
