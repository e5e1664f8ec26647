"""Authorization: every rule type (anonymous, user, client id, role, pattern %u/%c, all), the
precedence examples of docs/access-control.md, subscriptions wider than the grant, denial reason
codes in 3.1.1 and 5.0, per-receiver read checks (live, retained, queued), wills and retained
messages checked against the publisher's grant, hostile identities, and `bastion acl check|lint`.

The access model is Bastion's (MQTT leaves authorization to the server), so everything here is
bastion_only. Most tests share one broker (module scope) and use their own topics."""

import uuid

import pytest

import wire
from helpers_sec import (SUBACK_REFUSED, Secured, bastion, close_quietly, mosquitto_passwd, reason, secured,  # noqa: F401
                         suback, unique, write)
from mqttclient import V5, V311, Client, PacketTypes, props

pytestmark = pytest.mark.bastion_only

PROTOCOLS = [pytest.param(V311, id="3.1.1"), pytest.param(V5, id="5.0")]

ACL = """\
# Topic lines before any user line are for anonymous clients.
topic read public/#

user alice
topic readwrite plant/#
topic deny plant/secret/#
topic read name with spaces/#

user bob
topic readwrite plant/#
topic deny plant/secret/#
topic deny carve/#
topic read carve/line1/#
topic deny lvl/+/temp
topic read lvl/line1/temp
topic deny a/#
topic read a
topic read tie/x
topic deny tie/x
topic write wo/temp
topic read wo/#
topic read narrow/line1/+/temp
topic readwrite retained/bob/#
topic write will/bob/#

user carol
topic read will/#
topic read retained/#
topic read public/#

user feeder
topic readwrite #

# For every client; %u only for clients with a username.
pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern readwrite %u/#
pattern write %c/status
"""

CONFIG = {
    "auth": {
        "roles": {"operators": ["dave", "erin"]},
        "acl": [
            {"role": "operators", "access": "readwrite", "topic": "ops/#"},
            {"role": "operators", "access": "readwrite", "topic": "ops/x"},
            {"user": "dave", "access": "deny", "topic": "ops/x"},               # user beats role
            {"role": "operators", "access": "deny", "topic": "ops/locked"},
            {"user": "erin", "access": "readwrite", "topic": "ops/locked"},     # user beats role, even a deny
            {"client_id": "gw-1", "access": "readwrite", "topic": "gwa/#"},
            {"role": "operators", "access": "deny", "topic": "gwa/b"},         # filter first
            {"client_id": "gw-1", "access": "readwrite", "topic": "cid/x"},
            {"user": "dave", "access": "deny", "topic": "cid/x"},              # the user's deny beats its client id's allow
            {"client_id": "gw-1", "access": "readwrite", "topic": "cid/y"},
            {"client_id": "line1-gw-7", "access": "publish", "topic": "plant/line1/#"},
            {"client_id": "line1-gw-9", "user": "gw9", "access": "publish", "topic": "plant/line9/#"},  # explicit binding
            {"all": True, "access": "publish", "topic": "telemetry/%u/%c"},
            {"all": True, "access": "deny", "topic": "pa/x"},
            {"anonymous": True, "access": "publish", "topic": "pa/x"},          # all beats anonymous
            {"anonymous": True, "access": "publish", "topic": "public/anon-in"},
            {"role": "operators", "access": "subscribe", "topic": "opsview/+/status"},
        ],
        # Client-id rules and %c patterns grant only to client ids bound to the identity.
        "allowed_clients": {"dave": ["gw-1", "t-*"], "gw7": ["line1-gw-7"], "devs": ["dev-*"], "a": ["a", "t-*"]},
    }
}

USERS = {name: f"{name}-pw-{i}" for i, name in enumerate(["alice", "bob", "carol", "dave", "erin", "feeder", "a", "gw7", "gw9",
                                                         "devs", "mallory"])}
# Names that could widen a pattern if substituted naively (a '#' name cannot be in a password file:
# the line would be a comment).
ODD_USERS = {"+": "plus-pw", "a/b": "slash-pw", "$SYS": "sys-pw"}


@pytest.fixture(scope="module")
def acl(tmp_path_factory):
    s = Secured(tmp_path_factory.mktemp("acl"), USERS, acl=ACL, config=CONFIG, anonymous=True, odd_users=ODD_USERS)
    yield s
    s.stop()


