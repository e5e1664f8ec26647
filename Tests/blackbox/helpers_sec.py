"""Password files, ACL files, secured brokers and raw CONNACK checks for the authentication,
authorization and reload black-box tests. Every wait is bounded."""

import pathlib
import signal
import subprocess
import tempfile
import time
import uuid

import wire
from conftest import BASTION_BIN, Broker
from mqttclient import V5, V31, V311, Client

# CONNACK codes: (MQTT 5.0 reason code, MQTT 3.1.1 return code).
BAD_CREDENTIALS = {V5: 0x86, V311: 0x04, V31: 0x04}
NOT_AUTHORIZED = {V5: 0x87, V311: 0x05, V31: 0x05}
SUBACK_REFUSED = {V5: 0x87, V311: 0x80, V31: 0x80}
RAW_VERSION = {V5: 5, V311: 4, V31: 3}


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- password and ACL files

def mosquitto_passwd(path, users, create=True):
    """Write `users` ({name: password}) with Debian's mosquitto_passwd (-c for the first, then -b)."""
    path = pathlib.Path(path)
    for i, (user, password) in enumerate(users.items()):
        args = ["mosquitto_passwd"] + (["-c"] if create and i == 0 else []) + ["-b", str(path), user, password]
        subprocess.run(args, check=True, capture_output=True, timeout=10)
    return path


def mosquitto_hash(password, algorithm=None):
    """A hash written by mosquitto_passwd (`-H sha512` for the old $6$ scheme)."""
    with tempfile.TemporaryDirectory() as d:
        f = pathlib.Path(d) / "p"
        args = ["mosquitto_passwd", "-c"] + (["-H", algorithm] if algorithm else []) + ["-b", str(f), "u", password]
        subprocess.run(args, check=True, capture_output=True, timeout=10)
        return f.read_text().strip().split(":", 1)[1]


def add_user_line(path, name, password, algorithm=None):
    """Append `name:HASH` for names mosquitto_passwd would not take (`+`, `a/b`, ...): the hash does
    not depend on the name, so it is made for a placeholder and written under `name`."""
    with open(path, "a") as f:
        f.write(f"{name}:{mosquitto_hash(password, algorithm)}\n")
    return path


def bastion(*args, timeout=30, input=None, cwd=None):
    """Run the bastion CLI; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BASTION_BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout, input=input,
                       cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def write(path, text):
    path = pathlib.Path(path)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- brokers

class Secured:
    """A broker started with --password-file and (optionally) --acl-file, with the paths kept so a
    test can rewrite them and reload."""

    def __init__(self, directory, users, acl=None, config=None, anonymous=False, args=None, name="secured",
                 odd_users=None):
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.passwd = directory / "passwd"
        self.acl = directory / "acl.conf"
        self.users = dict(users)
        mosquitto_passwd(self.passwd, self.users)
        for name_, password in (odd_users or {}).items():
            add_user_line(self.passwd, name_, password)
            self.users[name_] = password
        extra = ["--password-file", str(self.passwd)]
        if acl is not None:
            write(self.acl, acl)
            extra += ["--acl-file", str(self.acl)]
        self.broker = Broker(directory / name, config=config, args=extra + list(args or []), anonymous=anonymous)

        self.clients = []

    def client(self, user=None, protocol=V5, client_id=None, **kw):
        """A connected paho client for `user` (None: anonymous); closed when the broker stops."""
        password = self.users[user] if user is not None else None
        c = Client(self.broker, protocol=protocol, username=user, password=password, client_id=client_id, **kw)
        self.clients.append(c)
        return c

    def stop(self):
        for c in self.clients:
            close_quietly(c)
        self.broker.stop()


def close_quietly(client):
    """End a test client without waiting: it may already be disconnected, dropped or refused."""
    try:
        if client.c.is_connected() and client.c.socket() is not None:
            client.c.disconnect()
    except Exception:
        pass
    client.c.loop_stop()


def reload(broker, ok=True, timeout=5.0):
    """SIGHUP, then wait for the broker to log that it applied (ok) or rejected the new files."""
    marker = "configuration reloaded" if ok else "configuration reload rejected"
    if not getattr(broker, "hup_ready", False):
        # The broker binds its listeners before it traps SIGHUP, and an untrapped SIGHUP kills it
        # (see test_sighup_right_after_start_does_not_kill_the_broker): wait for startup to finish.
        wait_until(lambda: "bastion started" in broker.log_text(), timeout, "broker did not finish starting")
        time.sleep(0.3)
        broker.hup_ready = True
    before = broker.log_text().count(marker)
    broker.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: broker.log_text().count(marker) > before, timeout,
               f"broker did not log '{marker}' after SIGHUP")


def wait_until(predicate, timeout=5.0, message="condition not reached", interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(message)


# ---------------------------------------------------------------- raw CONNECT

def connack(broker, protocol=V5, client_id=None, username=None, password=None, timeout=5.0):
    """Send one CONNECT on a raw socket; return the CONNACK (flags, code, whole packet bytes), or None
    when the broker closes the connection without one."""
    r = wire.Raw(broker, timeout=timeout)
    try:
        cid = client_id if client_id is not None else unique("raw")
        r.send(wire.connect(cid, version=RAW_VERSION[protocol], username=username, password=password))
        p = r.read_packet(timeout)
        if p is None:
            return None
        first, body = p
        assert first >> 4 == 2, f"expected CONNACK, got packet type {first >> 4}"
        return body[0], body[1], bytes([first]) + body
    finally:
        r.close()


def connack_code(broker, protocol=V5, **kw):
    got = connack(broker, protocol, **kw)
    assert got is not None, "broker closed the connection without a CONNACK"
    return got[1]


def reason(code):
    """paho ReasonCode (or int) -> int."""
    return code if isinstance(code, int) else code.value


def suback(client, topic, qos=1):
    """SUBACK code of one filter as an int."""
    return reason(client.subscribe(topic, qos=qos)[0])


# ---------------------------------------------------------------- fixtures (import into test modules)

import pytest  # noqa: E402


@pytest.fixture
def secured(tmp_path):
    """secured(users={...}, acl="...", config={...}, anonymous=False, args=[...]) -> Secured; stopped
    after the test."""
    started = []

    def make(users, acl=None, config=None, anonymous=False, args=None, odd_users=None):
        s = Secured(tmp_path / f"sec{len(started)}", users, acl=acl, config=config, anonymous=anonymous, args=args,
                    odd_users=odd_users)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()
