"""The outbound bridge (black box): Bastion forwards local topics to a remote broker (Debian's
mosquitto here) with QoS 1 store and forward across remote restarts and a kill -9 of Bastion,
failover across remotes, TLS with a client certificate, topic mapping, MQTT 5 and 3.1.1, an
upward-only diode, loop prevention when both directions are bridged, and refusal of contradictory
configuration.

The remote keeps its own state across restarts (mosquitto persistence, a persistent subscriber
session), so whatever is missing at the remote was lost by the bridge. Reconnection uses back-off
of up to about 30 s, so waits for the link allow a minute."""

import os
import re
import subprocess
import time

import pytest
import yaml

from conftest import BASTION_BIN, Broker, free_port
from helpers_bridge import PKI, SequencePublisher, audit_records, bridge_states, closed_port, in_order_prefix, \
    sequence_of, wait_until
from helpers_bridge import mosquitto_factory  # noqa: F401 (fixture)
from mqttclient import Client, close_clients  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.bastion_only  # the bridge is Bastion's own

NAME = "it-dmz"
CLIENT_ID = "plant1-bridge"
LINK = 60.0  # the first message through a new or re-established link: back-off reaches ~30 s
STATE = 25.0  # $SYS/bastion/bridges/NAME/state is refreshed at least every 10 s


def bridge(remotes, topics=None, name=NAME, client_id=CLIENT_ID, protocol=5, **extra):
    b = {"name": name, "remotes": list(remotes), "protocol": protocol, "client_id": client_id,
         "topics": topics or [{"local": "plant/#", "remote_prefix": "site1/", "qos": 1}]}
    b.update(extra)
    return b


# `$SYS` is readable only where the ACL grants it; the first rule keeps everything else open.
SYS_ACL = {"acl": [{"all": True, "access": "readwrite", "topic": "#"},
                   {"all": True, "access": "read", "topic": "$SYS/bastion/bridges/#"}]}


def config_with(*bridges, port, sys_readable=False):
    config = {"listeners": [{"url": f"mqtt://127.0.0.1:{port}", "allow_anonymous": True}], "bridges": list(bridges)}
    if sys_readable:
        config["auth"] = SYS_ACL
    return config


def bastion(broker_factory, *bridges, args=None, name=None, sys_readable=False):
    port = free_port()
    return broker_factory(config=config_with(*bridges, port=port, sys_readable=sys_readable), port=port, args=args,
                          name=name)


def state_watcher(broker, name=NAME):
    # `#` does not match `$SYS`: the subscription names it (and the broker needs `sys_readable`).
    c = Client(broker)
    c.subscribe(f"$SYS/bastion/bridges/{name}/#", 0)
    return c


def wait_state(broker, want, name=NAME, timeout=STATE):
    watcher = state_watcher(broker, name)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        seen += bridge_states(watcher, name, min(1.0, deadline - time.monotonic()))
        if seen and seen[-1] == want:
            watcher.disconnect()
            return
    watcher.disconnect()
    raise AssertionError(f"bridge {name} state never became {want!r} within {timeout:.0f} s; seen {seen}")


def wait_audit(path, event, timeout=STATE):
    def found():
        return [r for r in audit_records(path) if r.get("event") == event]
    return wait_until(found, timeout, f"audit event {event}")


# ---------------------------------------------------------------------------------------------
# Store and forward