@pytest.fixture
def clients(acl):
    """clients(user, protocol=V5, client_id=None, **kw) -> connected Client; disconnected after the test."""
    made = []

    def make(user=None, protocol=V5, client_id=None, **kw):
        c = acl.client(user, protocol=protocol, client_id=client_id, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        close_quietly(c)


def pub_reason(client, topic, qos=1, retain=False):
    """5.0: PUBACK reason code (int) of one QoS 1 PUBLISH."""
    info = client.publish(topic, b"m", qos=qos, retain=retain)
    return reason(client.ack_reason(info))


def allowed(code):
    return code < 0x80


def assert_only(receiver, topics, quiet=0.3):
    """The receiver gets exactly `topics`, in this order, then nothing more."""
    got = [receiver.expect_message().topic for _ in topics]
    assert got == list(topics)
    receiver.expect_no_message(quiet)


# ---------------------------------------------------------------- rule types

def test_user_rules(clients):
    alice = clients("alice")
    assert allowed(pub_reason(alice, "plant/line1/temp"))
    assert pub_reason(alice, "plant/secret/key") == 0x87
    assert pub_reason(alice, "carve/line1/temp") == 0x87        # bob's rule, not hers
    assert suback(alice, "plant/#") == 1
    assert suback(alice, "name with spaces/#") == 1          # the filter is the rest of the line
    assert suback(alice, "tie/x") == 0x87


def test_anonymous_rules_apply_only_to_anonymous_clients(clients):
    anon = clients(None)
    assert suback(anon, "public/#") == 1
    assert pub_reason(anon, "public/news") == 0x87             # read only
    assert allowed(pub_reason(anon, "public/anon-in"))         # native anonymous rule
    alice = clients("alice")
    assert suback(alice, "public/#") == 0x87                   # topic lines before `user` are anonymous-only
    carol = clients("carol")
    assert suback(carol, "public/#") == 1


def test_client_id_rule(clients):
    gw = clients("gw7", client_id="line1-gw-7")                 # bound by allowed_clients
    assert allowed(pub_reason(gw, "plant/line1/temp"))
    assert pub_reason(gw, "plant/line2/temp") == 0x87
    assert suback(gw, "plant/line1/#") == 0x87                 # publish-only grant
    other = clients(None, client_id="line1-gw-8")
    assert pub_reason(other, "plant/line1/temp") == 0x87


def test_a_client_id_rule_grants_nothing_to_whoever_chooses_that_client_id(clients):
    # Any client may pick any client id: an anonymous client, or another user, calling itself
    # line1-gw-7 gets none of the gateway's rights.
    assert pub_reason(clients(None, client_id="line1-gw-7"), "plant/line1/valve") == 0x87
    mallory = clients("mallory", client_id="line1-gw-9")
    assert pub_reason(mallory, "plant/line9/valve") == 0x87
    mallory.disconnect()
    assert allowed(pub_reason(clients("gw9", client_id="line1-gw-9"), "plant/line9/valve"))


def test_role_rules(clients):
    erin = clients("erin")
    assert allowed(pub_reason(erin, "ops/y"))
    assert suback(erin, "ops/#") == 1
    assert suback(erin, "opsview/+/status") == 1               # `subscribe` grants subscribe...
    assert pub_reason(erin, "opsview/a/status") == 0x87         # ...but not publish
    carol = clients("carol")
    assert pub_reason(carol, "ops/y") == 0x87                   # not a member


# Certificate rules need a TLS listener and a PKI: test_tls.test_certificate_rule.


def test_subscribe_grant_also_receives(clients):
    erin = clients("erin")
    assert suback(erin, "opsview/+/status") == 1
    feeder = clients("feeder")
    feeder.publish("opsview/p1/status", b"up", qos=1)
    assert erin.expect_message().topic == "opsview/p1/status"


# ---------------------------------------------------------------- patterns

def test_client_id_pattern(clients):
    cid = unique("dev")
    dev = clients("devs", client_id=cid)                         # dev-* is bound to devs
    assert allowed(pub_reason(dev, f"devices/{cid}/temp"))
    assert pub_reason(dev, f"devices/{cid}x/temp") == 0x87
    assert pub_reason(dev, "devices/other/temp") == 0x87
    assert suback(dev, f"devices/{cid}/#") == 1
    assert suback(dev, "devices/+/#") == 0x87
    assert suback(dev, "devices/#") == 0x87


def test_username_pattern(clients):
    alice = clients("alice")
    assert suback(alice, "users/alice/inbox") == 1
    assert suback(alice, "users/bob/inbox") == 0x87
    assert suback(alice, "users/+/inbox") == 0x87
    assert pub_reason(alice, "users/alice/inbox") == 0x87       # read-only pattern
    anon = clients(None, client_id="alice")
    assert suback(anon, "users/alice/inbox") == 0x87            # %u never applies without a username


def test_native_pattern_substitutes_user_and_client_id(clients):
    dave = clients("dave")                                        # his t-* client ids are bound to him
    cid = dave.client_id
    assert allowed(pub_reason(dave, f"telemetry/dave/{cid}"))
    assert pub_reason(dave, f"telemetry/dave/{cid}2") == 0x87
    assert pub_reason(dave, f"telemetry/bob/{cid}") == 0x87
    alice = clients("alice")
    assert pub_reason(alice, f"telemetry/alice/{alice.client_id}") == 0x87   # nothing binds alice's client id
    anon = clients(None)
    assert pub_reason(anon, f"telemetry//{anon.client_id}") == 0x87   # no username: %u never becomes ""


def test_an_unbound_client_id_grants_nothing_through_a_pattern(acl, clients):
    # An anonymous client (or one with an assigned id) has no binding: %c does not apply.
    c = Client(acl.broker, protocol=V5, client_id="", auto_connect=False)
    _, rc, properties = c.connect()
    assigned = properties.AssignedClientIdentifier
    assert assigned
    assert pub_reason(c, f"devices/{assigned}/t") == 0x87
    c.disconnect()
    anon = clients(None, client_id=unique("dev"))
    assert pub_reason(anon, f"devices/{anon.client_id}/t") == 0x87
    # mallory connecting as alice-dev cannot read alice-dev's devices/alice-dev/#.
    assert suback(clients("mallory", client_id="dev-alice"), "devices/dev-alice/#") == 0x87


# ---------------------------------------------------------------- precedence (docs/access-control.md)

def test_deeper_deny_beats_wider_allow(clients):
    bob = clients("bob")
    assert pub_reason(bob, "plant/secret/key") == 0x87
    assert allowed(pub_reason(bob, "plant/line1/key"))


def test_carve_out_literal_beats_hash(clients):
    bob, feeder = clients("bob"), clients("feeder")
    assert suback(bob, "carve/line1/#") == 1
    assert suback(bob, "carve/+/temp") == 0x87                 # the deny covers it entirely
    assert suback(bob, "carve/#") == 0x87
    feeder.publish("carve/line1/temp", b"1", qos=1)
    assert_only(bob, ["carve/line1/temp"])


def test_plus_deny_loses_only_to_a_literal(clients):
    bob = clients("bob")
    assert suback(bob, "lvl/line1/temp") == 1
    assert suback(bob, "lvl/line2/temp") == 0x87
    assert suback(bob, "lvl/+/temp") == 0x87


def test_exact_level_beats_hash_below_it(clients):
    bob = clients("bob")
    assert suback(bob, "a") == 1
    assert suback(bob, "a/b") == 0x87
    assert suback(bob, "a/#") == 0x87


def test_tie_goes_to_deny(clients):
    bob = clients("bob")
    assert suback(bob, "tie/x") == 0x87


def test_rules_for_another_operation_are_not_candidates(clients):
    bob, feeder = clients("bob"), clients("feeder")
    assert suback(bob, "wo/#") == 1
    feeder.publish("wo/temp", b"1", qos=1)
    assert_only(bob, ["wo/temp"])                               # `topic write wo/temp` does not hide it
    assert allowed(pub_reason(bob, "wo/temp"))
    assert pub_reason(bob, "wo/other") == 0x87


def test_user_beats_role(clients):
    dave, erin = clients("dave"), clients("erin")
    assert pub_reason(dave, "ops/x") == 0x87
    assert allowed(pub_reason(erin, "ops/x"))
    assert allowed(pub_reason(erin, "ops/locked"))              # her own allow beats her role's deny
    assert pub_reason(dave, "ops/locked") == 0x87


def test_filter_specificity_before_identity(clients):
    gw = clients("dave", client_id="gw-1")
    assert pub_reason(gw, "gwa/b") == 0x87                       # role deny gwa/b beats client-id gwa/#
    assert allowed(pub_reason(gw, "gwa/c"))


def test_a_user_deny_beats_its_client_id_allow(clients):
    assert pub_reason(clients("dave", client_id="gw-1"), "cid/x") == 0x87
    assert allowed(pub_reason(clients("dave", client_id="gw-1"), "cid/y"))
    assert pub_reason(clients("dave"), "cid/y") == 0x87


def test_all_beats_anonymous(clients):
    assert pub_reason(clients(None), "pa/x") == 0x87


def test_wildcards_never_reach_dollar_topics(clients):
    feeder = clients("feeder")                                    # topic readwrite #
    assert suback(feeder, "$SYS/#") == 0x87
    assert suback(feeder, "$SYS/broker/uptime") == 0x87
    assert pub_reason(feeder, "$SYS/broker/uptime") == 0x87
    assert suback(feeder, "#") == 1


# ---------------------------------------------------------------- subscriptions wider than the grant

@pytest.mark.parametrize("filter_,code", [
    ("#", 0x87), ("narrow/#", 0x87), ("narrow/+/+/temp", 0x87), ("narrow/line1/#", 0x87),
    ("narrow/line1/+/temp", 1), ("narrow/line1/press-3/temp", 1),
    ("$share/g/narrow/line1/+/temp", 1), ("$share/g/narrow/#", 0x87),
])
def test_subscription_must_lie_inside_the_grant(clients, filter_, code):
    assert suback(clients("bob"), filter_) == code


def test_partial_deny_filters_each_message(clients):
    alice, feeder = clients("alice"), clients("feeder")
    tag = uuid.uuid4().hex[:8]
    assert suback(alice, f"plant/+/{tag}") == 1
    feeder.publish(f"plant/secret/{tag}", b"s", qos=1)
    feeder.publish(f"plant/open/{tag}", b"o", qos=1)
    assert_only(alice, [f"plant/open/{tag}"])


def test_multiple_filters_in_one_subscribe_get_their_own_codes(clients):
    bob = clients("bob")
    _, mid = bob.c.subscribe([("carve/line1/#", 1), ("carve/#", 1), ("a", 0)])
    got_mid, codes, _ = bob.subacks.get(timeout=5)
    assert got_mid == mid
    assert [reason(c) for c in codes] == [1, 0x87, 0]


# ---------------------------------------------------------------- denial codes

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subscribe_denied_code(clients, protocol):
    alice = clients("alice", protocol=protocol)
    assert suback(alice, "plant/secret/#") == SUBACK_REFUSED[protocol]
    assert suback(alice, "plant/line1/#") == 1                  # the connection goes on


def raw_client(acl, user, version, client_id=None):
    r = wire.Raw(acl.broker, version)
    r.connect(client_id or unique("raw"), username=user, password=acl.users[user])
    return r


@pytest.mark.parametrize("qos,ack", [(1, wire.PUBACK), (2, wire.PUBREC)])
def test_publish_denied_5_gets_0x87(acl, clients, qos, ack):
    watcher = clients("feeder")
    assert suback(watcher, "plant/secret/#") == 1
    r = raw_client(acl, "alice", 5)
    r.send(wire.publish("plant/secret/key", b"x", qos=qos, pid=7, version=5))
    rc = r.expect_ack(ack, pid=7).rc
    assert rc == 0x87
    r.send(wire.publish("plant/open/key", b"y", qos=1, pid=8, version=5))   # still connected
    rc = r.expect_ack(wire.PUBACK, pid=8).rc
    assert rc < 0x80
    watcher.expect_no_message(0.3)
    r.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_publish_denied_qos0_is_dropped_silently(acl, clients, protocol):
    watcher = clients("feeder")
    tag = uuid.uuid4().hex[:8]
    assert suback(watcher, f"plant/+/{tag}") == 1
    alice = clients("alice", protocol=protocol)
    alice.publish(f"plant/secret/{tag}", b"no", qos=0)
    alice.publish(f"plant/open/{tag}", b"yes", qos=0)
    assert_only(watcher, [f"plant/open/{tag}"])
    assert alice.disconnects.empty()


@pytest.mark.parametrize("qos", [1, 2])
def test_publish_denied_311_is_acknowledged_but_not_delivered(acl, clients, qos):
    watcher = clients("feeder")
    tag = uuid.uuid4().hex[:8]
    assert suback(watcher, f"plant/+/{tag}") == 1
    r = raw_client(acl, "alice", 4)
    r.send(wire.publish(f"plant/secret/{tag}", b"x", qos=qos, pid=3, version=4))
    assert r.expect(wire.PUBACK if qos == 1 else wire.PUBREC).body == b"\x00\x03", \
        "3.1.1 acknowledgements carry no reason code"
    if qos == 2:
        r.send(wire.ack(wire.PUBREL, 3))
        r.expect_ack(wire.PUBCOMP, pid=3)
    r.send(wire.publish(f"plant/open/{tag}", b"y", qos=1, pid=4, version=4))
    r.expect_ack(wire.PUBACK, pid=4)
    assert_only(watcher, [f"plant/open/{tag}"])
    r.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_disconnect_on_denied_publish(secured, protocol):
    config = {"auth": {"disconnect_on_denied_publish": True}}
    s = secured({"alice": "a-pw"}, acl="user alice\ntopic readwrite ok/#\n", config=config)
    r = wire.Raw(s.broker, 5 if protocol == V5 else 4)
    r.connect("dod", username="alice", password="a-pw")
    r.send(wire.publish("forbidden/x", b"x", qos=1, pid=1, version=r.version))
    got = r.expect_closed_after(allowed=(wire.PUBACK, wire.DISCONNECT), timeout=2)
    if protocol == V5:
        assert 0x87 in wire.disconnect_reasons(got)


# ---------------------------------------------------------------- reads per receiver, retained, will

def test_read_is_checked_per_receiver(clients):
    tag = uuid.uuid4().hex[:8]
    alice, carol, feeder = clients("alice"), clients("carol"), clients("feeder")
    anon = clients(None)
    assert suback(alice, f"plant/+/{tag}") == 1
    assert suback(feeder, f"plant/+/{tag}") == 1
    assert suback(carol, f"plant/+/{tag}") == 0x87
    assert suback(anon, f"plant/+/{tag}") == 0x87
    feeder.publish(f"plant/secret/{tag}", b"s", qos=1)
    assert feeder.expect_message().topic == f"plant/secret/{tag}"
    alice.expect_no_message(0.3)


def test_retained_messages_checked_on_publish_and_on_delivery(clients):
    tag = uuid.uuid4().hex[:8]
    bob, feeder = clients("bob"), clients("feeder")
    assert allowed(pub_reason(bob, f"retained/bob/{tag}", retain=True))
    assert pub_reason(bob, f"retained/alice/{tag}", retain=True) == 0x87
    feeder.publish(f"plant/secret/{tag}", b"s", qos=1, retain=True)
    feeder.publish(f"plant/open/{tag}", b"o", qos=1, retain=True)

    carol = clients("carol")
    assert suback(carol, f"retained/+/{tag}") == 1
    m = carol.expect_message()
    assert (m.topic, m.retain) == (f"retained/bob/{tag}", True)
    carol.expect_no_message(0.3)

    alice = clients("alice")
    assert suback(alice, f"plant/+/{tag}") == 1                 # partial deny: allowed, filtered per message
    m = alice.expect_message()
    assert (m.topic, m.retain) == (f"plant/open/{tag}", True)
    alice.expect_no_message(0.3)
    # Clear what this test retained.
    bob.publish(f"retained/bob/{tag}", b"", qos=1, retain=True)
    feeder.publish(f"plant/secret/{tag}", b"", qos=1, retain=True)
    feeder.publish(f"plant/open/{tag}", b"", qos=1, retain=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_will_is_checked_against_the_publishers_grant(acl, clients, protocol):
    tag = uuid.uuid4().hex[:8]
    carol = clients("carol")
    assert suback(carol, f"will/+/{tag}") == 1
    denied = clients("bob", protocol=protocol, will=dict(topic=f"will/alice/{tag}", payload=b"forged", qos=1))
    granted = clients("bob", protocol=protocol, will=dict(topic=f"will/bob/{tag}", payload=b"gone", qos=1))
    denied.drop()
    granted.drop()
    m = carol.expect_message()
    assert (m.topic, m.payload) == (f"will/bob/{tag}", b"gone")
    carol.expect_no_message(0.5)


def test_queued_messages_are_read_checked_on_resume(acl, clients):
    """A persistent session queues QoS 1 messages while offline; on reconnect only those the
    subscriber may read are delivered (the read check is per receiver and per message)."""
    tag = uuid.uuid4().hex[:8]
    cid = unique("persist")
    alice = clients("alice", protocol=V311, client_id=cid, clean=False)
    assert suback(alice, f"plant/+/{tag}") == 1
    alice.disconnect()
    feeder = clients("feeder")
    feeder.publish(f"plant/secret/{tag}", b"secret", qos=1)
    feeder.publish(f"plant/open/{tag}", b"open", qos=1)
    again = clients("alice", protocol=V311, client_id=cid, clean=False)
    assert_only(again, [f"plant/open/{tag}"])


@pytest.mark.parametrize("version", [V311, V5], ids=["3.1.1", "5.0"])
def test_another_user_cannot_resume_a_persistent_session(acl, clients, version):
    """carol asks for alice's persistent session (same client id): she is refused, and alice's
    queued message is still there for alice."""
    tag = uuid.uuid4().hex[:8]
    cid = unique("shared-id")
    expiry = {"properties": props(PacketTypes.CONNECT, SessionExpiryInterval=300)} if version == V5 else {}
    alice = clients("alice", protocol=version, client_id=cid, clean=False, **expiry)
    assert suback(alice, f"plant/open/{tag}") == 1
    alice.disconnect()
    feeder = clients("feeder")
    feeder.publish(f"plant/open/{tag}", b"for alice only", qos=1).wait_for_publish(5)
    got = h_connack(acl, version, cid, "carol")
    assert got == (0x87 if version == V5 else 0x05)
    again = clients("alice", protocol=version, client_id=cid, clean=False, **expiry)
    assert again.expect_message().payload == b"for alice only"


def h_connack(acl, version, client_id, user):
    """The CONNACK code for a persistent-session CONNECT of `user` with `client_id`."""
    from helpers_sec import connack
    got = connack(acl.broker, version, client_id=client_id, username=user, password=USERS[user])
    assert got is not None, "no CONNACK"
    return got[1]


# ---------------------------------------------------------------- hostile identities

def test_username_plus_does_not_widen_patterns(clients):
    plus = clients("+")
    assert suback(plus, "users/+/inbox") == 0x87                # naive: users/+/inbox
    assert suback(plus, "users/alice/inbox") == 0x87
    feeder = clients("feeder")
    feeder.publish("users/alice/inbox", b"private", qos=1)
    plus.expect_no_message(0.3)


def test_username_with_slash_does_not_widen_patterns(clients):
    slash = clients("a/b")
    assert suback(slash, "users/a/b/inbox") == 0x87             # naive: users/a/b/inbox
    assert pub_reason(slash, "a/b/x") == 0x87                   # naive: %u/# -> a/b/#
    a = clients("a")
    assert allowed(pub_reason(a, "a/b/x"))                      # user "a" owns a/#


def test_username_sys_does_not_reach_broker_topics(clients):
    sys_user = clients("$SYS")
    assert suback(sys_user, "$SYS/#") == 0x87                   # naive: %u/# -> $SYS/#
    assert suback(sys_user, "$SYS/broker/uptime") == 0x87
    assert pub_reason(sys_user, "$SYS/broker/uptime") == 0x87


@pytest.mark.parametrize("client_id,filters,topics", [
    ("+", ["devices/+/#", "devices/other/#"], ["devices/other/t"]),
    ("#", ["devices/#", "devices/other/#"], ["devices/other/t"]),
    ("a/b", ["devices/a/b/#"], ["devices/a/b/t"]),
    ("$SYS", ["$SYS/#"], ["$SYS/status"]),
], ids=["plus", "hash", "slash", "sys"])
def test_hostile_client_ids_do_not_widen_patterns(clients, client_id, filters, topics):
    c = clients(None, client_id=client_id)
    for f in filters:
        assert suback(c, f) == 0x87, f
    for t in topics:
        assert pub_reason(c, t) == 0x87, t


def test_ordinary_client_id_control(clients):
    a = clients("a", client_id="a")
    assert allowed(pub_reason(a, "devices/a/b/t"))              # the real owner of devices/a/#
    assert allowed(pub_reason(a, "a/status"))


@pytest.mark.parametrize("field", ["client_id", "username"])
@pytest.mark.parametrize("version", [4, 5])
def test_nul_in_identity_is_refused(acl, field, version):
    kw = {"client_id": "nul\x00id"} if field == "client_id" else {"client_id": unique("nul"), "username": "ali\x00ce",
                                                                   "password": "x"}
    r = wire.Raw(acl.broker, version)
    r.send(wire.connect(kw.pop("client_id"), version=version, **kw))
    got = r.expect_closed_after(allowed=(wire.CONNACK, wire.DISCONNECT))
    for p in got:
        if p.type == wire.CONNACK:
            assert p.body[1] != 0, "CONNECT with U+0000 was accepted"


# ---------------------------------------------------------------- no ACL: only $SYS closed

def test_without_acl_everything_but_sys_is_open(secured):
    s = secured({"u": "u-pw", "v": "v-pw"})
    u, v = s.client("u"), s.client("v")
    assert suback(v, "#") == 1
    assert suback(v, "$SYS/#") == 0x87
    assert suback(v, "$other/#") == 1
    assert allowed(pub_reason(u, "any/topic"))
    assert pub_reason(u, "$SYS/broker/forged") == 0x87
    assert allowed(pub_reason(u, "$other/x"))
    got = sorted(v.expect_message().topic for _ in range(2))
    assert got == ["$other/x", "any/topic"]
    u.disconnect()
    v.disconnect()


@pytest.mark.parametrize("auth", [
    {"allowed_clients": {"u": ["u-*"]}},
    {"require_client_id_equals_username": True},
], ids=["allowed_clients", "require_client_id_equals_username"])
def test_device_allowlist_alone_is_not_an_acl(secured, auth):
    """Restricting which client ids may connect says nothing about topics: without ACL rules the
    no-ACL behaviour (everything but $SYS) still applies."""
    s = secured({"u": "u-pw"}, config={"auth": auth})
    u = s.client("u", client_id="u-1" if "allowed_clients" in auth else "u")
    assert suback(u, "any/#") == 1
    assert allowed(pub_reason(u, "any/topic"))
    assert pub_reason(u, "$SYS/broker/forged") == 0x87


# ---------------------------------------------------------------- bastion acl check / lint

CHECK_ACL = """\
topic read public/#
# comment
user bob
topic readwrite plant/#
topic deny plant/secret/#
topic read narrow/line1/+/temp
pattern write devices/%c/#
"""


@pytest.mark.parametrize("args,code,prefix", [
    (["--user", "bob", "pub", "plant/secret/key"], 1, "deny (acl.conf:5 user bob: topic deny plant/secret/#)"),
    (["--user", "bob", "pub", "plant/line1/temp"], 0, "allow (acl.conf:4"),
    (["--user", "bob", "sub", "plant/#"], 0, "allow ("),
    (["--user", "bob", "sub", "narrow/#"], 1, "deny ("),
    (["--user", "bob", "sub", "narrow/line1/+/temp"], 0, "allow (acl.conf:6"),
    (["--user", "bob", "read", "public/x"], 1, "deny ("),
    (["read", "public/x"], 0, "allow (acl.conf:1"),
    (["pub", "public/x"], 1, "deny ("),
    (["--user", "carol", "pub", "devices/d1/t"], 1, "deny ("),          # %c needs --client
    (["--user", "carol", "--client", "d1", "pub", "devices/d1/t"], 1, "deny ("),      # d1 is not bound to carol
    (["--user", "carol", "--client", "d1", "--cert", "d1", "pub", "devices/d1/t"], 0, "allow (acl.conf:7"),
    (["--user", "carol", "--client", "+", "pub", "devices/x/t"], 1, "deny ("),
    (["--user", "bob", "read", "$SYS/broker/uptime"], 1, "deny ("),
])
def test_acl_check(tmp_path, args, code, prefix):
    write(tmp_path / "acl.conf", CHECK_ACL)
    rc, out, err = bastion("acl", "check", "--acl-file", "acl.conf", *args, cwd=tmp_path)
    assert rc == code, out + err
    assert out.strip().startswith(prefix), out


def test_acl_check_default_deny_names_no_rule(tmp_path):
    write(tmp_path / "acl.conf", CHECK_ACL)
    rc, out, _ = bastion("acl", "check", "--acl-file", "acl.conf", "--user", "zed", "pub", "x/y", cwd=tmp_path)
    assert rc == 1
    assert out.strip() == "deny (default deny)"


@pytest.mark.parametrize("args", [["frob", "x"], ["pub"]])
def test_acl_check_bad_usage_exits_2(tmp_path, args):
    write(tmp_path / "acl.conf", CHECK_ACL)
    rc, _, _ = bastion("acl", "check", "--acl-file", "acl.conf", *args, cwd=tmp_path)
    assert rc == 2


@pytest.mark.parametrize("text,line", [
    ("user bob\ntopic readwrite a/#\ntopic bogus b/#\n", 3),
    ("user bob\nfrobnicate x\n", 2),
    ("user bob\n\ntopic read a/#/b\n", 3),
])
def test_acl_check_and_lint_name_the_broken_line(tmp_path, text, line):
    write(tmp_path / "acl.conf", text)
    for cmd in (["check", "--acl-file", "acl.conf", "pub", "a"], ["lint", "--acl-file", "acl.conf"]):
        rc, out, err = bastion("acl", *cmd, cwd=tmp_path)
        assert rc == 2, (cmd, out, err)
        assert f"acl.conf:{line}" in out + err, (cmd, out + err)


def test_acl_check_missing_file_exits_2(tmp_path):
    rc, _, err = bastion("acl", "check", "--acl-file", tmp_path / "nope", "pub", "a")
    assert rc == 2
    assert "nope" in err


def test_acl_check_follows_client_id_bindings_of_the_config(tmp_path):
    write(tmp_path / "acl.conf", CHECK_ACL)
    write(tmp_path / "bastion.yaml", "auth:\n  acl_file: acl.conf\n  allowed_clients: {carol: [\"d*\"]}\n")
    rc, out, _ = bastion("acl", "check", "--config", "bastion.yaml", "--user", "carol", "--client", "d1", "pub", "devices/d1/t", cwd=tmp_path)
    assert rc == 0 and out.startswith("allow (acl.conf:7"), out
    rc, out, _ = bastion("acl", "check", "--config", "bastion.yaml", "--user", "mallory", "--client", "d1", "pub", "devices/d1/t", cwd=tmp_path)
    assert rc == 1, out


def test_acl_lint_warns_about_client_id_grants_nothing_binds(tmp_path):
    write(tmp_path / "acl.conf", "user bob\ntopic readwrite plant/#\npattern write devices/%c/#\n")
    rc, out, err = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf")
    assert rc == 0, out + err
    assert "uses %c" in out
    rc, _, _ = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf", "--strict")
    assert rc == 2


def test_acl_lint_clean_file(tmp_path):
    write(tmp_path / "acl.conf", "user bob\ntopic readwrite plant/#\npattern write devices/%u/#\n")
    for extra in ([], ["--strict"]):
        rc, out, err = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf", *extra)
        assert rc == 0, out + err
        assert "no warnings" in out


@pytest.mark.parametrize("text", [
    "user bob\ntopic read #\n",                       # grant of #
    "user bob\ntopic write +/status\n",               # top-level +
    "user bob\ntopic read a/b\ntopic read a/b\n",     # repeated rule
    "user bob\ntopic write $SYS/broker/x\n",          # publish on $SYS
    "pattern read shared/x\n",                        # pattern without %u/%c
    "user bob\ntopic read $share/g/a\n",              # rule on $share
    "user bob\ntopic deny plant/#\ntopic read plant/line1/#\n",  # differs from Mosquitto
])
def test_acl_lint_warnings_and_strict(tmp_path, text):
    write(tmp_path / "acl.conf", text)
    rc, out, err = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf")
    assert rc == 0, out + err
    assert "warning" in out.lower(), out
    rc, out, err = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf", "--strict")
    assert rc == 2, out + err


def test_acl_lint_password_file_users_and_weak_hashes(tmp_path):
    passwd = mosquitto_passwd(tmp_path / "passwd", {"bob": "b", "orphan": "o"})
    write(tmp_path / "acl.conf", "user bob\ntopic readwrite plant/#\n")
    rc, out, err = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf", "--password-file", passwd)
    assert rc == 0, out + err
    assert "orphan" in out                              # a user no rule applies to
    assert "weak" in out and "note" in out              # mosquitto_passwd writes $7$ with 101 iterations
    rc, _, _ = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf", "--password-file", passwd, "--strict")
    assert rc == 2
    # Notes alone do not count as warnings.
    passwd = mosquitto_passwd(tmp_path / "passwd2", {"bob": "b"})
    rc, out, err = bastion("acl", "lint", "--acl-file", tmp_path / "acl.conf", "--password-file", passwd, "--strict")
    assert rc == 0, out + err
    assert "note" in out


@pytest.mark.parametrize("text,args,code", [
    ("user bob\r\ntopic readwrite plant/#\r\n", ["--user", "bob", "pub", "plant/x"], 0),            # CRLF
    ("user bob\n\ttopic\t\tread   plant/#  \n", ["--user", "bob", "read", "plant/x"], 0),          # tabs, blanks
    ("user bob\ntopic read\n", ["--user", "bob", "pub", "read"], 0),        # one word: the filter, readwrite
    ("user  two words \ntopic write t/#\n", ["--user", "two words", "pub", "t/x"], 0),
    ("user bob\ntopic read plant/#\n", ["--user", "bob", "pub", "plant/x"], 1),
    ("user bob\ntopic plant/status\n", ["--user", "bob", "pub", "plant/status"], 0),
    ("user bob\ntopic read devices/%c/x\n", ["--user", "bob", "--client", "d", "read", "devices/d/x"], 1),  # plain text
    ("user bob\ntopic read devices/%c/x\n", ["--user", "bob", "--client", "d", "read", "devices/%c/x"], 0),
], ids=["crlf", "tabs", "single-word", "user-with-spaces", "read-is-not-write", "no-access-word",
        "topic-percent-c-literal", "topic-percent-c-matches-itself"])
def test_acl_file_syntax(tmp_path, text, args, code):
    write(tmp_path / "acl.conf", text)
    rc, out, err = bastion("acl", "check", "--acl-file", "acl.conf", *args, cwd=tmp_path)
    assert rc == code, out + err
