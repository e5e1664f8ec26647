"""Interoperability with the mosquitto_pub / mosquitto_sub command line clients."""

import queue
import subprocess
import threading

import pytest

from mqttclient import V31, V311, V5, Client

VERSIONS = [("mqttv5", V5), ("mqttv311", V311), ("mqttv31", V31)]
FORMAT = "%q|%r|%t|%p"


def base(broker, version):
    return ["-h", broker.host, "-p", str(broker.port), "-V", version]


class MosqSub:
    """mosquitto_sub in debug mode: waits for its SUBACK, then collects formatted messages."""

    def __init__(self, broker, topic, version="mqttv311", qos=0, count=None, timeout=10, extra=()):
        # Line-buffered: the SUBACK debug line must reach us before we publish.
        cmd = ["stdbuf", "-oL", "mosquitto_sub", *base(broker, version), "-t", topic, "-q", str(qos), "-d", "-F", FORMAT,
               "-W", str(timeout), *extra]
        if count is not None:
            cmd += ["-C", str(count)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.debug = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"mosquitto_sub printed nothing more; debug: {self.debug}") from None

    def wait_subscribed(self, timeout=5):
        while True:
            line = self._next(timeout)
            assert line is not None, f"mosquitto_sub exited: {self.debug}"
            self.debug.append(line)
            if line.startswith("Subscribed"):
                return line

    def message(self, timeout=5):
        """Next message as (qos, retain, topic, payload)."""
        while True:
            line = self._next(timeout)
            assert line is not None, f"mosquitto_sub exited without a message: {self.debug}"
            if line.startswith("Client ") or line.startswith("Subscribed"):
                self.debug.append(line)
                continue
            q, r, t, p = line.split("|", 3)
            return int(q), int(r), t, p

    def no_message(self):
        """Collect until exit (bounded by -W): no message lines."""
        while True:
            line = self._next(15)
            if line is None:
                return
            assert line.startswith(("Client ", "Subscribed", "Timed out")), f"unexpected message: {line}"

    def close(self):
        """Let a -C run finish by itself, then stop it; mosquitto_sub may ignore SIGTERM mid-flow."""
        for stop in (None, self.proc.terminate, self.proc.kill):
            if stop is not None:
                stop()
            try:
                self.proc.wait(timeout=2)
                return
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()


def mosquitto_pub(broker, version, *args, stdin=None):
    res = subprocess.run(["mosquitto_pub", *base(broker, version), *args], input=stdin, text=True,
                         capture_output=True, timeout=15)
    assert res.returncode == 0, f"mosquitto_pub failed: {res.stdout}{res.stderr}"
    return res


@pytest.mark.parametrize("version", [v for v, _ in VERSIONS])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_mosquitto_sub(broker, version, qos):
    sub = MosqSub(broker, "interop/cli", version, qos=qos, count=1)
    sub.wait_subscribed()
    mosquitto_pub(broker, version, "-t", "interop/cli", "-m", f"hello-{qos}", "-q", str(qos))
    assert sub.message() == (qos, 0, "interop/cli", f"hello-{qos}")
    sub.close()


@pytest.mark.parametrize("version,protocol", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_paho(broker, version, protocol, qos):
    sub = Client(broker, protocol=protocol)
    sub.subscribe("interop/topaho", 2)
    mosquitto_pub(broker, version, "-t", "interop/topaho", "-m", "from-cli", "-q", str(qos))
    m = sub.expect_message()
    assert (m.payload, m.qos, m.retain) == (b"from-cli", qos, False)


@pytest.mark.parametrize("version,protocol", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_to_mosquitto_sub(broker, version, protocol, qos):
    sub = MosqSub(broker, "interop/fromp", version, qos=2, count=1)
    sub.wait_subscribed()
    pub = Client(broker, protocol=protocol)
    pub.publish("interop/fromp", b"from-paho", qos=qos)
    assert sub.message() == (qos, 0, "interop/fromp", "from-paho")
    sub.close()


@pytest.mark.parametrize("version", ["mqttv5", "mqttv311"])
def test_retained_message_with_cli_clients(broker, version):
    mosquitto_pub(broker, version, "-t", "interop/ret", "-m", "kept", "-q", "1", "-r")
    sub = MosqSub(broker, "interop/ret", version, qos=1, count=1)
    assert sub.message() == (1, 1, "interop/ret", "kept")
    sub.close()
    # A zero-length retained message clears it [MQTT-3.3.1-10].
    mosquitto_pub(broker, version, "-t", "interop/ret", "-n", "-r")
    sub = MosqSub(broker, "interop/ret", version, qos=1, timeout=1)
    sub.no_message()


@pytest.mark.parametrize("version", ["mqttv5", "mqttv311"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_lines_arrive_in_order(broker, version, qos):
    sub = Client(broker, protocol=V5)
    sub.subscribe("interop/lines", 2)
    lines = [f"line-{i:03d}" for i in range(50)]
    mosquitto_pub(broker, version, "-t", "interop/lines", "-l", "-q", str(qos), stdin="\n".join(lines) + "\n")
    got = [m.payload.decode() for m in sub.expect_messages(50)]
    assert got == lines


def test_mosquitto_sub_persistent_session(broker):
    # -c (clean session off) with a fixed id: QoS 1 published while it is away is delivered on return.
    args = ["-c", "-i", "cli-persistent"]
    sub = MosqSub(broker, "interop/pers", "mqttv311", qos=1, count=1, extra=args)
    sub.wait_subscribed()
    mosquitto_pub(broker, "mqttv311", "-t", "interop/pers", "-m", "first", "-q", "1")
    assert sub.message()[3] == "first"
    sub.proc.wait(timeout=5)
    mosquitto_pub(broker, "mqttv311", "-t", "interop/pers", "-m", "while-away", "-q", "1")
    sub = MosqSub(broker, "interop/pers", "mqttv311", qos=1, count=1, extra=args)
    assert sub.message() == (1, 0, "interop/pers", "while-away")
    sub.close()


def test_mosquitto_pub_v5_properties_reach_paho(broker):
    sub = Client(broker, protocol=V5)
    sub.subscribe("interop/props", 1)
    mosquitto_pub(broker, "mqttv5", "-t", "interop/props", "-m", "{}", "-q", "1",
                  "-D", "publish", "user-property", "origin", "cli",
                  "-D", "publish", "content-type", "application/json",
                  "-D", "publish", "message-expiry-interval", "300")
    m = sub.expect_message()
    assert m.properties.UserProperty == [("origin", "cli")]
    assert m.properties.ContentType == "application/json"
    assert 0 < m.properties.MessageExpiryInterval <= 300


def test_mosquitto_sub_wildcards(broker):
    sub = MosqSub(broker, "interop/wild/+/x/#", "mqttv5", qos=1, count=2)
    sub.wait_subscribed()
    mosquitto_pub(broker, "mqttv5", "-t", "interop/wild/a/y", "-m", "no", "-q", "1")
    mosquitto_pub(broker, "mqttv5", "-t", "interop/wild/a/x", "-m", "yes1", "-q", "1")
    mosquitto_pub(broker, "mqttv5", "-t", "interop/wild/b/x/c/d", "-m", "yes2", "-q", "1")
    assert [sub.message()[3], sub.message()[3]] == ["yes1", "yes2"]
    sub.close()
