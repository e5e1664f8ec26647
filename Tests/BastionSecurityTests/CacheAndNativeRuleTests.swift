import Testing
@testable import BastionSecurity

@Suite("Authorization cache")
struct AuthorizationCacheTests {
    @Test("answers what the policy answers")
    func sameDecisions() throws {
        let policy = try makePolicy("user bob\ntopic readwrite plant/#\ntopic deny plant/secret/#")
        let cache = AuthorizationCache(identity: user("bob"))
        for topic in ["plant/a", "plant/secret/x", "office/x", "plant/a"] {
            for operation in AccessOperation.allCases {
                #expect(cache.decide(policy, operation, topic) == policy.decide(user("bob"), operation, topic))
            }
        }
        #expect(cache.count == 9)
    }

    @Test("stays bounded")
    func bounded() throws {
        let policy = try makePolicy("user bob\ntopic readwrite plant/#")
        let cache = AuthorizationCache(identity: user("bob"), capacity: 4)
        for index in 0..<100 {
            #expect(cache.decide(policy, .publish, "plant/\(index)").allowed)
            #expect(cache.count <= 8)
        }
        #expect(!cache.decide(policy, .publish, "office/1").allowed)
    }

    @Test("long topics roll the tables over by bytes too")
    func byteBudget() throws {
        let policy = try makePolicy("user bob\ntopic readwrite plant/#")
        let cache = AuthorizationCache(identity: user("bob"), capacity: 1024, byteBudget: 1000)
        let long = String(repeating: "x", count: 400)
        for index in 0..<50 {
            #expect(cache.decide(policy, .publish, "plant/\(index)/\(long)").allowed)
            #expect(cache.count <= 6)
        }
    }

    @Test("a new policy value clears the cache, even with the same generation")
    func reload() throws {
        let before = try makePolicy("user bob\ntopic readwrite plant/#")
        let after = try makePolicy("user bob\ntopic deny plant/#")
        #expect(before.generation == after.generation)
        let cache = AuthorizationCache(identity: user("bob"))
        #expect(cache.decide(before, .publish, "plant/x").allowed)
        #expect(!cache.decide(after, .publish, "plant/x").allowed)
        #expect(cache.count == 1)
        #expect(cache.decide(before, .publish, "plant/x").allowed)
    }
}

@Suite("Native rules")
struct NativeRuleTests {
    @Test("built from configuration fields")
    func fromFields() throws {
        let ruleValue = try NativeACLRule(role: "operators", access: "readwrite", topic: "plant/#", source: "config acl[3]")
        #expect(ruleValue.subject == .role("operators"))
        #expect(ruleValue.access == .readwrite)
        #expect(try NativeACLRule(anonymous: true, access: "read", topic: "public/#", source: "s").subject == .anonymous)
        #expect(try NativeACLRule(all: true, access: "deny", topic: "x", source: "s").subject == .all)
        #expect(try NativeACLRule(user: "bob", anonymous: false, access: "publish", topic: "x", source: "s").subject == .user("bob"))
        #expect(try NativeACLRule(clientID: "gw-1", access: "subscribe", topic: "x", source: "s").subject == .clientID("gw-1"))
        #expect(try NativeACLRule(certificate: "CN=a", access: "publish", topic: "x", source: "s").subject == .certificate("CN=a"))
    }

    @Test("field errors name the rule")
    func fieldErrors() {
        let source = "config acl[2]"
        let cases: [(() throws -> NativeACLRule, String, String)] = [
            ({ try NativeACLRule(access: "read", topic: "x", source: source) }, source, "exactly one"),
            ({ try NativeACLRule(user: "a", role: "b", access: "read", topic: "x", source: source) }, source, "exactly one"),
            ({ try NativeACLRule(anonymous: false, access: "read", topic: "x", source: source) }, source, "exactly one"),
            ({ try NativeACLRule(user: "", access: "read", topic: "x", source: source) }, source, "empty"),
            ({ try NativeACLRule(user: "a", access: "write", topic: "x", source: source) }, source + ".access", "unknown access 'write'"),
        ]
        for (make, expectedSource, fragment) in cases {
            let error = #expect(throws: ACLError.self) { try make() }
            #expect(error?.source == expectedSource)
            #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
        }
    }

    @Test("policy errors name the rule")
    func policyErrors() {
        let badTopic = #expect(throws: ACLError.self) { try makePolicy(native: [rule(.user("a"), .read, "a/#/b", 4)]) }
        #expect(badTopic?.source == "config acl[4].topic")
        let undefinedRole = #expect(throws: ACLError.self) { try makePolicy(native: [rule(.role("ghosts"), .read, "a", 1)]) }
        #expect(undefinedRole?.source == "config acl[1]")
        #expect(undefinedRole?.message.contains("ghosts") == true)
        let emptyMember = #expect(throws: ACLError.self) { try makePolicy(roles: ["ops": [""]]) }
        #expect(emptyMember?.source == "config roles.ops")
    }

    @Test("decision descriptions name source, subject, access and filter")
    func descriptions() throws {
        let policy = try makePolicy(native: [rule(.clientID("gw-1"), .deny, "plant/#", 3)])
        #expect(policy.decide(Identity(username: nil, clientID: "gw-1"), .read, "plant/x").rule == "config acl[3] client_id gw-1: deny plant/#")
        #expect(policy.ruleDescriptions == ["config acl[3] client_id gw-1: deny plant/#"])
    }
}

@Suite("Filter coverage and specificity")
struct FilterCoverageTests {
    func levels(_ filter: String) -> [FilterLevel] {
        (try? ACLRule.parseLevels(filter, substitutes: true)) ?? []
    }

    func covers(_ rule: String, _ requested: String, user: String? = "bob", client: String = "c") -> Bool {
        FilterCoverage.covers(levels(rule), requested.split(separator: "/", omittingEmptySubsequences: false),
                              .init(Identity(username: user, clientID: client)))
    }

    @Test("coverage", arguments: [
        ("#", "a/b", true), ("#", "#", true), ("#", "$SYS/x", false), ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/x", true), ("a/#", "a", true), ("a/#", "a/+/#", true), ("a/+", "a/#", false),
        ("a/+", "a/+", true), ("a/+", "a/b/c", false), ("a/b", "a/+", false), ("a//b", "a//b", true),
        ("a/+/c", "a//c", true), ("a", "a/b", false), ("a/b", "a", false), ("users/%u", "users/bob", true),
        ("users/%u", "users/+", false), ("x%uy/%c", "xboby/c", true), ("x%uy/%c", "xbob/c", false),
    ])
    func coverage(rule: String, requested: String, expected: Bool) {
        #expect(covers(rule, requested) == expected)
    }

    @Test("specificity order", arguments: [
        ("a/b", "a/+", 1), ("a/+", "a/#", 1), ("a/b/#", "a/#", 1), ("a", "a/#", 1), ("a/b", "a/b", 0),
        ("a/+/c", "a/b/#", -1), ("+/b", "a/#", -1), ("a/b/c", "a/b", 1), ("%u/x", "+/x", 1), ("#", "+", -1),
    ])
    func specificity(a: String, b: String, expected: Int) {
        #expect(FilterCoverage.compareSpecificity(levels(a), levels(b)).signum() == expected)
        #expect(FilterCoverage.compareSpecificity(levels(b), levels(a)).signum() == -expected)
    }
}
