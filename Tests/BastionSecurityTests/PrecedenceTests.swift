import Testing
@testable import BastionSecurity

/// The precedence of docs/access-control.md: most specific filter, then most specific identity,
/// then deny over allow.
@Suite("ACL precedence")
struct PrecedenceTests {
    let bob = Identity(username: "bob", clientID: "gw-1")

    @Test("a more specific allow wins over a wider deny")
    func specificAllowBeatsWideDeny() throws {
        let policy = try makePolicy("user bob\ntopic deny plant/#\ntopic read plant/line1/#")
        #expect(policy.allows(bob, .read, "plant/line1/temp"))
        #expect(!policy.allows(bob, .read, "plant/line2/temp"))
        #expect(policy.decide(bob, .read, "plant/line2/temp").rule == "acl.conf:2 user bob: topic deny plant/#")
    }

    @Test("a more specific deny wins over a wider allow")
    func specificDenyBeatsWideAllow() throws {
        let policy = try makePolicy("user bob\ntopic readwrite plant/#\ntopic deny plant/secret/#")
        #expect(!policy.allows(bob, .publish, "plant/secret/key"))
        #expect(policy.allows(bob, .publish, "plant/open"))
    }

    @Test("literal beats +, + beats #, compared level by level")
    func levelKinds() throws {
        let policy = try makePolicy("""
        user bob
        topic deny plant/+/temp
        topic read plant/line1/temp
        topic deny a/+
        topic read a/#
        topic read m/+/+/x
        topic deny m/b/#
        """)
        #expect(policy.allows(bob, .read, "plant/line1/temp"))
        #expect(!policy.allows(bob, .read, "plant/line2/temp"))
        #expect(!policy.allows(bob, .read, "a/b"))
        #expect(policy.allows(bob, .read, "a/b/c"))
        #expect(policy.allows(bob, .read, "a"))
        // Level 2: literal 'b' (deny) beats '+' (allow), although the allow has more levels.
        #expect(!policy.allows(bob, .read, "m/b/c/x"))
        #expect(policy.allows(bob, .read, "m/z/c/x"))
    }

    @Test("x is more specific than x/#; otherwise more levels are more specific")
    func parentLevel() throws {
        let exactAllowed = try makePolicy("user bob\ntopic deny a/#\ntopic read a")
        #expect(exactAllowed.allows(bob, .read, "a"))
        #expect(!exactAllowed.allows(bob, .read, "a/b"))
        let exactDenied = try makePolicy("user bob\ntopic read a/#\ntopic deny a")
        #expect(!exactDenied.allows(bob, .read, "a"))
        #expect(exactDenied.allows(bob, .read, "a/b"))
        let longer = try makePolicy("user bob\ntopic deny a/#\ntopic read a/b/#")
        #expect(longer.allows(bob, .read, "a/b/c"))
        #expect(longer.allows(bob, .read, "a/b"))
        #expect(!longer.allows(bob, .read, "a/c"))
    }

    @Test("on equal filters, client id > user = certificate > role > all/pattern > anonymous",
          arguments: [
            // (more specific subject, less specific subject)
            (NativeACLRule.Subject.user("bob"), NativeACLRule.Subject.role("operators")),
            (.certificate("dev-1"), .role("operators")),
            (.role("operators"), .all),
            (.clientID("gw-1"), .all),
          ])
    func identityRanks(specific: NativeACLRule.Subject, general: NativeACLRule.Subject) throws {
        let identity = Identity(username: "bob", clientID: "gw-1", certificateIdentity: "dev-1", clientIDBound: true)
        let roles = ["operators": ["bob"]]
        // The specific subject denies, the general one allows → deny; and the other way round.
        let denies = try makePolicy(native: [rule(general, .readwrite, "x/y", 0), rule(specific, .deny, "x/y", 1)], roles: roles)
        #expect(!denies.allows(identity, .publish, "x/y"))
        #expect(denies.decide(identity, .publish, "x/y").rule.hasPrefix("config acl[1]"))
        let allows = try makePolicy(native: [rule(general, .deny, "x/y", 0), rule(specific, .readwrite, "x/y", 1)], roles: roles)
        #expect(allows.allows(identity, .publish, "x/y"))
        #expect(allows.decide(identity, .publish, "x/y").rule.hasPrefix("config acl[1]"))
    }

