"""Helpers for the bridge tests: Debian's mosquitto as the remote broker (persistent, restartable on
the same port, optionally with TLS listeners that require a client certificate), a throw-away PKI
made with openssl, a remote subscriber whose persistent session survives the remote's restarts, and
a local QoS 1 publisher that survives the local broker's death.

Everything binds 127.0.0.1 only and every wait is bounded."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import namedtuple

import paho.mqtt.client as mqtt
import paho.mqtt.publish as mqtt_publish
import pytest

import helpers_store
import wire
from conftest import free_port, wait_for_port

MOSQUITTO = shutil.which("mosquitto", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin") or "/usr/sbin/mosquitto"

Received = namedtuple("Received", "topic payload qos retain")


def run(cmd, timeout=60):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def wait_until(predicate, timeout, what, interval=0.1):
    """Poll `predicate` until it is true; raise AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ----- PKI -------------------------------------------------------------------------------------

class PKI:
    """P-256 certificates from openssl: a CA, a server certificate for 127.0.0.1 and localhost
    (serverAuth), a client certificate (clientAuth, CN plant1-bridge); for the negative tests an
    unrelated CA and a server certificate from the right CA for another host name."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca, self.ca_key = self._ca("ca", "Bridge Test CA")
        self.server_cert, self.server_key = self._issue(
            "server", "localhost", ["subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"])
        self.client_cert, self.client_key = self._issue("client", "plant1-bridge", ["extendedKeyUsage=clientAuth"])
        # Same subject name as the real CA, other key: only the signature tells them apart.
        self.other_ca, _ = self._ca("other-ca", "Bridge Test CA")
        self.wrong_name_cert, self.wrong_name_key = self._issue(
            "wrong-name", "elsewhere.example", ["subjectAltName=DNS:elsewhere.example", "extendedKeyUsage=serverAuth"])

    def _ca(self, name, cn):
        cnf = self.dir / f"{name}.cnf"
        cnf.write_text(f"[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {cn}\n"
                       "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                       "subjectKeyIdentifier = hash\n")
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        run(["openssl", "req", "-x509", "-new", "-config", cnf, "-extensions", "v3_ca", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-keyout", key, "-out", cert])
        os.chmod(key, 0o600)
        return cert, key

    def _issue(self, name, cn, ext_lines):
        key, csr, cert, ext = (self.dir / f"{name}{suffix}" for suffix in (".key", ".csr", ".pem", ".ext"))
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", f"/CN={cn}", "-keyout", key, "-out", csr])
        os.chmod(key, 0o600)  # Bastion refuses a private key others can read
        ext.write_text("\n".join(["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
                                  "authorityKeyIdentifier=keyid", *ext_lines]) + "\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
             "-set_serial", str(uuid.uuid4().int >> 65), "-days", "2", "-extfile", ext, "-out", cert])
        return cert, key

    def server_listener(self, wrong_name=False):
        """A TLS listener for MosquittoRemote(tls=[...]): client certificates from this CA required."""
        if wrong_name:
            return {"ca": self.ca, "cert": self.wrong_name_cert, "key": self.wrong_name_key}
        return {"ca": self.ca, "cert": self.server_cert, "key": self.server_key}

    def bridge_tls(self, ca=None):
        """The `tls:` block of a bridge (client certificate and the CA to verify the remote with)."""
        return {"ca": str(ca or self.ca), "cert": str(self.client_cert), "key": str(self.client_key)}


# ----- the remote: mosquitto -------------------------------------------------------------------

class MosquittoRemote:
    """Debian's mosquitto on 127.0.0.1: a plain listener on `port`, one TLS listener per entry of
    `tls` ({ca, cert, key}; `require_certificate true`) on `tls_ports`, persistence in its own
    directory so that a stop and start on the same ports keeps sessions, subscriptions and queued
    messages. `password_file` turns anonymous access off."""

    def __init__(self, workdir, port=None, tls=(), password_file=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistence = self.workdir / "persistence"
        self.persistence.mkdir(exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = [dict(t, port=free_port()) for t in tls]
        self.tls_ports = [t["port"] for t in self.tls]
        self.password_file = password_file
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.proc = None
        self.subscribers = []
        self.conf_path.write_text(self.config_text())
        self.start()

    @property
    def url(self):
        return f"mqtt://{self.host}:{self.port}"

    def tls_url(self, index=0):
        return f"mqtts://{self.host}:{self.tls_ports[index]}"

    def config_text(self):
        lines = [
            "per_listener_settings false",
            f"allow_anonymous {'false' if self.password_file else 'true'}",
            "persistence true",
            f"persistence_location {self.persistence}/",
            "persistence_file mosquitto.db",
            # No cap on what waits for a subscriber: a message lost here would look like the
            # bridge's loss.
            "max_queued_messages 0",
            "set_tcp_nodelay true",
            "log_dest stderr",
            *(f"log_type {t}" for t in ("error", "warning", "notice", "information")),
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to `mosquitto`, which cannot enter tmp_path
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        lines.append(f"listener {self.port} {self.host}")
        for t in self.tls:
            lines += [f"listener {t['port']} {self.host}", f"cafile {t['ca']}", f"certfile {t['cert']}",
                      f"keyfile {t['key']}", "require_certificate true"]
        return "\n".join(lines) + "\n"

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        log.close()
        try:
            for port in [self.port, *self.tls_ports]:
                wait_for_port(self.host, port, self.proc)
        except RuntimeError as e:
            self.kill9()
            raise RuntimeError(f"mosquitto did not start: {e}\n{self.log_text()[-2000:]}") from None

    def stop(self, timeout=10):
        """Graceful stop (SIGTERM): mosquitto writes its persistence file on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, needle, timeout=10.0):
        wait_until(lambda: needle in self.log_text(), timeout, f"mosquitto's log to show {needle!r}")

    def subscriber(self, topic="#", **kw):
        s = RemoteSubscriber(self, topic, **kw)
        self.subscribers.append(s)
        return s

    def publish(self, messages, username=None, password=None):
        """Publish [(topic, payload, qos, retain)] on the plain listener and wait for them to be
        acknowledged (paho's publish.multiple)."""
        msgs = [{"topic": t, "payload": p, "qos": q, "retain": r} for t, p, q, r in messages]
        auth = {"username": username, "password": password} if username else None
        mqtt_publish.multiple(msgs, hostname=self.host, port=self.port, client_id="remote-pub-" + uuid.uuid4().hex[:8],
                              auth=auth, protocol=mqtt.MQTTv311)

    def close(self):
        for s in self.subscribers:
            s.close()
        self.stop()


