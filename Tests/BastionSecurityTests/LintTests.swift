import Testing
@testable import BastionSecurity

@Suite("ACL lint")
struct LintTests {
    func kinds(_ warnings: [LintWarning]) -> [LintWarning.Kind] { warnings.map(\.kind) }

    @Test("a tidy policy has no warnings")
    func clean() throws {
        let policy = try makePolicy("user bob\ntopic read plant/#\ntopic deny plant/secret/#\npattern write devices/%c/#",
                                    allowedClients: ["bob": ["gw-*"]])
        #expect(policy.lint(knownUsers: ["bob"]) == [])
    }

    @Test("client-id grants and %c patterns nothing can bind are reported")
    func unboundClientIDs() throws {
        let policy = try makePolicy("pattern write devices/%c/#", native: [rule(.clientID("line1-gw-01"), .publish, "plant/line1/#", 1)])
        #expect(kinds(policy.lint()) == [.unboundClientID, .unboundClientID])
        let bound = try makePolicy("pattern write devices/%c/#", native: [rule(.clientID("line1-gw-01"), .publish, "plant/line1/#", 1)],
                                   allowedClients: ["gw": ["line1-gw-*"]])
        #expect(!kinds(bound.lint()).contains(.unboundClientID))
    }

    @Test("grants of # and of a top-level + are broad")
    func broadGrants() throws {
        let policy = try makePolicy("user bob\ntopic read #\ntopic write +/status\ntopic read a/+\nuser carol\ntopic deny #")
        let warnings = policy.lint()
        #expect(kinds(warnings) == [.broadGrant, .broadGrant])
        #expect(warnings.map(\.source) == ["acl.conf:2", "acl.conf:3"])
        #expect(warnings[0].description.hasPrefix("acl.conf:2: warning: grants '#'"))
    }

    @Test("duplicates and allows tied with a deny are shadowed")
    func shadowed() throws {
        let policy = try makePolicy("""
        user bob
        topic readwrite a/b
        topic read a/b
        topic deny c/d
        topic read c/d
        topic write e
        topic deny e
        topic deny c/d
        """)
        let warnings = policy.lint().filter { $0.kind == .shadowed }
        #expect(warnings.map(\.source) == ["acl.conf:3", "acl.conf:5", "acl.conf:6", "acl.conf:8"])
        #expect(warnings[0].message == "adds nothing to acl.conf:2")
        #expect(warnings[1].message.contains("deny of the same filter at acl.conf:4"))
        #expect(warnings[2].message.contains("deny of the same filter at acl.conf:7"))
    }

    @Test("different subjects or access sets are not duplicates")
    func notShadowed() throws {
        let policy = try makePolicy("user bob\ntopic read a/b\ntopic write a/b\nuser alice\ntopic read a/b")
        #expect(policy.lint().filter { $0.kind == .shadowed } == [])
    }

    @Test("password-file users without any rule")
    func usersWithoutRule() throws {
        let policy = try makePolicy("user bob\ntopic read a/#", native: [rule(.role("ops"), .read, "b/#")], roles: ["ops": ["carol"]])
        let warnings = policy.lint(knownUsers: ["bob", "alice", "carol"])
        #expect(warnings.filter { $0.kind == .userWithoutRule }.map(\.message) == [
            "user 'alice' has no rule (no user, role or pattern rule applies): everything is denied",
        ])
        let withPattern = try makePolicy("pattern read users/%u/#")
        #expect(withPattern.lint(knownUsers: ["alice"]).filter { $0.kind == .userWithoutRule } == [])
    }

    @Test("publish grants on $SYS")
    func systemWrites() throws {
        let policy = try makePolicy("user admin\ntopic readwrite $SYS/broker/#\ntopic read $SYS/#\ntopic deny $SYS/x")
        let warnings = policy.lint().filter { $0.kind == .systemTopicWrite }
        #expect(warnings.map(\.source) == ["acl.conf:2"])
    }

    @Test("patterns without %u or %c, and rules on $share")
    func patternsAndShares() throws {
        let policy = try makePolicy("pattern read status/all\nuser bob\ntopic read $share/g/x")
        #expect(kinds(policy.lint()) == [.patternWithoutSubstitution, .sharedSubscriptionRule])
    }

    @Test("Mosquitto-file allows inside a wider deny read differently")
    func mosquittoDifference() throws {
        let policy = try makePolicy("user bob\ntopic deny plant/#\ntopic read plant/line1/#")
        let warnings = policy.lint()
        #expect(kinds(warnings) == [.differsFromMosquitto])
        #expect(warnings[0].source == "acl.conf:3")
        // Native rules mean what they say: no warning.
        let native = try makePolicy(native: [rule(.user("bob"), .deny, "plant/#"), rule(.user("bob"), .read, "plant/line1/#", 1)])
        #expect(native.lint() == [])
    }

    @Test("unknown role members and allowlist keys")
    func unknownNames() throws {
        let policy = try makePolicy(native: [rule(.role("ops"), .read, "a/#")], roles: ["ops": ["bob", "ghost"]],
                                    allowedClients: ["ops": ["x-*"], "bob": ["b"], "nobody": ["n"], "*": ["d-*"]])
        let warnings = policy.lint(knownUsers: ["bob"]).filter { $0.kind == .unknownName }
        #expect(warnings.map(\.source) == ["config roles.ops", "config allowed_clients.nobody"])
        // Without known users these checks are skipped.
        #expect(policy.lint().filter { $0.kind == .unknownName } == [])
    }
}