def test_qos1_messages_survive_remote_restarts_and_a_kill9_in_order(broker_factory, mosquitto_factory):
    n = 10_000
    topics = ["load/a", "load/b", "load/c"]
    remote = mosquitto_factory()
    sub = remote.subscriber("site1/#")
    local = bastion(broker_factory, bridge([remote.url], topics=[{"local": "load/#", "remote_prefix": "site1/", "qos": 1}],
                                           store_and_forward={"max_bytes": 1 << 30, "max_age": 86400},
                                           max_bytes_per_second=1_000_000))
    pub = SequencePublisher(local, topics, n)
    deadline = time.monotonic() + 180

    def left():
        return max(1.0, deadline - time.monotonic())

    def received_seqs(snapshot, topic):
        return [sequence_of(r.payload) for r in snapshot if r.topic == "site1/" + topic]

    def publisher_at(k, phase):
        wait_until(lambda: pub.base >= k or pub.refused, left(),
                   f"{phase}: the publisher to reach {k} (at {pub.base}, last error {pub.last_error!r})")
        assert not pub.refused, f"{phase}: Bastion refused messages: {pub.refused[:5]}"

    pub.limit = 2500
    pub.start()
    try:
        # Cut 1, with messages in flight on the bridge; Bastion keeps accepting and queues.
        publisher_at(1200, "before cut 1")
        remote.stop()
        publisher_at(2500, "remote down (1)")
        remote.start()
        pub.limit = 5000
        # Cut 2, then a kill -9 of Bastion while the bridge drains the backlog and the publisher runs.
        publisher_at(3800, "before cut 2")
        remote.stop()
        publisher_at(5000, "remote down (2)")
        remote.start()
        # Message 4800 and later were published while the remote was down: only the bridge, back
        # and draining its backlog, can deliver them (the remote's own redeliveries are older).
        sub.wait_for(lambda s: any(sequence_of(r.payload) >= 4800 // len(topics) for r in s), LINK,
                     "the bridge to forward its backlog after the second restart")
        pub.limit = 7500
        publisher_at(6000, "before kill -9")
        local.kill9()
        local.start()  # same port, same data directory
        pub.limit = n
        publisher_at(n, "after kill -9")
        assert pub.connections >= 2, "the publisher never lost its connection: the kill did not happen mid-run"

        def settled(snapshot):
            # Complete, or broken for good: a number that arrived before its turn stays out of order.
            progress = [in_order_prefix(received_seqs(snapshot, t)) for t in topics]
            return any(stray is not None for _, stray in progress) or \
                all(k == pub.per_topic(t) for (k, _), t in zip(progress, topics))

        try:
            sub.wait_for(settled, left(), "every message at the remote")
        except AssertionError:
            pass  # reported below, per topic
        snapshot = sub.snapshot()
        for t in topics:
            seqs = received_seqs(snapshot, t)
            k, stray = in_order_prefix(seqs)
            assert stray is None, f"{t}: in order up to {k}, then {stray} arrived before it ({len(seqs)} received)"
            assert k == pub.per_topic(t), f"{t}: only 0..{k - 1} of {pub.per_topic(t)} arrived ({len(seqs)} received)"
            assert set(seqs) == set(range(pub.per_topic(t))), f"{t}: numbers that were never published"
        assert {r.topic for r in snapshot} == {"site1/" + t for t in topics}
        assert all(r.qos == 1 for r in snapshot)
    finally:
        pub.stopping.set()
        pub.join(10)


class EagerBroker(Broker):
    """Started without waiting for its port, so a client can be there the moment it listens."""

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()


def test_messages_published_as_soon_as_bastion_listens_are_bridged(mosquitto_factory, tmp_path):
    # The first publishes after start race the bridge's own set-up. A fresh data directory each
    # time, so no earlier run's session helps; repeated because one start may miss the window.
    remote = mosquitto_factory()
    sub = remote.subscriber("site1/#")
    for attempt in range(10):
        port = free_port()
        # Its own client id: the remote still holds the previous start's session.
        config = config_with(bridge([remote.url], client_id=f"{CLIENT_ID}-{attempt}",
                                    topics=[{"local": "start/#", "remote_prefix": "site1/", "qos": 1}]), port=port)
        local = EagerBroker(tmp_path / f"start{attempt}", config=config, port=port)
        try:
            pub = SequencePublisher(local, [f"start/{attempt}"], 100, timeout=30, retry=0.002)
            pub.run()  # in this thread: connects the moment the listener accepts
            assert pub.done() and not pub.refused, (pub.base, pub.refused, pub.last_error, local.log_text()[-2000:])
            topic = f"site1/start/{attempt}"

            def seqs(snapshot):
                return [sequence_of(r.payload) for r in snapshot if r.topic == topic]

            try:
                sub.wait_for(lambda s: in_order_prefix(seqs(s))[0] == 100 or in_order_prefix(seqs(s))[1] is not None,
                             LINK, f"all of {topic}")
            except AssertionError:
                pass  # reported below
            got = seqs(sub.snapshot())
            assert in_order_prefix(got) == (100, None), \
                f"start {attempt}: {len(got)} of 100 acknowledged messages arrived, first {got[:5]}"
        finally:
            local.stop()


# ---------------------------------------------------------------------------------------------
# Upward only: a diode

def test_upward_only_lets_nothing_from_the_remote_reach_local_subscribers(broker_factory, mosquitto_factory):
    remote = mosquitto_factory()
    sub = remote.subscriber("site1/#")
    # `direction` and `upward_only` are left out: out and true are the defaults.
    local = bastion(broker_factory, bridge([remote.url]))
    watcher = Client(local)
    watcher.subscribe("#", 1)
    pub = Client(local)

    def link_is_up(payload):
        # A local publish arrives remotely once, and locally only once: not reflected back.
        pub.publish("plant/line1/temp", payload, qos=1)
        m = watcher.expect_message()
        assert (m.topic, bytes(m.payload)) == ("plant/line1/temp", payload)
        sub.expect("site1/plant/line1/temp", payload, timeout=LINK)

    link_is_up(b"local-1")
    # The bridge's remote names, the local names, and names only `#` covers; QoS 0 and 1, retained and not.
    names = ["site1/plant/line1/temp", "site1/plant/line2/temp", "site1/other", "plant/line1/temp", "plant/x", "other/y"]
    remote.publish([(t, f"remote {t} q{q} r{int(r)}".encode(), q, r) for t in names for q in (0, 1) for r in (False, True)])
    sub.expect("site1/plant/line2/temp", timeout=10)  # the remote did deliver them
    watcher.expect_no_message(3.0)
    # A bridge that subscribed remotely would be sent the retained messages when it reconnects.
    remote.restart()
    link_is_up(b"local-2")
    watcher.expect_no_message(2.0)
    late = Client(local)
    late.subscribe("#", 1)
    late.expect_no_message(1.0)  # nothing retained arrived locally either


# ---------------------------------------------------------------------------------------------
# TLS

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("bridge-pki"))


