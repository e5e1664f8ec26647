import Testing
@testable import BastionSecurity

@Suite("Device allowlist")
struct AllowlistTests {
    @Test("a user's patterns restrict the client ids it may connect with")
    func userEntry() throws {
        let policy = try makePolicy(allowedClients: ["bob": ["line1-gw-*", "bob-laptop"]])
        #expect(policy.mayConnect(user("bob", client: "line1-gw-7")).allowed)
        #expect(policy.mayConnect(user("bob", client: "line1-gw-")).allowed)
        #expect(policy.mayConnect(user("bob", client: "bob-laptop")).allowed)
        #expect(!policy.mayConnect(user("bob", client: "bob-laptop2")).allowed)
        #expect(!policy.mayConnect(user("bob", client: "line2-gw-1")).allowed)
        #expect(!policy.mayConnect(user("bob", client: "xline1-gw-1")).allowed)
        #expect(policy.mayConnect(user("bob", client: "line1-gw-7")).rule == "config allowed_clients.bob: line1-gw-*")
        #expect(policy.mayConnect(user("bob", client: "nope")).rule == "config allowed_clients.bob: client id matches no pattern")
    }

    @Test("role entries apply to members; user and role entries combine")
    func roleEntries() throws {
        let policy = try makePolicy(roles: ["gateways": ["bob", "alice"]],
                                    allowedClients: ["gateways": ["gw-*"], "bob": ["bob-*"]])
        #expect(policy.mayConnect(user("alice", client: "gw-3")).allowed)
        #expect(!policy.mayConnect(user("alice", client: "bob-1")).allowed)
        #expect(policy.mayConnect(user("bob", client: "gw-3")).allowed)
        #expect(policy.mayConnect(user("bob", client: "bob-1")).allowed)
        #expect(!policy.mayConnect(user("bob", client: "x")).allowed)
    }

    @Test("no entry: unrestricted, unless a \"*\" entry exists")
    func defaultEntry() throws {
        let open = try makePolicy(allowedClients: ["bob": ["bob-*"]])
        #expect(open.mayConnect(user("carol", client: "anything")).allowed)
        #expect(open.mayConnect(user("carol", client: "anything")).rule == "no allowed_clients entry (unrestricted)")
        #expect(open.mayConnect(anonymousClient).allowed)

        let closed = try makePolicy(allowedClients: ["bob": ["bob-*"], "*": ["plant-*"]])
        #expect(!closed.mayConnect(user("carol", client: "anything")).allowed)
        #expect(closed.mayConnect(user("carol", client: "plant-1")).allowed)
        #expect(!closed.mayConnect(anonymousClient).allowed)
        // A user with its own entry is not restricted further by "*".
        #expect(closed.mayConnect(user("bob", client: "bob-1")).allowed)
        #expect(!closed.mayConnect(user("bob", client: "plant-1")).allowed)
    }

    @Test("certificate identities are allowlist keys too")
    func certificateKey() throws {
        let policy = try makePolicy(allowedClients: ["dev-9": ["dev-9"]])
        #expect(policy.mayConnect(Identity(username: nil, clientID: "dev-9", certificateIdentity: "dev-9")).allowed)
        #expect(!policy.mayConnect(Identity(username: nil, clientID: "dev-8", certificateIdentity: "dev-9")).allowed)
    }

    @Test("require_client_id_equals_username")
    func clientIDEqualsUsername() throws {
        let policy = try makePolicy(requireClientIDEqualsUsername: true)
        #expect(policy.mayConnect(user("bob", client: "bob")).allowed)
        #expect(!policy.mayConnect(user("bob", client: "bob2")).allowed)
        #expect(policy.mayConnect(user("bob", client: "bob2")).rule.hasPrefix("config require_client_id_equals_username"))
        #expect(policy.mayConnect(Identity(username: nil, clientID: "dev-1", certificateIdentity: "dev-1")).allowed)
        #expect(!policy.mayConnect(Identity(username: nil, clientID: "dev-2", certificateIdentity: "dev-1")).allowed)
        #expect(policy.mayConnect(anonymousClient).allowed)
        let both = try makePolicy(allowedClients: ["bob": ["gw-*"]], requireClientIDEqualsUsername: true)
        #expect(!both.mayConnect(user("bob", client: "bob")).allowed)
        #expect(!both.mayConnect(user("bob", client: "gw-1")).allowed)
    }

    @Test("glob: * matches any run, everything else is literal", arguments: [
        ("*", "", true), ("*", "anything", true), ("a*", "a", true), ("a*", "ba", false),
        ("*b", "aab", true), ("*b", "aba", false), ("a*b*c", "aXbYc", true), ("a*b*c", "aXbY", false),
        ("a**c", "ac", true), ("abc", "abc", true), ("abc", "abcd", false), ("a?c", "abc", false),
        ("a?c", "a?c", true), ("gw-*-line1", "gw-7-line1", true), ("gw-*-line1", "gw-7-line2", false),
        ("ü*", "üx", true), ("*x*x*x", "xxx", true), ("*x*x*x", "xx", false), ("", "", true), ("", "a", false),
    ])
    func glob(pattern: String, text: String, expected: Bool) {
        #expect(ClientAllowlist.glob(pattern, matches: text) == expected)
    }

    @Test("configuration errors name the key")
    func errors() {
        let empty = #expect(throws: ACLError.self) { try makePolicy(allowedClients: ["bob": []]) }
        #expect(empty?.source == "config allowed_clients.bob")
        let blank = #expect(throws: ACLError.self) { try makePolicy(allowedClients: ["bob": [""]]) }
        #expect(blank?.source == "config allowed_clients.bob")
    }
}
