import BastionCore
@testable import BastionSecurity
import Logging
import Testing

@Suite struct BackendRulesTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func identity(_ rules: [BackendACLRule], acl: Bool = true, roles: [String] = [], bound: Bool = false, client: String = "dev-1") -> ClientIdentity {
        ClientIdentity(clientID: client, username: "dev", backendRules: rules, hasBackendACL: acl, backendRoles: roles, clientIDBoundByBackend: bound)
    }

    @Test func withoutAnACLABackendsAnswerIsTheWholeACL() {
        let authorization = PolicyAuthorization(policy: nil, logger: logger)
        let granted = authorization.authorizer(for: identity([BackendACLRule(access: .write, filter: "plant/1/#"),
                                                              BackendACLRule(access: .subscribe, filter: "cmd/1")]))
        #expect(granted.mayPublish("plant/1/temp"))
        #expect(!granted.mayPublish("plant/2/temp"))
        #expect(granted.maySubscribe("cmd/1") && granted.mayReceive("cmd/1"))
        #expect(!granted.maySubscribe("#"))
        // An answer with no rule grants nothing; no answer leaves the open default.
        #expect(!authorization.authorizer(for: identity([])).mayPublish("plant/1/temp"))
        #expect(authorization.authorizer(for: identity([], acl: false)).mayPublish("plant/1/temp"))
    }

    @Test func backendRulesCompeteLikeUserRules() throws {
        let policy = try makePolicy("topic read plant/#\n", native: [rule(.clientID("dev-1"), .readwrite, "plant/secret/#")])
        let authorization = PolicyAuthorization(policy: policy, logger: logger)
        let denied = authorization.authorizer(for: identity([BackendACLRule(access: .deny, filter: "plant/secret/#")], bound: true))
        // A backend deny (identity level) beats the bound client id's allow.
        #expect(!denied.mayPublish("plant/secret/key"))
        #expect(denied.lastDenialRule?.contains("backend") == true)
        let widened = authorization.authorizer(for: identity([BackendACLRule(access: .readwrite, filter: "plant/line1/#")]))
        #expect(widened.mayPublish("plant/line1/valve"))
        #expect(!widened.mayPublish("plant/line2/valve"))
    }

    @Test func anInvalidBackendRuleDeniesEverything() {
        let authorization = PolicyAuthorization(policy: nil, logger: logger)
        let authorizer = authorization.authorizer(for: identity([BackendACLRule(access: .read, filter: "a/#/b"),
                                                                 BackendACLRule(access: .readwrite, filter: "#")]))
        #expect(!authorizer.mayPublish("a") && !authorizer.maySubscribe("a") && !authorizer.mayReceive("a"))
    }

    @Test func backendRolesApplyRoleRulesAndTheAllowlist() throws {
        let policy = try makePolicy(native: [rule(.role("operators"), .readwrite, "plant/#")], roles: ["operators": []],
                                    allowedClients: ["operators": ["ops-*"]])
        #expect(policy.allows(Identity(username: "alice", clientID: "ops-1", backendRoles: ["operators"]), .publish, "plant/x"))
        #expect(!policy.allows(Identity(username: "alice", clientID: "ops-1"), .publish, "plant/x"))
        #expect(!policy.allows(Identity(username: "alice", clientID: "ops-1", backendRoles: ["undefined"]), .publish, "plant/x"))
        #expect(policy.mayConnect(Identity(username: "alice", clientID: "ops-1", backendRoles: ["operators"])).allowed)
        #expect(!policy.mayConnect(Identity(username: "alice", clientID: "other", backendRoles: ["operators"])).allowed)
        #expect(policy.definesRole("operators") && !policy.definesRole("admins"))
    }

    @Test func aBackendBoundClientIDUnlocksClientIDPatterns() throws {
        let policy = try makePolicy("pattern readwrite devices/%c/#\n")
        #expect(!policy.allows(policy.bound(Identity(username: "u", clientID: "d1")), .publish, "devices/d1/x"))
        #expect(policy.allows(policy.bound(Identity(username: "u", clientID: "d1", clientIDBoundByBackend: true)), .publish, "devices/d1/x"))
    }
}

@Suite struct ScramPasswordFileTests {
    @Test func scramEntriesRoundTripAndCheckPlainPasswords() throws {
        var file = PasswordFile(source: "passwd")
        try file.setPassword("pw-256", for: "a", scram: .sha256)
        try file.setPassword("pw-512", for: "b", scram: .sha512)
        try file.setPassword("pw-7", for: "c")
        let text = file.serialized()
        #expect(text.contains("a:$scram-sha-256$4096$") && text.contains("b:$scram-sha-512$4096$"))
        let reread = try PasswordFile.parse(text, source: "passwd")
        #expect(reread.verify(username: "a", password: "pw-256"))
        #expect(!reread.verify(username: "a", password: "pw-512"))
        #expect(reread.verify(username: "b", password: "pw-512"))
        #expect(reread.scramKeys(for: "a", algorithm: .sha256)?.iterations == 4096)
        #expect(reread.scramKeys(for: "a", algorithm: .sha512) == nil)
        #expect(reread.scramKeys(for: "c", algorithm: .sha256) == nil)
        #expect(reread.typicalScramIterations(.sha256) == 4096)
    }

    @Test func damagedScramEntriesAreRefusedWithTheirLine() {
        for line in ["u:$scram-sha-256$4096$c2FsdA==$AAAA$AAAA", "u:$scram-sha-256$x$c2FsdA==$AAAA$AAAA", "u:$scram-sha-256$4096$c2FsdA=="] {
            #expect(throws: PasswordFileError.self) { try PasswordFile.parse(line + "\n", source: "passwd") }
        }
    }
}