def test_tls_bridge_with_a_client_certificate(broker_factory, mosquitto_factory, pki):
    remote = mosquitto_factory(tls=[pki.server_listener()])  # require_certificate true
    sub = remote.subscriber("site1/#")
    local = bastion(broker_factory, bridge([remote.tls_url()], tls=pki.bridge_tls()), sys_readable=True)
    Client(local).publish("plant/line1/temp", b"over tls", qos=1)
    assert sub.expect("site1/plant/line1/temp", b"over tls", timeout=LINK).qos == 1
    remote.wait_for_log(f"on port {remote.tls_ports[0]}")
    wait_state(local, "connected")


def test_tls_bridge_does_not_connect_to_a_remote_it_cannot_verify(broker_factory, mosquitto_factory, pki):
    # Listener 0 presents a certificate from the real CA, listener 1 one for another host name.
    remote = mosquitto_factory(tls=[pki.server_listener(), pki.server_listener(wrong_name=True)])
    sub = remote.subscriber("#")
    wrong_ca = bridge([remote.tls_url(0)], tls=pki.bridge_tls(ca=pki.other_ca))
    wrong_name = bridge([remote.tls_url(1)], name="it-dmz-name", client_id="plant1-bridge-name",
                        topics=[{"local": "line/#", "remote_prefix": "site2/", "qos": 1}], tls=pki.bridge_tls())
    local = bastion(broker_factory, wrong_ca, wrong_name, sys_readable=True)
    p = Client(local)
    p.publish("plant/line1/temp", b"must not leave", qos=1)
    p.publish("line/l1/temp", b"must not leave", qos=1)
    watchers = {name: state_watcher(local, name) for name in (NAME, "it-dmz-name")}
    # Long enough for several attempts (back-off starts at ~0.5 s) and one periodic refresh.
    time.sleep(12)
    for name, w in watchers.items():
        seen = [bytes(m.payload).decode(errors="replace").strip() for m in drain(w)
                if m.topic == f"$SYS/bastion/bridges/{name}/state"]
        seen = seen or bridge_states(w, name, STATE - 12)
        assert seen, f"no state published for {name} within {STATE:.0f} s"
        assert set(seen) == {"disconnected"}, f"{name}: {seen}"
    assert sub.snapshot() == []
    log = remote.log_text()
    assert f"as {CLIENT_ID} (" not in log and "as plant1-bridge-name (" not in log, "an MQTT session was established"


