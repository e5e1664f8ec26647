"""A blocking, queue-based wrapper around paho-mqtt 2.x for tests: every wait is bounded."""

import queue
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

V31, V311, V5 = mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5
TIMEOUT = 5.0


def props(packet_type=PacketTypes.PUBLISH, **values):
    """props(PacketTypes.CONNECT, SessionExpiryInterval=10)"""
    p = Properties(packet_type)
    for key, value in values.items():
        setattr(p, key, value)
    return p


class Client:
    def __init__(self, broker, client_id=None, protocol=V5, clean=True, username=None, password=None,
                 keepalive=60, will=None, properties=None, auto_connect=True, host=None, port=None):
        self.broker = broker
        self.protocol = protocol
        self.client_id = client_id if client_id is not None else "t-" + uuid.uuid4().hex[:10]
        kwargs = dict(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=protocol)
        if protocol != V5:
            kwargs["clean_session"] = clean
        self.clean = clean
        self.c = mqtt.Client(**kwargs)
        self.c.enable_logger(None)
        if username is not None:
            self.c.username_pw_set(username, password)
        if will is not None:
            self.c.will_set(**will)
        self.keepalive = keepalive
        self.connect_properties = properties
        self.host = host or broker.host
        self.port = port or broker.port
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.published = {}
        self.lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.reconnect_delay_set(60, 120)  # never reconnect by itself inside a test
        if auto_connect:
            self.connect()

    # callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connacks.put((flags, reason_code, properties))

    def _on_message(self, client, userdata, message):
        self.messages.put(message)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subacks.put((mid, reason_codes, properties))

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        self.unsubacks.put((mid, reason_codes, properties))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnects.put((reason_code, properties))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            self.published[mid] = reason_code

    # actions
    def connect(self, expect_success=True):
        """Connect and return (flags, reason_code, properties) of the CONNACK."""
        kw = {}
        if self.protocol == V5:
            kw["clean_start"] = self.clean
            if self.connect_properties is not None:
                kw["properties"] = self.connect_properties
        self.c.connect(self.host, self.port, keepalive=self.keepalive, **kw)
        self.c.loop_start()
        flags, rc, properties = self.connacks.get(timeout=TIMEOUT)
        if expect_success:
            assert not rc.is_failure, f"CONNACK refused: {rc}"
        return flags, rc, properties

    def subscribe(self, topic, qos=0, options=None, properties=None):
        """Subscribe and return the SUBACK reason codes."""
        if self.protocol == V5:
            opts = options or mqtt.SubscribeOptions(qos=qos)
            _, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            _, mid = self.c.subscribe(topic, qos)
        got_mid, codes, _ = self.subacks.get(timeout=TIMEOUT)
        assert got_mid == mid
        return codes

    def unsubscribe(self, topic, properties=None):
        _, mid = self.c.unsubscribe(topic, properties=properties) if self.protocol == V5 else self.c.unsubscribe(topic)
        got_mid, codes, _ = self.unsubacks.get(timeout=TIMEOUT)
        assert got_mid == mid
        return codes

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait and qos > 0:
            info.wait_for_publish(timeout=TIMEOUT)
            assert info.is_published(), f"no acknowledgement for {topic}"
        return info

    def ack_reason(self, info):
        """Reason code the broker sent in PUBACK/PUBREC for a QoS>0 publish (5.0)."""
        with self.lock:
            return self.published.get(info.mid)

    def expect_message(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("expected a message, none arrived") from None

    def expect_messages(self, n, timeout=TIMEOUT):
        return [self.expect_message(timeout) for _ in range(n)]

    def expect_no_message(self, timeout=1.0):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def expect_disconnect(self, timeout=TIMEOUT):
        try:
            return self.disconnects.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("expected the broker to disconnect the client") from None

    def disconnect(self, reasoncode=None, properties=None):
        if self.protocol == V5:
            self.c.disconnect(reasoncode=reasoncode, properties=properties)
        else:
            self.c.disconnect()
        try:
            self.disconnects.get(timeout=TIMEOUT)
        except queue.Empty:
            pass
        self.c.loop_stop()

    def drop(self):
        """Close the socket without DISCONNECT: an abnormal loss for the broker."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()


@pytest.fixture(autouse=True)
def close_clients(broker_factory, monkeypatch):
    """Stop every paho client a test created (before its broker stops), so no network thread
    outlives the test. Autouse in the modules that import it."""
    created = []
    original = Client.__init__

    def init(self, *a, **kw):
        created.append(self)
        original(self, *a, **kw)

    monkeypatch.setattr(Client, "__init__", init)
    yield created
    for c in created:
        try:
            if c.c.is_connected():
                c.c.disconnect()
        except Exception:
            pass
        c.c.loop_stop()