    @Test("a bound client id's deny beats the identity's allow; the identity's deny beats a client-id allow",
          arguments: [NativeACLRule.Subject.user("bob"), .certificate("dev-1"), .role("operators")])
    func identityDenyVetoesClientIDAllow(identityRule: NativeACLRule.Subject) throws {
        let identity = Identity(username: "bob", clientID: "gw-1", certificateIdentity: "dev-1", clientIDBound: true)
        let roles = ["operators": ["bob"]]
        let clientDenies = try makePolicy(native: [rule(identityRule, .readwrite, "x/y", 0), rule(.clientID("gw-1"), .deny, "x/y", 1)], roles: roles)
        #expect(!clientDenies.allows(identity, .publish, "x/y"))
        #expect(clientDenies.decide(identity, .publish, "x/y").rule.hasPrefix("config acl[1]"))
        // A user-level deny always beats a client-id allow for that user, even a more specific one.
        let identityDenies = try makePolicy(native: [rule(identityRule, .deny, "x/#", 0), rule(.clientID("gw-1"), .readwrite, "x/y", 1)], roles: roles)
        #expect(!identityDenies.allows(identity, .publish, "x/y"))
        #expect(identityDenies.decide(identity, .publish, "x/y").rule.hasPrefix("config acl[0]"))
    }

    @Test("client-id grants apply only to bound client ids; client-id denies always apply")
    func clientIDGrantsNeedABinding() throws {
        let policy = try makePolicy(native: [rule(.clientID("line1-gw-01"), .publish, "plant/line1/#", 0),
                                             rule(.clientID("line1-gw-01"), .deny, "plant/line1/secret", 1)],
                                    allowedClients: ["gw": ["line1-gw-*"]])
        let mallory = Identity(username: "mallory", clientID: "line1-gw-01")
        #expect(!policy.allows(policy.bound(mallory), .publish, "plant/line1/valve"))
        let gateway = policy.bound(Identity(username: "gw", clientID: "line1-gw-01"))
        #expect(gateway.clientIDBound)
        #expect(policy.allows(gateway, .publish, "plant/line1/valve"))
        #expect(!policy.allows(gateway, .publish, "plant/line1/secret"))
        #expect(!policy.allows(Identity(username: "gw", clientID: "line1-gw-01"), .publish, "plant/line1/secret"))
        // A certificate identity equal to the client id binds it too.
        #expect(policy.bound(Identity(username: nil, clientID: "line1-gw-01", certificateIdentity: "line1-gw-01")).clientIDBound)
        #expect(!policy.bound(Identity(username: nil, clientID: "line1-gw-01", certificateIdentity: "other")).clientIDBound)
    }

    @Test("a client-id rule that names its user binds the two")
    func explicitBinding() throws {
        let gw = try NativeACLRule(user: "gw", clientID: "line1-gw-01", access: "publish", topic: "plant/line1/#", source: "config acl[0]")
        let policy = try makePolicy(native: [gw])
        #expect(policy.allows(Identity(username: "gw", clientID: "line1-gw-01"), .publish, "plant/line1/v"))
        #expect(!policy.allows(Identity(username: "mallory", clientID: "line1-gw-01", clientIDBound: true), .publish, "plant/line1/v"))
        #expect(!policy.allows(Identity(username: "gw", clientID: "line1-gw-02"), .publish, "plant/line1/v"))
    }

