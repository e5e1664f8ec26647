"""Sparkplug B 3.0, "Sparkplug Aware MQTT Server": births kept retained under
$sparkplug/certificates/, $sparkplug/ written by the server only, NDEATH stamped when delivered.
Edge nodes are pysparkplug's EdgeNode; host applications are plain paho clients."""

import json
import socket
import time
import uuid

import paho.mqtt.client as paho_client
import pysparkplug as spb
from pysparkplug import _protobuf as sparkplug_pb
import pytest

import wire
from mqttclient import V5, V311, Client

NS = "spBv1.0"

# pysparkplug 0.6.1 still calls message_retry_set, which paho-mqtt 2 removed (it had no effect
# since paho 1.5); the rest of its paho 1 API works on paho 2.
if not hasattr(paho_client.Client, "message_retry_set"):
    paho_client.Client.message_retry_set = lambda self, retry: None


def ids():
    return f"g{uuid.uuid4().hex[:6]}", f"e{uuid.uuid4().hex[:6]}"


def metric(name, value):
    return spb.Metric(timestamp=spb.get_current_timestamp(), name=name, datatype=spb.DataType.DOUBLE, value=value)


def names(payload):
    return sorted(m.name for m in payload.metrics)


def edge_node(broker, group, edge, metrics, **client_kw):
    node = spb.EdgeNode(group, edge, metrics, client=spb.Client(client_id=f"{group}-{edge}", **client_kw))
    node.connect(broker.host, port=broker.port)
    deadline = time.monotonic() + wire.TIMEOUT
    while not node._connected:  # pysparkplug offers no other sign that its NBIRTH went out
        assert time.monotonic() < deadline, "edge node did not connect"
        time.sleep(0.02)
    return node


def certificate_topic(group, kind, edge, device=None):
    return f"$sparkplug/certificates/{NS}/{group}/{kind}/{edge}" + (f"/{device}" if device else "")


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_nbirth_is_kept_retained_under_certificates(broker, version):
    group, edge = ids()
    node = edge_node(broker, group, edge, [metric("temperature", 21.5)])
    try:
        host = Client(broker, protocol=version)
        host.subscribe(f"$sparkplug/certificates/{NS}/{group}/#", 1)
        m = host.expect_message()
        assert m.topic == certificate_topic(group, "NBIRTH", edge)
        assert m.retain is True
        assert "temperature" in names(spb.NBirth.decode(m.payload))
    finally:
        node.disconnect()


def test_dbirth_is_kept_and_the_latest_birth_wins(broker):
    group, edge = ids()
    node = edge_node(broker, group, edge, [metric("temperature", 1.0)])
    try:
        host = Client(broker)
        host.subscribe(certificate_topic(group, "DBIRTH", edge, "pump1"), 1)
        node.register(spb.Device("pump1", [metric("rpm", 1200.0)]))
        assert names(spb.DBirth.decode(host.expect_message().payload)) == ["rpm"]  # live
        host.disconnect()
        late = Client(broker)
        late.subscribe(certificate_topic(group, "DBIRTH", edge, "pump1"), 1)
        m = late.expect_message()
        assert m.retain and names(spb.DBirth.decode(m.payload)) == ["rpm"]
        late.disconnect()
    finally:
        node.disconnect()
    # A new session of the same edge node: its NBIRTH replaces the stored one.
    node = edge_node(broker, group, edge, [metric("pressure", 2.0)])
    try:
        host = Client(broker)
        host.subscribe(certificate_topic(group, "NBIRTH", edge), 1)
        m = host.expect_message()
        assert "pressure" in names(spb.NBirth.decode(m.payload))
        assert "temperature" not in names(spb.NBirth.decode(m.payload))
        host.expect_no_message(0.3)
    finally:
        node.disconnect()


def test_birth_is_delivered_as_published_and_not_retained_on_its_own_topic(broker):
    group, edge = ids()
    topic = f"{NS}/{group}/NBIRTH/{edge}"
    live = Client(broker)
    live.subscribe(topic, 0)
    payload = spb.NBirth(timestamp=spb.get_current_timestamp(), seq=0, metrics=(metric("a", 1.0),)).encode()
    pub = Client(broker)
    pub.publish(topic, payload, qos=0, retain=True)
    assert live.expect_message().payload == payload
    late = Client(broker)
    late.subscribe(topic, 0)
    late.expect_no_message(0.5)
    late.subscribe(certificate_topic(group, "NBIRTH", edge), 0)
    m = late.expect_message()
    assert (m.payload, m.retain) == (payload, True)


