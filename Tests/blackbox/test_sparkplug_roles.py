"""Sparkplug roles, command authorisation, signed commands and the inventory (black box).
Edge nodes are pysparkplug EdgeNodes or raw paho clients; host applications are paho clients."""

import base64
import json
import struct
import subprocess

import paho.mqtt.client as paho_client
import pysparkplug as spb
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from pysparkplug import _protobuf as sparkplug_pb

from admin_helpers import Console
from conftest import free_port
from helpers_sec import Secured, wait_until
from mqttclient import V5, V311

if not hasattr(paho_client.Client, "message_retry_set"):
    paho_client.Client.message_retry_set = lambda self, retry: None

NS = "spBv1.0"
USERS = {"edge1": "edge1-pw", "edge2": "edge2-pw", "edge3": "edge3-pw", "scada": "scada-pw", "hist": "hist-pw"}
DOMAIN = b"spBv1.0-cmd-sig\n"


def signed_bytes(topic, payload):
    t = topic.encode()
    return DOMAIN + struct.pack(">H", len(t)) + t + payload


def command_payload(name="Node Control/Rebirth"):
    p = sparkplug_pb.Payload()
    p.timestamp = 1700000000000
    m = p.metrics.add()
    m.name = name
    m.datatype = 11  # Boolean
    m.boolean_value = True
    return p


