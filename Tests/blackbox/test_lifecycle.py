"""Process lifecycle: graceful shutdown on SIGTERM and the connect/disconnect log lines."""

import re
import signal
import time

import pytest

import wire
from wire import Raw
from mqttclient import V311, V5, Client


@pytest.mark.bastion_only  # BEHAVIOUR.md: SIGTERM -> DISCONNECT 0x8B to 5.0 clients; mosquitto just closes
def test_sigterm_sends_0x8b_to_5_clients_and_exits_0(broker):
    a = Raw(broker, 5)
    a.connect("shut-a")
    b = Raw(broker, 5)
    b.connect("shut-b")
    old = Raw(broker, 4)
    old.connect("shut-311")
    paho = Client(broker, protocol=V5)
    broker.proc.send_signal(signal.SIGTERM)
    for r in (a, b):
        got = r.expect_closed_after(allowed=(wire.DISCONNECT,), timeout=10)
        assert wire.disconnect_reasons(got) == [0x8B], "5.0 clients are told the server is shutting down"
    old.expect_closed_after(allowed=(), timeout=10)  # 3.1.1 has no server DISCONNECT
    rc, _ = paho.expect_disconnect(timeout=10)
    assert rc.value == 0x8B
    assert broker.proc.wait(timeout=10) == 0


@pytest.mark.bastion_only  # exit status of a graceful stop is Bastion's contract
def test_sigterm_with_no_clients_exits_0(broker):
    assert broker.stop() == 0


@pytest.mark.bastion_only  # SIGINT is treated like SIGTERM (graceful)
def test_sigint_exits_0(broker):
    r = Raw(broker, 5)
    r.connect("sigint")
    broker.proc.send_signal(signal.SIGINT)
    got = r.expect_closed_after(allowed=(wire.DISCONNECT,), timeout=10)
    assert wire.disconnect_reasons(got) in ([0x8B], [])
    assert broker.proc.wait(timeout=10) == 0


# Passes on mosquitto run with `user root`; the fixture's mosquitto drops to user mosquitto, which
# cannot write its database under pytest's 0700 temporary directory.
@pytest.mark.bastion_only
def test_persistent_session_and_queue_survive_graceful_restart(broker):
    r = Raw(broker, 4)
    r.connect("restart-pers", clean=False)
    r.sub([("restart/t", 1)])
    r.send(wire.disconnect())
    r.close()
    pub = Client(broker, protocol=V311)
    pub.publish("restart/t", b"kept-across-restart", qos=1)
    pub.disconnect()
    broker.restart()
    r = Raw(broker, 4)
    present = r.connect("restart-pers", clean=False).session_present
    assert present
    assert r.expect_publish().payload == b"kept-across-restart"


# ------------------------------------------------------------------ log lines

VERSION_5 = re.compile(r"(?i)(mqtt\s*v?5(\.0)?\b|\bv5(\.0)?\b|\b5\.0\b|protocol[\s=:\"]*(v?5|mqttv5)\b|version[\s=:\"]*5\b)")
VERSION_311 = re.compile(r"(?i)(3\.1\.1|v311|mqttv311|protocol[\s=:\"]*4\b|version[\s=:\"]*4\b)")
VERSION_31 = re.compile(r"(?i)(3\.1(?!\.)|v31\b|mqttv31\b|protocol[\s=:\"]*3\b|version[\s=:\"]*3\b)")
CONNECT_WORD = re.compile(r"(?i)(?<!dis)(?<!re)connect(ed|ion accepted)?\b")
DISCONNECT_WORD = re.compile(r"(?i)disconnect")


def lines_for(log, client_id, port):
    return [l for l in log.splitlines() if client_id in l and "127.0.0.1" in l and str(port) in l]


def wait_for_log(broker, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        log = broker.log_text()
        if predicate(log) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


@pytest.mark.bastion_only  # the log format is Bastion's
@pytest.mark.parametrize("version,pattern", [(5, VERSION_5), (4, VERSION_311), (3, VERSION_31)], ids=["5.0", "3.1.1", "3.1"])
def test_one_log_line_per_connect_and_disconnect(broker, version, pattern):
    cid = f"log-client-{version}-zq"
    r = Raw(broker, version)
    r.connect(cid)
    port = r.local_port
    r.send(wire.disconnect())
    r.expect_closed_after(allowed=())

    log = wait_for_log(broker, lambda t: any(DISCONNECT_WORD.search(l) for l in lines_for(t, cid, port)))
    mine = lines_for(log, cid, port)
    connects = [l for l in mine if CONNECT_WORD.search(l) and not DISCONNECT_WORD.search(l)]
    disconnects = [l for l in mine if DISCONNECT_WORD.search(l)]
    assert len(connects) == 1, f"one connect line with id, address and port expected:\n{log}"
    assert len(disconnects) == 1, f"one disconnect line with id, address and port expected:\n{log}"
    assert pattern.search(connects[0]), f"connect line lacks the protocol version: {connects[0]}"
    assert re.search(r"(?i)normal|client|disconnect(ed)? by client|0x00|success", disconnects[0]), \
        f"disconnect line lacks a reason: {disconnects[0]}"


@pytest.mark.bastion_only  # the log format is Bastion's
def test_disconnect_log_line_names_abnormal_reason(broker):
    cid = "log-abnormal-zq"
    r = Raw(broker, 4)
    r.connect(cid)
    port = r.local_port
    r.close()
    log = wait_for_log(broker, lambda t: any(DISCONNECT_WORD.search(l) for l in lines_for(t, cid, port)))
    disconnects = [l for l in lines_for(log, cid, port) if DISCONNECT_WORD.search(l)]
    assert len(disconnects) == 1, log
    line = disconnects[0]
    assert re.search(r"(?i)closed|lost|reset|eof|abnormal|without disconnect|network|socket", line), line


@pytest.mark.bastion_only  # the log format is Bastion's
def test_disconnect_log_line_for_keep_alive_timeout(broker):
    cid = "log-ka-zq"
    r = Raw(broker, 5)
    r.connect(cid, keepalive=1)
    port = r.local_port
    r.closed_within(4)
    log = wait_for_log(broker, lambda t: any(DISCONNECT_WORD.search(l) for l in lines_for(t, cid, port)))
    disconnects = [l for l in lines_for(log, cid, port) if DISCONNECT_WORD.search(l)]
    assert len(disconnects) == 1, log
    assert re.search(r"(?i)keep.?alive|timeout|timed out|0x8d", disconnects[0]), disconnects[0]


@pytest.mark.bastion_only  # the log format is Bastion's
def test_refused_connect_is_logged_with_reason(broker):
    r = Raw(broker, 4)
    r.send(wire.connect("", version=4, clean=False))
    r.expect_closed_after(allowed=(wire.CONNACK,))
    port = r.local_port
    log = wait_for_log(broker, lambda t: any(str(port) in l for l in t.splitlines()))
    lines = [l for l in log.splitlines() if "127.0.0.1" in l and str(port) in l]
    assert lines, f"a refused connection is logged with its address:\n{log}"
    assert any(re.search(r"(?i)identifier|client id|0x02|rejected|refused", l) for l in lines), lines