@pytest.mark.parametrize("qos", [0, 1])
def test_client_publish_under_sparkplug_namespace_is_refused(broker, qos):
    group, edge = ids()
    topic = certificate_topic(group, "NBIRTH", edge)
    watcher = Client(broker)
    watcher.subscribe("$sparkplug/#", 1)
    forger = Client(broker, protocol=V5)
    if qos == 1:
        info = forger.publish(topic, b"forged", qos=1, retain=True)
        assert forger.ack_reason(info) == 0x87
    else:
        forger.publish(topic, b"forged", qos=0, retain=True, wait=False)
        reason, _ = forger.expect_disconnect()
        assert reason.value == 0x87
    watcher.expect_no_message(0.5)
    late = Client(broker)
    late.subscribe(topic, 1)
    late.expect_no_message(0.3)


def test_311_publish_under_sparkplug_namespace_closes_the_connection(broker):
    # 3.1.1 has no refusing PUBACK: the server closes the connection instead (MQTT-3.3.5-2).
    watcher = Client(broker)
    watcher.subscribe("$sparkplug/#", 1)
    forger = wire.Raw(broker, version=4)
    forger.connect(client_id="forger311")
    forger.send(wire.publish("$sparkplug/certificates/spBv1.0/g/NBIRTH/e", b"forged", qos=1, pid=1, version=4))
    forger.expect_closed_after()
    watcher.expect_no_message(0.5)


def ndeath_payload(bd_seq, timestamp):
    bd = spb.Metric(timestamp=timestamp, name="bdSeq", datatype=spb.DataType.INT64, value=bd_seq)
    return spb.NDeath(timestamp=timestamp, bd_seq_metric=bd).encode()


def test_ndeath_will_is_stamped_with_its_delivery_time(broker):
    group, edge = ids()
    topic = f"{NS}/{group}/NDEATH/{edge}"
    host = Client(broker)
    host.subscribe(topic, 1)
    # The will's timestamp is from CONNECT time (here: far in the past on purpose).
    edge_sock = wire.Raw(broker, version=4)
    edge_sock.connect(client_id=f"{group}-{edge}", will=dict(topic=topic, payload=ndeath_payload(7, 1000), qos=1))
    before = int(time.time() * 1000)
    edge_sock.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    edge_sock.close()  # abrupt: the will is published
    m = host.expect_message()
    # pysparkplug's NDeath drops the payload timestamp on decode: read it from the protobuf itself.
    death = sparkplug_pb.Payload()
    death.ParseFromString(m.payload)
    assert death.timestamp >= before
    assert [(x.name, x.long_value) for x in death.metrics] == [("bdSeq", 7)]


def test_undecodable_ndeath_will_is_forwarded_unchanged(broker):
    group, edge = ids()
    topic = f"{NS}/{group}/NDEATH/{edge}"
    host = Client(broker)
    host.subscribe(topic, 1)
    garbage = b"\xff\xff\xff not protobuf"
    edge_client = Client(broker, client_id=f"{group}-{edge}", will=dict(topic=topic, payload=garbage, qos=1, retain=False))
    edge_client.drop()
    assert host.expect_message().payload == garbage


def test_will_under_sparkplug_namespace_is_not_published(broker):
    watcher = Client(broker)
    watcher.subscribe("$sparkplug/#", 1)
    forger = Client(broker, will=dict(topic="$sparkplug/certificates/spBv1.0/g/NBIRTH/e", payload=b"forged", qos=1, retain=True))
    forger.drop()
    watcher.expect_no_message(1.0)


def test_aware_server_on_the_embedded_default(embedded_default):
    group, edge = ids()
    creds = dict(username=embedded_default.username, password=embedded_default.password)
    node = edge_node(embedded_default, group, edge, [metric("flow", 3.0)], **creds)
    try:
        host = Client(embedded_default, **creds)
        host.subscribe(certificate_topic(group, "NBIRTH", edge), 1)
        m = host.expect_message()
        assert m.retain and "flow" in names(spb.NBirth.decode(m.payload))
    finally:
        node.disconnect()