def records(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def audit_wait(path, predicate, message):
    found = []

    def check():
        found[:] = [r for r in records(path) if predicate(r)]
        return bool(found)
    wait_until(check, 5.0, message)
    return found


@pytest.fixture
def plant(tmp_path):
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "scada.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    audit = tmp_path / "audit.log"
    admin_port = free_port()
    config = {"auth": {
        "roles": {"edges": ["edge1", "edge2"]},
        "sparkplug": {
            "roles": [
                {"role": "edges", "edge": {"group": "plant1", "edge_node": "%u"}},
                {"user": "edge3", "edge": {"group": "plant2", "edge_node": "edge3"}},
                {"user": "scada", "host": {"host_id": "scada1", "groups": ["plant1", "plant2"], "public_key_files": [str(pub)]}},
                {"user": "hist", "monitor": {"host_id": "hist"}},
            ],
            "signed_command_groups": ["plant2"],
        },
    }}
    s = Secured(tmp_path, USERS, config=config,
                args=["--audit-log", str(audit), "--admin-listen", f"https://127.0.0.1:{admin_port}"])
    s.key, s.audit_path, s.admin_url = key, audit, f"https://127.0.0.1:{admin_port}"
    yield s
    s.stop()


def edge_node(s, user, group, metrics):
    client = spb.Client(client_id=f"{user}-node", username=user, password=USERS[user])
    node = spb.EdgeNode(group, user, metrics, client=client)
    node.connect(s.broker.host, port=s.broker.port)
    wait_until(lambda: node._connected, 5.0, "edge node did not connect")
    return node


def metric(name, value):
    return spb.Metric(timestamp=spb.get_current_timestamp(), name=name, datatype=spb.DataType.DOUBLE, value=value)


def test_edge_role_lets_an_edge_node_birth_and_a_host_read_it(plant):
    host = plant.client("scada")
    host.subscribe(f"{NS}/plant1/#", 1)
    node = edge_node(plant, "edge1", "plant1", [metric("temperature", 20.0)])
    try:
        m = host.expect_message()
        assert m.topic == f"{NS}/plant1/NBIRTH/edge1"
        assert "temperature" in [x.name for x in spb.NBirth.decode(m.payload).metrics]
    finally:
        node.disconnect()


def test_birth_for_another_edge_node_is_refused_and_audited_as_forgery(plant):
    host = plant.client("scada")
    host.subscribe(f"{NS}/plant1/#", 1)
    forger = plant.client("edge1")
    info = forger.publish(f"{NS}/plant1/NBIRTH/edge2", command_payload().SerializeToString(), qos=1)
    assert forger.ack_reason(info) == 0x87
    host.expect_no_message(0.5)
    denied = audit_wait(plant.audit_path, lambda r: r["event"] == "authz_denied" and r["topic"].endswith("NBIRTH/edge2"),
                        "forged birth not audited")
    assert "forgedBirth" in denied[0]["rule"] and denied[0]["username"] == "edge1"


def test_commands_only_from_a_host_role_and_every_command_is_audited(plant):
    edge = plant.client("edge1")
    edge.subscribe(f"{NS}/plant1/NCMD/edge1", 1)
    topic = f"{NS}/plant1/NCMD/edge1"
    for intruder in ("hist", "edge2"):
        info = plant.client(intruder).publish(topic, command_payload().SerializeToString(), qos=1)
        assert plant.clients[-1].ack_reason(info) == 0x87
    edge.expect_no_message(0.5)
    host = plant.client("scada")
    info = host.publish(topic, command_payload().SerializeToString(), qos=1)
    assert host.ack_reason(info) == 0
    assert sparkplug_pb.Payload.FromString(edge.expect_message().payload).metrics[0].name == "Node Control/Rebirth"
    wait_until(lambda: len([r for r in records(plant.audit_path) if r["event"] == "sparkplug_command"]) >= 3, 5.0,
               "not every command was audited")
    commands = [r for r in records(plant.audit_path) if r["event"] == "sparkplug_command"]
    by_user = {r["username"]: r for r in commands}
    assert by_user["hist"]["outcome"] == "refused" and by_user["edge2"]["outcome"] == "refused"
    accepted = by_user["scada"]
    assert accepted["outcome"] == "accepted" and accepted["edge_node"] == "edge1" and accepted["group"] == "plant1"
    assert accepted["metrics"] == ["Node Control/Rebirth"]
    result = subprocess.run([plant.broker.command()[0], "audit", "validate", str(plant.audit_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def signature_property(value):
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("bastion-signature", value)
    return props


def test_signed_group_refuses_unsigned_and_badly_signed_commands(plant):
    edge = plant.client("edge3")
    topic = f"{NS}/plant2/NCMD/edge3"
    edge.subscribe(topic, 1)
    host = plant.client("scada")
    payload = command_payload().SerializeToString()
    assert host.ack_reason(host.publish(topic, payload, qos=1)) == 0x87  # no signature
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(signed_bytes(topic, payload))).decode()
    assert host.ack_reason(host.publish(topic, payload, qos=1, properties=signature_property(forged))) == 0x87
    # A valid signature over another topic does not carry over.
    other = base64.b64encode(plant.key.sign(signed_bytes(f"{NS}/plant2/NCMD/edge9", payload))).decode()
    assert host.ack_reason(host.publish(topic, payload, qos=1, properties=signature_property(other))) == 0x87
    edge.expect_no_message(0.5)
    refused = audit_wait(plant.audit_path, lambda r: r["event"] == "sparkplug_command" and r["outcome"] == "refused",
                         "refused signed commands not audited")
    assert {"missing", "bad"} <= {r["signature"] for r in refused}


def test_signed_command_in_a_user_property_is_delivered(plant):
    edge = plant.client("edge3")
    topic = f"{NS}/plant2/NCMD/edge3"
    edge.subscribe(topic, 1)
    host = plant.client("scada")
    payload = command_payload().SerializeToString()
    signature = base64.b64encode(plant.key.sign(signed_bytes(topic, payload))).decode()
    assert host.ack_reason(host.publish(topic, payload, qos=1, properties=signature_property(signature))) == 0
    m = edge.expect_message()
    assert m.payload == payload
    assert ("bastion-signature", signature) in m.properties.UserProperty  # the edge can verify it too


def test_signed_command_in_a_metric_from_a_311_host_is_delivered(plant):
    edge = plant.client("edge3")
    topic = f"{NS}/plant2/NCMD/edge3"
    edge.subscribe(topic, 1)
    host = plant.client("scada", protocol=V311)
    base = command_payload()
    signature = base64.b64encode(plant.key.sign(signed_bytes(topic, base.SerializeToString()))).decode()
    signed = command_payload()
    m = signed.metrics.add()
    m.name, m.datatype, m.string_value = "bastion/signature", 12, signature
    host.publish(topic, signed.SerializeToString(), qos=1)
    delivered = sparkplug_pb.Payload.FromString(edge.expect_message().payload)
    assert [x.name for x in delivered.metrics] == ["Node Control/Rebirth", "bastion/signature"]
    accepted = audit_wait(plant.audit_path, lambda r: r["event"] == "sparkplug_command" and r["outcome"] == "accepted",
                          "signed command not audited")
    assert accepted[0]["signature"] == "verified"


def test_inventory_through_the_admin_api_and_sys(plant):
    node = edge_node(plant, "edge1", "plant1", [metric("temperature", 20.0), metric("pressure", 1.0)])
    console = Console(plant.broker, plant.admin_url)
    console.wait_ready()

    def inventory():
        r = console.request("GET", "/api/v1/sparkplug", token=console.token)
        assert r.status == 200, r.text
        return r.json()

    def edge1():
        for group in inventory()["inventory"]["groups"]:
            for n in group["edgeNodes"]:
                if group["id"] == "plant1" and n["id"] == "edge1":
                    return n
        return None
    wait_until(lambda: (edge1() or {}).get("online") is True, 5.0, "edge node not online in the inventory")
    born = edge1()
    assert born["metricCount"] >= 2 and born["bdSeq"] is not None
    node.disconnect()  # pysparkplug publishes its NDEATH, then disconnects
    wait_until(lambda: edge1()["online"] is False, 5.0, "edge node not offline after its death")
    assert console.request("GET", "/api/v1/sparkplug").status == 401  # authenticated like the other routes


def test_roles_config_errors_name_the_key(tmp_path):
    from conftest import BASTION_BIN
    bad = tmp_path / "bastion.yaml"
    bad.write_text("auth:\n  sparkplug:\n    roles:\n      - {user: a, edge: {group: 'g/1', edge_node: e}}\n")
    result = subprocess.run([BASTION_BIN, "serve", "--config", str(bad), "--data-dir", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "auth.sparkplug.roles[0]" in result.stderr + result.stdout
