import Testing
@testable import BastionSecurity

@Suite("Subscribe checks")
struct SubscribeTests {
    let bob = Identity(username: "bob", clientID: "gw-1")

    @Test("a filter wider than the grant is refused")
    func widerFilterRefused() throws {
        let policy = try makePolicy("user bob\ntopic read plant/line1/+/temp")
        #expect(!policy.allows(bob, .subscribe, "#"))
        #expect(!policy.allows(bob, .subscribe, "plant/#"))
        #expect(!policy.allows(bob, .subscribe, "plant/+/+/temp"))
        #expect(!policy.allows(bob, .subscribe, "plant/line1/#"))
        #expect(!policy.allows(bob, .subscribe, "plant/line1/+/+"))
        #expect(policy.allows(bob, .subscribe, "plant/line1/+/temp"))
        #expect(policy.allows(bob, .subscribe, "plant/line1/press-3/temp"))
    }

    @Test("# in the grant covers the parent level and everything below")
    func hashCoverage() throws {
        let policy = try makePolicy("user bob\ntopic read a/#\ntopic read p/+")
        #expect(policy.allows(bob, .subscribe, "a"))
        #expect(policy.allows(bob, .subscribe, "a/#"))
        #expect(policy.allows(bob, .subscribe, "a/+/c/#"))
        #expect(!policy.allows(bob, .subscribe, "p/#"))
        #expect(policy.allows(bob, .subscribe, "p/+"))
        #expect(!policy.allows(bob, .subscribe, "p"))
    }

    @Test("$share/GROUP/F is checked on F")
    func sharedSubscriptions() throws {
        let policy = try makePolicy("user bob\ntopic read plant/line1/#")
        #expect(policy.allows(bob, .subscribe, "$share/workers/plant/line1/+/temp"))
        #expect(!policy.allows(bob, .subscribe, "$share/workers/#"))
        #expect(!policy.allows(bob, .subscribe, "$share/workers/plant/line2/x"))
    }

    @Test("a deny covering the whole filter refuses it; a partial deny is enforced per message")
    func partialDeny() throws {
        let policy = try makePolicy("user bob\ntopic readwrite plant/#\ntopic deny plant/secret/#")
        #expect(policy.allows(bob, .subscribe, "plant/#"))
        #expect(policy.allows(bob, .subscribe, "plant/+/temp"))
        #expect(!policy.allows(bob, .subscribe, "plant/secret/#"))
        #expect(!policy.allows(bob, .subscribe, "plant/secret/+"))
        #expect(!policy.allows(bob, .subscribe, "plant/secret"))
        #expect(!policy.allows(bob, .read, "plant/secret/temp"))
        #expect(policy.allows(bob, .read, "plant/line1/temp"))
    }

    @Test("a deny wider than the grant refuses the subscription")
    func widerDenyRefuses() throws {
        let policy = try makePolicy("user bob\ntopic deny plant/#\ntopic read plant/line1/#")
        #expect(policy.allows(bob, .subscribe, "plant/line1/#"))
        #expect(!policy.allows(bob, .subscribe, "plant/+/temp"))
    }

    @Test("invalid filters and topic names are refused", arguments: [
        (AccessOperation.subscribe, "a/#/b"), (.subscribe, ""), (.subscribe, "a+"), (.subscribe, "$share/g"),
        (.publish, "a/#"), (.publish, "a/+"), (.publish, ""), (.read, "+"), (.read, ""),
    ])
    func invalidInput(operation: AccessOperation, topic: String) throws {
        let policy = try makePolicy("user bob\ntopic readwrite #")
        #expect(!policy.allows(bob, operation, topic))
    }
}

@Suite("Patterns and hostile identities")
struct PatternTests {
    @Test("%c and %u are substituted on pattern lines")
    func substitution() throws {
        let policy = try makePolicy("""
        pattern readwrite devices/%c/#
        pattern read users/%u/inbox
        pattern write dev-%c/%u-out
        """)
        let bob = Identity(username: "bob", clientID: "gw-1", clientIDBound: true)
        #expect(!policy.allows(Identity(username: "bob", clientID: "gw-1"), .publish, "devices/gw-1/temp"), "%c needs a bound client id")
        #expect(policy.allows(Identity(username: "bob", clientID: "gw-1"), .read, "users/bob/inbox"), "%u does not")
        #expect(policy.allows(bob, .publish, "devices/gw-1/temp"))
        #expect(!policy.allows(bob, .publish, "devices/gw-2/temp"))
        #expect(policy.allows(bob, .read, "users/bob/inbox"))
        #expect(!policy.allows(bob, .read, "users/alice/inbox"))
        #expect(policy.allows(bob, .publish, "dev-gw-1/bob-out"))
        #expect(!policy.allows(bob, .publish, "dev-gw-1/bo-out"))
        #expect(policy.allows(bob, .subscribe, "devices/gw-1/+"))
        #expect(!policy.allows(bob, .subscribe, "devices/+/temp"))
        #expect(policy.decide(bob, .publish, "devices/gw-1/t").rule == "acl.conf:1 all clients: pattern readwrite devices/%c/#")
    }