# $SYS is readable only where the ACL grants it.
SYS_READERS = {"auth": {"acl": [{"all": True, "access": "readwrite", "topic": f"{NS}/#"},
                                {"all": True, "access": "read", "topic": "$SYS/bastion/#"}]}}


def test_inventory_on_sys(broker_factory):
    b = broker_factory(config=SYS_READERS)
    group, edge = ids()
    node = edge_node(b, group, edge, [metric("flow", 3.0)])
    try:
        sys = Client(b)
        sys.subscribe(f"$SYS/bastion/sparkplug/groups/{group}", 0)
        document = json.loads(sys.expect_message(timeout=15).payload)  # published every 10 s
        assert [(n["id"], n["online"], n["metricCount"] >= 1) for n in document["edgeNodes"]] == [(edge, True, True)]
    finally:
        node.disconnect()


def test_data_before_birth_is_forwarded_counted_and_alerted(broker_factory):
    broker = broker_factory(config=SYS_READERS)
    group, edge = ids()
    alerts = Client(broker)
    alerts.subscribe("$SYS/bastion/alerts", 0)
    host = Client(broker)
    host.subscribe(f"{NS}/{group}/#", 0)
    ndata = spb.NData(timestamp=spb.get_current_timestamp(), seq=0, metrics=[metric("flow", 1.0)]).encode()
    Client(broker, client_id=f"{group}-{edge}").publish(f"{NS}/{group}/NDATA/{edge}", ndata, qos=1)
    assert host.expect_message().payload == ndata  # not dropped: the broker is not the payload's judge
    alert = json.loads(alerts.expect_message().payload)
    assert alert["kind"] == "sparkplug_anomaly" and f"{group}/{edge}" in alert["subject"]


def test_undecodable_birth_is_forwarded_and_audited(broker_factory, tmp_path):
    audit = tmp_path / "audit.log"
    b = broker_factory(args=["--audit-log", str(audit)])
    group, edge = ids()
    host = Client(b)
    host.subscribe(f"{NS}/{group}/#", 0)
    garbage = b"\x0a\xff\xff\xff not a payload"
    Client(b).publish(f"{NS}/{group}/NBIRTH/{edge}", garbage, qos=1)
    assert host.expect_message().payload == garbage
    deadline = time.monotonic() + wire.TIMEOUT
    while True:
        lines = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
        invalid = [r for r in lines if r["event"] == "sparkplug_payload_invalid"]
        if invalid or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert invalid and invalid[0]["topic"] == f"{NS}/{group}/NBIRTH/{edge}" and invalid[0]["will"] is False


def test_seq_gap_in_an_edge_nodes_own_data_is_alerted(broker_factory):
    # The NDATA of the connection that published the NBIRTH is checked without the inventory's lock:
    # in-order data (edge a, wrapping past 255) raises nothing, a gap (edge b) raises a seqGap alert.
    broker = broker_factory(config=SYS_READERS)
    group, _ = ids()
    alerts = Client(broker)
    alerts.subscribe("$SYS/bastion/alerts", 0)
    now = spb.get_current_timestamp()
    bd = spb.Metric(timestamp=now, name="bdSeq", datatype=spb.DataType.INT64, value=0)

    def node(edge, seqs):
        c = Client(broker, client_id=f"{group}-{edge}")
        c.publish(f"{NS}/{group}/NBIRTH/{edge}", spb.NBirth(timestamp=now, seq=0, metrics=(bd, metric("flow", 1.0))).encode(), qos=1)
        for seq in seqs:
            c.publish(f"{NS}/{group}/NDATA/{edge}", spb.NData(timestamp=now, seq=seq, metrics=[metric("flow", 2.0)]).encode(), qos=1)
        return c

    in_order = node("a", [n % 256 for n in range(1, 300)])
    gap = node("b", [1, 2, 7])
    alert = json.loads(alerts.expect_message().payload)
    assert alert["kind"] == "sparkplug_anomaly" and alert["subject"] == f"edge_node {group}/b seqGap"
    alerts.expect_no_message(0.5)