@pytest.fixture
def mosquitto_factory(tmp_path):
    """mosquitto_factory(tls=[...], password_file=...) → a started MosquittoRemote, stopped (with its
    subscribers) after the test."""
    started = []

    def make(name=None, **kw):
        remote = MosquittoRemote(tmp_path / (name or f"mosquitto{len(started)}"), **kw)
        started.append(remote)
        return remote

    yield make
    for remote in started:
        remote.close()


# ----- the remote subscriber -------------------------------------------------------------------

class RemoteSubscriber:
    """A QoS 1 subscriber on the remote's plain listener with a persistent session: fixed client
    id, MQTT 3.1.1 clean session false. Mosquitto's persistence keeps its subscription and the
    messages queued for it across a restart, and paho's network thread reconnects by itself
    (every 1–2 s), so a restart loses nothing. Records every message in arrival order."""

    def __init__(self, remote, topic="#", qos=1, client_id=None, username=None, password=None):
        self.topic, self.qos = topic, qos
        self.client_id = client_id or "remote-sub-" + uuid.uuid4().hex[:8]
        self.lock = threading.Lock()
        self.received = []          # Received tuples in arrival order
        self.session_present = []   # CONNACK session-present flag of every connection
        self.refusals = []          # CONNACK failures
        self.subscribed = threading.Event()
        self.c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv311, clean_session=False)
        self.c.enable_logger(None)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.reconnect_delay_set(1, 2)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.connect(remote.host, remote.port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            self.close()
            raise AssertionError(f"remote subscriber {self.client_id} could not subscribe: {self.refusals}")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.refusals.append(str(reason_code))
            return
        with self.lock:
            self.session_present.append(flags.session_present)
            first = len(self.session_present) == 1
        # A kept session already holds the subscription; subscribing again would resend retained
        # messages, which would read as duplicates.
        if first or not flags.session_present:
            client.subscribe(self.topic, self.qos)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if all(not rc.is_failure for rc in reason_codes):
            self.subscribed.set()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.received.append(Received(message.topic, bytes(message.payload), message.qos, bool(message.retain)))

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def messages(self):
        """(topic, payload) in arrival order."""
        return [(r.topic, r.payload) for r in self.snapshot()]

    def wait_for(self, predicate, timeout, what="messages at the remote"):
        """Wait until predicate(snapshot) is true (polled, so it may be costly); returns the snapshot."""
        found = []

        def check():
            snap = self.snapshot()
            if predicate(snap):
                found.append(snap)
                return True
            return False

        wait_until(check, timeout, what, interval=0.2)
        return found[0]

    def expect(self, topic, payload=None, timeout=10.0):
        """Wait for a message on `topic` (with `payload`, if given); returns it."""
        payload = payload.encode() if isinstance(payload, str) else payload

        def match(r):
            return r.topic == topic and (payload is None or r.payload == payload)

        snap = self.wait_for(lambda s: any(match(r) for r in s), timeout, f"{topic} {payload!r} at the remote")
        return next(r for r in snap if match(r))

    def count(self, topic, payload=None):
        payload = payload.encode() if isinstance(payload, str) else payload
        return sum(1 for r in self.snapshot() if r.topic == topic and (payload is None or r.payload == payload))

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


# ----- sequence numbers ------------------------------------------------------------------------

def sequence_payload(n):
    return b"seq=%06d" % n


def sequence_of(payload):
    return int(bytes(payload).split(b"=", 1)[1])


def in_order_prefix(seqs):
    """(k, stray): `seqs` delivers 0..k-1 in order, where a number seen before may come again (at
    least once: a cut replays what was in flight); `stray` is the first number that arrived before
    its turn (a gap or a reordering), None if there was none."""
    expected = 0
    for s in seqs:
        if s < expected:
            continue
        if s == expected:
            expected += 1
            continue
        return expected, s
    return expected, None


class _Endpoint:
    def __init__(self, host, port):
        self.host, self.port = host, port


class SequencePublisher(threading.Thread):
    """Publishes `count` QoS 1 messages to a local broker from a thread: message i on
    topics[i % len(topics)] with payload sequence_payload(i // len(topics)), so each topic carries
    its own 0, 1, 2, … At most `window` are unacknowledged (fewer if a 5.0 server's Receive Maximum
    says so). When the connection is lost (the broker
    was killed) it connects again with a new clean session and sends everything not acknowledged
    again, oldest first: duplicates are possible, gaps are not. Only messages below `limit`
    (raise it from the test) are sent, so a test can hold the publisher at a known point."""

    def __init__(self, broker, topics, count, window=32, version=5, timeout=170, retry=0.1):
        super().__init__(daemon=True)
        self.endpoint = _Endpoint(broker.host, broker.port)
        self.topics, self.count, self.window, self.version = list(topics), count, window, version
        self.retry = retry  # seconds between attempts while nothing listens
        self.deadline = time.monotonic() + timeout
        self.limit = count
        self.acked = bytearray(count)
        self.base = 0            # every message below it is acknowledged
        self.refused = []        # (i, reason code) of failure PUBACKs
        self.connections = 0
        self.last_error = None
        self.stopping = threading.Event()
        self.client_id = "bridge-load-" + uuid.uuid4().hex[:8]

    def topic_of(self, i):
        return self.topics[i % len(self.topics)]

    def per_topic(self, topic):
        """How many messages `topic` gets in all."""
        k = self.topics.index(topic)
        return len(range(k, self.count, len(self.topics)))

    def done(self):
        return self.base >= self.count

    def run(self):
        while not self.done() and not self.stopping.is_set() and time.monotonic() < self.deadline:
            try:
                conn = helpers_store.Conn(self.endpoint, self.version, timeout=2.0)
            except OSError as e:
                self.last_error = e
                time.sleep(self.retry)  # the broker is (re)starting
                continue
            try:
                connack = conn.connect(self.client_id, clean=True)
            except (AssertionError, OSError) as e:
                self.last_error = e
                conn.close()
                time.sleep(1.0)  # refused: retrying at once would count as reconnecting too often
                continue
            self.connections += 1
            window = min(self.window, connack.props.get("ReceiveMaximum", 65535) if self.version == 5 else self.window)
            try:
                self._pump(conn, window)
            except OSError as e:
                self.last_error = e
            finally:
                conn.close()

    def _ack(self, i):
        self.acked[i] = 1
        while self.base < self.count and self.acked[self.base]:
            self.base += 1

    def _pump(self, conn, window):
        inflight = {}  # packet id -> message index
        next_pid = 1
        i = self.base
        while not self.done() and not self.stopping.is_set() and time.monotonic() < self.deadline:
            out = bytearray()
            while i < min(self.limit, self.count) and len(inflight) < window:
                if self.acked[i]:
                    i += 1
                    continue
                while next_pid in inflight:
                    next_pid = next_pid % 65535 + 1
                out += wire.publish(self.topic_of(i), sequence_payload(i // len(self.topics)), qos=1, pid=next_pid,
                                    version=self.version)
                inflight[next_pid] = i
                next_pid = next_pid % 65535 + 1
                i += 1
            if out and not conn.send(bytes(out)):
                return
            if not inflight:
                time.sleep(0.02)  # held at `limit`
                continue
            packets = conn.read(10.0)
            if not packets:
                return  # closed, or 10 s without an acknowledgement: connect again and resend
            for p in packets:
                if p.type == wire.PUBACK and p.pid in inflight:
                    n = inflight.pop(p.pid)
                    if p.rc is not None and p.rc >= 0x80:
                        self.refused.append((n, p.rc))
                    self._ack(n)
                elif p.type == wire.DISCONNECT:
                    return
            if conn.closed:
                return


# ----- local observers -------------------------------------------------------------------------

def bridge_states(client, name, seconds):
    """Values of $SYS/bastion/bridges/NAME/state an already subscribed mqttclient.Client sees in
    `seconds`, in order (the retained value first)."""
    states = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return states
        try:
            m = client.messages.get(timeout=left)
        except Exception:
            return states
        if m.topic == f"$SYS/bastion/bridges/{name}/state":
            states.append(bytes(m.payload).decode(errors="replace").strip())


def audit_records(path):
    """Records of a JSON-lines audit log written so far (a line still being written is skipped)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def closed_port():
    """A loopback port that refuses connections for as long as the returned socket stays open:
    bound, never listening, so no other test can take it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]
