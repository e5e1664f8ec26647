"""The audit log (black box): every record is JSON with the documented schema, the expected events
appear, and secrets never do."""

import json
import os
import re
import socket
import subprocess

import pytest

import wire
from admin_helpers import Console
from conftest import BASTION_BIN, free_port

pytestmark = [
    pytest.mark.bastion_only,
]

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECRET = "s3cret-pa55word"


def records(path):
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict), f"line {number} is not an object"
        assert TS.match(record["ts"]), f"line {number}: bad ts {record['ts']}"
        assert isinstance(record["event"], str)
        out.append(record)
    return out


def connect_raw(broker, client_id, username=None, password=None, source="127.0.0.1"):
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect((broker.host, broker.port))
    s.sendall(wire.connect(client_id=client_id, version=4, username=username, password=password))
    data = b""
    try:
        while len(data) < 4:
            chunk = s.recv(4)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    return data[3] if len(data) >= 4 and data[0] == 0x20 else None


def test_security_events_are_audited_as_json_lines(broker_factory, tmp_path):
    pw = tmp_path / "passwords"
    pw.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "alice", SECRET], check=True, capture_output=True)
    audit = tmp_path / "audit.log"
    broker = broker_factory(anonymous=False, args=["--password-file", str(pw), "--audit-log", str(audit)],
                            config={})
    assert connect_raw(broker, "good", "alice", SECRET) == 0
    assert connect_raw(broker, "bad", "alice", "wrong-" + SECRET) in (4, 5)
    assert broker.stop() == 0

    text = audit.read_text()
    assert SECRET not in text, "a password reached the audit log"
    recs = records(audit)
    events = [r["event"] for r in recs]
    assert events[0] == "start"
    assert events[-1] == "shutdown"
    accepted = [r for r in recs if r["event"] == "connection_accepted"]
    assert any(r["client_id"] == "good" and r["username"] == "alice" and r["remote_ip"] == "127.0.0.1"
               and isinstance(r["remote_port"], int) and r["protocol"] == "3.1.1" for r in accepted), accepted
    failures = [r for r in recs if r["event"] == "auth_failure"]
    assert any(r["client_id"] == "bad" and r["reason"] in ("bad_password", "unknown_user") for r in failures), failures

    # The CLI validator agrees with the documented schema.
    result = subprocess.run([BASTION_BIN, "audit", "validate", str(audit), "--expect", "start",
                             "--expect", "connection_accepted", "--expect", "auth_failure", "--expect", "shutdown"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bans_through_the_cli_are_enforced_and_audited(broker_factory, tmp_path):
    audit = tmp_path / "audit.log"
    admin = f"http://127.0.0.1:{free_port()}"
    broker = broker_factory(args=["--audit-log", str(audit), "--admin-listen", admin],
                            config={})
    Console(broker, admin).wait_ready()

    def ban(*args):
        # The broker's generated token is found in its data directory.
        return subprocess.run([BASTION_BIN, "ban", *args, "--admin", admin, "--data-dir", str(broker.data_dir)],
                              capture_output=True, text=True, timeout=30)

    added = ban("add", "--ip", "127.0.0.2", "--duration", "10m", "--reason", "test")
    assert added.returncode == 0, added.stderr
    listed = ban("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert any(b["value"] == "127.0.0.2" and b["origin"] == "manual" for b in json.loads(listed.stdout))
    assert connect_raw(broker, "banned", source="127.0.0.2") is None
    assert connect_raw(broker, "fine", source="127.0.0.3") == 0
    removed = ban("remove", "--ip", "127.0.0.2")
    assert removed.returncode == 0, removed.stderr
    assert connect_raw(broker, "unbanned", source="127.0.0.2") == 0
    assert ban("remove", "--ip", "127.0.0.2").returncode == 1
    assert ban("add").returncode == 2
    broker.stop()

    recs = records(audit)
    assert any(r["event"] == "ban" and r["subject"] == "127.0.0.2" and r["origin"] == "manual" and r["note"] == "test" for r in recs)
    assert any(r["event"] == "unban" and r["subject"] == "127.0.0.2" and r["cause"] == "removed" for r in recs)
    assert any(r["event"] == "connection_refused" and r["remote_ip"] == "127.0.0.2" and r["reason"] == "banned" for r in recs)
    assert any(r["event"] == "admin_action" and r["action"] == "ban_add" and r["user"] == "token:bootstrap" for r in recs)


def test_config_bans_refuse_before_mqtt(broker_factory):
    broker = broker_factory(config={"bans": [{"address": "127.0.0.4/32", "reason": "test"}, {"client_id": "evil"}]})
    assert connect_raw(broker, "x", source="127.0.0.4") is None
    assert connect_raw(broker, "evil") not in (0, None)
    assert connect_raw(broker, "good") == 0


def test_an_added_ban_disconnects_the_clients_it_covers(broker_factory):
    from mqttclient import Client
    admin = f"http://127.0.0.1:{free_port()}"
    broker = broker_factory(args=["--admin-listen", admin], config={})
    Console(broker, admin).wait_ready()
    victim = Client(broker, client_id="victim")
    bystander = Client(broker, client_id="bystander")
    added = subprocess.run([BASTION_BIN, "ban", "add", "--client", "victim", "--admin", admin, "--data-dir", str(broker.data_dir)],
                           capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    reason, _ = victim.expect_disconnect()
    assert reason.value == 0x98, reason  # Administrative action
    bystander.publish("still/here", b"x", qos=1)  # PUBACK: still connected
    assert connect_raw(broker, "victim") not in (0, None)