# ---------------------------------------------------------------------------------------------
# Failover, visible state, audit

def test_failover_to_the_next_remote_with_state_and_audit_events(broker_factory, mosquitto_factory, tmp_path):
    hold, dead = closed_port()
    try:
        remote = mosquitto_factory()
        sub = remote.subscriber("site1/#")
        audit = tmp_path / "audit.log"
        local = bastion(broker_factory, bridge([f"mqtt://127.0.0.1:{dead}", remote.url]),
                        args=["--audit-log", str(audit)], sys_readable=True)
        Client(local).publish("plant/line1/temp", b"via the second remote", qos=1)
        sub.expect("site1/plant/line1/temp", b"via the second remote", timeout=LINK)
        wait_state(local, "connected")
        connected = wait_audit(audit, "bridge_connected")
        assert any(NAME in str(list(r.values())) for r in connected), connected

        remote.stop()
        wait_state(local, "disconnected")
        disconnected = wait_audit(audit, "bridge_disconnected")
        assert any(NAME in str(list(r.values())) for r in disconnected), disconnected
    finally:
        hold.close()


# ---------------------------------------------------------------------------------------------
# Topic mapping

def test_topic_mapping_by_prefix_and_by_wildcard_levels(broker_factory, mosquitto_factory):
    remote = mosquitto_factory()
    sub = remote.subscriber("#")
    local = bastion(broker_factory, bridge([remote.url], topics=[
        {"local": "spBv1.0/#", "remote_prefix": "site1/", "qos": 1},
        {"local": "plant/+/temp", "remote": "site1/temps/+", "qos": 0},
    ]))
    p = Client(local)
    p.publish("spBv1.0/G1/NDATA/E1", b"ndata", qos=1)
    assert sub.expect("site1/spBv1.0/G1/NDATA/E1", b"ndata", timeout=LINK).qos == 1
    # Not covered by either filter (`+` is one level).
    for t in ("plant/line1/pressure", "plant/a/b/temp", "other/line1/temp", "site1/temps/line1"):
        p.publish(t, b"not bridged", qos=1)
    # QoS 0 is best effort: publish until one copy arrives (with the link up, the first one does).
    for attempt in range(40):
        p.publish("plant/line1/temp", b"21.5", qos=0)
        try:
            m = sub.expect("site1/temps/line1", b"21.5", timeout=0.5)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("plant/line1/temp never arrived as site1/temps/line1")
    assert m.qos == 0
    p.publish("spBv1.0/G1/NDATA/E1", b"marker", qos=1)
    sub.expect("site1/spBv1.0/G1/NDATA/E1", b"marker", timeout=10)
    time.sleep(0.5)
    assert {r.topic for r in sub.snapshot()} == {"site1/spBv1.0/G1/NDATA/E1", "site1/temps/line1"}
    assert b"not bridged" not in {r.payload for r in sub.snapshot()}


# ---------------------------------------------------------------------------------------------
# Protocol versions and credentials

@pytest.mark.parametrize("protocol, level", [(5, "p5"), ("3.1.1", "p2")], ids=["v5", "v311"])
def test_protocol_version_and_credentials_to_the_remote(broker_factory, mosquitto_factory, tmp_path, protocol, level):
    secret, reader_secret = "Bridge-Secret-93", "Reader-Secret-17"
    passwd = tmp_path / "remote-passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "plant1", secret], check=True, capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "reader", reader_secret], check=True, capture_output=True)
    remote = mosquitto_factory(password_file=passwd)  # anonymous access off
    sub = remote.subscriber("site1/#", username="reader", password=reader_secret)
    password_file = tmp_path / "bridge-password"
    password_file.write_text(secret + "\n")
    os.chmod(password_file, 0o600)
    local = bastion(broker_factory, bridge([remote.url], protocol=protocol, username="plant1",
                                           password_file=str(password_file)))
    Client(local).publish("plant/line1/temp", b"hello", qos=1)
    sub.expect("site1/plant/line1/temp", b"hello", timeout=LINK)
    # mosquitto logs the protocol level it accepted: p5 for 5.0, p2 for 3.1.1.
    remote.wait_for_log(f"as {CLIENT_ID} ({level}, ")
    assert "u'plant1'" in remote.log_text()
    assert secret not in local.log_text()