    @Test("patterns apply to anonymous clients; %u patterns need a username")
    func anonymousPatterns() throws {
        let policy = try makePolicy("pattern readwrite devices/%c/#\npattern readwrite users/%u/#")
        var bound = anonymousClient
        bound.clientIDBound = true
        #expect(policy.allows(bound, .publish, "devices/anon-1/x"))
        #expect(!policy.allows(anonymousClient, .publish, "devices/anon-1/x"))
        #expect(!policy.allows(anonymousClient, .publish, "users//x"))
        #expect(!policy.allows(anonymousClient, .publish, "users/%u/x"))
    }

    @Test("native rules substitute %u and %c for every subject")
    func nativeSubstitution() throws {
        let policy = try makePolicy(native: [rule(.role("devices"), .readwrite, "site/%u/%c/#")], roles: ["devices": ["bob"]])
        #expect(policy.allows(Identity(username: "bob", clientID: "gw-1", clientIDBound: true), .publish, "site/bob/gw-1/x"))
        #expect(!policy.allows(Identity(username: "bob", clientID: "gw-1", clientIDBound: true), .publish, "site/bob/gw-2/x"))
    }

    @Test("hostile usernames never widen a %u pattern", arguments: ["#", "+", "a/#", "../x", "a\u{0}b", "a/b", "x+", ""])
    func hostileUsernames(name: String) throws {
        let policy = try makePolicy("pattern readwrite users/%u\npattern readwrite home/%u/#")
        let identity = Identity(username: name, clientID: "c")
        for topic in ["users/\(name)", "users/a", "users/a/b", "users/x", "home/a/b", "home/../x/y", "home/x", "users/a\u{0}b", "users/../x"] {
            guard !topic.contains("+"), !topic.contains("#") else { continue }
            #expect(!policy.allows(identity, .publish, topic), "\(name) → \(topic)")
            #expect(!policy.allows(identity, .read, topic), "\(name) → \(topic)")
        }
        for filter in ["users/#", "users/+", "home/#", "home/a/#", "#"] {
            #expect(!policy.allows(identity, .subscribe, filter), "\(name) → \(filter)")
        }
    }

    @Test("hostile client ids never widen a %c pattern", arguments: ["#", "+", "a/#", "../x", "a\u{0}b", ""])
    func hostileClientIDs(clientID: String) throws {
        let policy = try makePolicy("pattern readwrite devices/%c/#")
        let identity = Identity(username: "bob", clientID: clientID)
        for topic in ["devices/a/b", "devices/../x", "devices/a\u{0}b", "devices/x"] {
            #expect(!policy.allows(identity, .publish, topic), "\(clientID) → \(topic)")
        }
        for filter in ["devices/#", "devices/+/x", "devices/a/#"] {
            #expect(!policy.allows(identity, .subscribe, filter), "\(clientID) → \(filter)")
        }
    }

    @Test("a hostile client id disables only the patterns that use it")
    func hostileOnlyAffectsItsPattern() throws {
        let policy = try makePolicy("pattern readwrite devices/%c/#\npattern readwrite users/%u/#")
        let identity = Identity(username: "bob", clientID: "#")
        #expect(policy.allows(identity, .publish, "users/bob/x"))
        #expect(!policy.allows(identity, .publish, "devices/x/y"))
    }

    @Test("a substituted name cannot reach $SYS through the first level")
    func dollarAtFirstLevel() throws {
        let policy = try makePolicy("pattern readwrite %u/#\npattern read users/%u")
        let sys = Identity(username: "$SYS", clientID: "c")
        #expect(!policy.allows(sys, .read, "$SYS/broker/uptime"))
        #expect(!policy.allows(sys, .subscribe, "$SYS/#"))
        #expect(policy.allows(sys, .read, "users/$SYS"))
        #expect(policy.allows(user("bob"), .publish, "bob/x"))
    }
}