    @Test("all/pattern rules outrank anonymous rules for anonymous clients")
    func allBeatsAnonymous() throws {
        let policy = try makePolicy(native: [rule(.anonymous, .readwrite, "x"), rule(.all, .deny, "x", 1)])
        #expect(!policy.allows(anonymousClient, .publish, "x"))
        let reverse = try makePolicy(native: [rule(.anonymous, .deny, "x"), rule(.all, .readwrite, "x", 1)])
        #expect(reverse.allows(anonymousClient, .publish, "x"))
    }

    @Test("user and certificate rank equally: on a tie deny wins")
    func userCertificateTie() throws {
        let identity = Identity(username: "bob", clientID: "c", certificateIdentity: "dev-1")
        let policy = try makePolicy(native: [rule(.user("bob"), .readwrite, "x"), rule(.certificate("dev-1"), .deny, "x", 1)])
        #expect(!policy.allows(identity, .publish, "x"))
        let reversed = try makePolicy(native: [rule(.certificate("dev-1"), .readwrite, "x"), rule(.user("bob"), .deny, "x", 1)])
        #expect(!reversed.allows(identity, .publish, "x"))
    }

    @Test("a complete tie is decided by deny, whatever the order")
    func denyWinsTie() throws {
        for text in ["user bob\ntopic read x\ntopic deny x", "user bob\ntopic deny x\ntopic read x"] {
            let policy = try makePolicy(text)
            #expect(!policy.allows(bob, .read, "x"))
        }
    }

    @Test("filter specificity comes before identity")
    func filterBeforeIdentity() throws {
        // A client-id grant on a wide filter loses to a role deny on a narrower one.
        let policy = try makePolicy(native: [rule(.clientID("gw-1"), .readwrite, "a/#"), rule(.role("ops"), .deny, "a/b", 1)],
                                    roles: ["ops": ["bob"]])
        var bound = bob
        bound.clientIDBound = true
        #expect(!policy.allows(bound, .publish, "a/b"))
        #expect(policy.allows(bound, .publish, "a/c"))
    }

    @Test("rules granting another operation are not candidates")
    func otherOperationsIgnored() throws {
        let policy = try makePolicy("user bob\ntopic write plant/line1/temp\ntopic read plant/#")
        #expect(policy.allows(bob, .read, "plant/line1/temp"))
        #expect(policy.allows(bob, .subscribe, "plant/line1/temp"))
        #expect(policy.allows(bob, .publish, "plant/line1/temp"))
        #expect(!policy.allows(bob, .publish, "plant/line2/temp"))
    }

    @Test("other users' rules never apply")
    func otherUsers() throws {
        let policy = try makePolicy("user alice\ntopic readwrite #\nuser bob\ntopic read bob/#")
        #expect(!policy.allows(bob, .read, "alice/x"))
        #expect(policy.allows(user("alice"), .read, "bob/x"))
        #expect(!policy.allows(user("carol"), .read, "bob/x"))
    }

    @Test("nothing matching is default deny")
    func defaultDeny() throws {
        let policy = try makePolicy("user bob\ntopic read plant/#")
        #expect(policy.decide(bob, .read, "office/x") == .defaultDeny)
        #expect(policy.decide(bob, .publish, "plant/x") == .defaultDeny)
    }

    @Test("wildcards at the first level never match $ topics")
    func systemTopics() throws {
        let policy = try makePolicy("user bob\ntopic read #\ntopic read +/broker/uptime\nuser admin\ntopic read $SYS/#")
        #expect(!policy.allows(bob, .read, "$SYS/broker/uptime"))
        #expect(!policy.allows(bob, .subscribe, "$SYS/#"))
        #expect(policy.allows(user("admin"), .read, "$SYS/broker/uptime"))
        #expect(policy.allows(user("admin"), .subscribe, "$SYS/broker/+"))
    }