# ---------------------------------------------------------------------------------------------
# Configuration refused at start

def bridge_refused(tmp_path, change):
    port = free_port()
    b = bridge(["mqtt://127.0.0.1:1"])
    change(b)
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config_with(b, port=port)))
    try:
        return subprocess.run([BASTION_BIN, "serve", "--config", str(path), "--data-dir", str(tmp_path / "data")],
                              capture_output=True, text=True, timeout=20, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("bastion accepted the configuration and kept running")


def test_a_valid_bridge_configuration_is_accepted(broker_factory):
    # The refusals below are about one key each: the same configuration without it starts.
    b = bastion(broker_factory, bridge(["mqtt://127.0.0.1:1"]))
    assert b.stop() == 0


@pytest.mark.parametrize("change, named", [
    (lambda b: b.update(frobnicate=1), r"frobnicate"),
    (lambda b: b["topics"][0].update(remote_prefx="x/"), r"remote_prefx"),
    (lambda b: b.update(upward_only=True, direction="in"), r"bridges\[0\]\.(direction|upward_only)"),
    (lambda b: b.update(upward_only=True, direction="both"), r"bridges\[0\]\.(direction|upward_only)"),
    (lambda b: b["topics"][0].update(direction="in"), r"bridges\[0\]\.topics\[0\]"),
], ids=["unknown-key", "unknown-topic-key", "upward-only-in", "upward-only-both", "upward-only-topic-in"])
def test_contradictory_or_unknown_bridge_settings_are_refused(tmp_path, change, named):
    result = bridge_refused(tmp_path, change)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(named, result.stderr), f"stderr does not name {named}: {result.stderr!r}"


# ---------------------------------------------------------------------------------------------
# Both directions: no loop

@pytest.mark.parametrize("protocol", [5, "3.1.1"], ids=["v5", "v311"])
def test_bridging_both_ways_does_not_loop(broker_factory, mosquitto_factory, protocol):
    remote = mosquitto_factory()
    sub = remote.subscriber("shared/#")
    local = bastion(broker_factory, bridge([remote.url], protocol=protocol, upward_only=False, direction="both",
                                           topics=[{"local": "shared/#", "remote": "shared/#", "qos": 1}]))
    watcher = Client(local)
    watcher.subscribe("shared/#", 1)

    Client(local).publish("shared/from-local", b"L", qos=1)
    sub.expect("shared/from-local", b"L", timeout=LINK)
    time.sleep(3)  # a loop would have brought it back by now
    got = [(m.topic, bytes(m.payload)) for m in drain(watcher)]
    assert got == [("shared/from-local", b"L")]
    assert sub.count("shared/from-local") == 1

    remote.publish([("shared/from-remote", b"R", 1, False)])
    m = watcher.expect_message(timeout=10)
    assert (m.topic, bytes(m.payload)) == ("shared/from-remote", b"R")
    time.sleep(3)
    assert drain(watcher) == []
    assert sub.count("shared/from-remote") == 1


def drain(client):
    out = []
    while not client.messages.empty():
        out.append(client.messages.get_nowait())
    return out


# ---------------------------------------------------------------------------------------------
# The bridge's own session

def test_no_client_can_claim_the_bridges_session(broker_factory, mosquitto_factory):
    import wire
    remote = mosquitto_factory()
    local = bastion(broker_factory, bridge([remote.url]))
    for version in (5, 4):
        r = wire.Raw(local, version=version)
        code = r.connect(client_id=f"$bridge/{NAME}", expect_rc=None).rc
        r.close()
        assert code == (0x85 if version == 5 else 0x02), f"MQTT {version}: CONNACK {code:#x}"
    # The link is still there: a local message reaches the remote.
    sub = remote.subscriber("site1/#")
    Client(local).publish("plant/still-bridged", b"ok", qos=1)
    sub.expect("site1/plant/still-bridged", b"ok", timeout=LINK)