    @Test("roles grant their members, and only them")
    func roles() throws {
        let policy = try makePolicy(native: [rule(.role("operators"), .read, "plant/#")], roles: ["operators": ["bob", "alice"]])
        #expect(policy.allows(bob, .read, "plant/x"))
        #expect(policy.allows(user("alice"), .subscribe, "plant/+/temp"))
        #expect(!policy.allows(user("carol"), .read, "plant/x"))
        #expect(!policy.allows(anonymousClient, .read, "plant/x"))
        #expect(policy.decide(bob, .read, "plant/x").rule == "config acl[0] role operators: read plant/#")
    }

    @Test("native access words")
    func nativeAccess() throws {
        let policy = try makePolicy(native: [
            rule(.user("bob"), .publish, "p/#", 0),
            rule(.user("bob"), .subscribe, "s/#", 1),
            rule(.user("bob"), .read, "r/#", 2),
            rule(.user("bob"), .readwrite, "rw/#", 3),
        ])
        #expect(policy.allows(bob, .publish, "p/x") && !policy.allows(bob, .subscribe, "p/x") && !policy.allows(bob, .read, "p/x"))
        #expect(!policy.allows(bob, .publish, "s/x") && policy.allows(bob, .subscribe, "s/x") && policy.allows(bob, .read, "s/x"))
        #expect(!policy.allows(bob, .publish, "r/x") && policy.allows(bob, .subscribe, "r/x") && policy.allows(bob, .read, "r/x"))
        #expect(policy.allows(bob, .publish, "rw/x") && policy.allows(bob, .subscribe, "rw/x") && policy.allows(bob, .read, "rw/x"))
    }

    @Test("client id and certificate rules")
    func clientAndCertificateRules() throws {
        let policy = try makePolicy(native: [
            rule(.clientID("line1-gw-7"), .publish, "plant/line1/#", 0),
            rule(.certificate("CN=dev-9"), .publish, "devices/9/#", 1),
        ])
        #expect(policy.allows(Identity(username: nil, clientID: "line1-gw-7", clientIDBound: true), .publish, "plant/line1/a"))
        #expect(!policy.allows(Identity(username: nil, clientID: "line1-gw-7"), .publish, "plant/line1/a"), "an unbound client id grants nothing")
        #expect(!policy.allows(Identity(username: nil, clientID: "line1-gw-8", clientIDBound: true), .publish, "plant/line1/a"))
        #expect(policy.allows(Identity(username: nil, clientID: "x", certificateIdentity: "CN=dev-9"), .publish, "devices/9/t"))
        #expect(!policy.allows(Identity(username: "CN=dev-9", clientID: "x"), .publish, "devices/9/t"))
    }

    @Test("file rules and native rules combine under one precedence")
    func fileAndNative() throws {
        let policy = try makePolicy("user bob\ntopic readwrite plant/#",
                                    native: [rule(.clientID("gw-1"), .deny, "plant/#")])
        #expect(!policy.allows(bob, .publish, "plant/x"))
        #expect(policy.allows(user("bob", client: "gw-2"), .publish, "plant/x"))
    }

    @Test("thousands of users: each decision sees only its own rules")
    func manyUsers() throws {
        var text = ""
        for index in 0..<5000 {
            text += "user u\(index)\ntopic readwrite devices/u\(index)/#\ntopic deny devices/u\(index)/locked\n"
        }
        let policy = try makePolicy(text)
        #expect(policy.ruleCount == 10_000)
        #expect(policy.allows(user("u4321"), .publish, "devices/u4321/x"))
        #expect(!policy.allows(user("u4321"), .publish, "devices/u4321/locked"))
        #expect(!policy.allows(user("u4321"), .publish, "devices/u4320/x"))
        #expect(policy.decide(user("u4321"), .publish, "devices/u4321/x").rule == "acl.conf:12965 user u4321: topic readwrite devices/u4321/#")
        #expect(policy.storage.byUser["u4321"]?.count == 2)
    }
}
