@testable import BastionSecurity

func makePolicy(
    _ acl: String? = nil,
    native: [NativeACLRule] = [],
    roles: [String: [String]] = [:],
    allowedClients: [String: [String]] = [:],
    requireClientIDEqualsUsername: Bool = false
) throws -> AccessPolicy {
    try AccessPolicy.make(aclText: acl, aclSource: "acl.conf", nativeRules: native, roles: roles,
                          allowedClients: allowedClients,
                          requireClientIDEqualsUsername: requireClientIDEqualsUsername)
}

func rule(_ subject: NativeACLRule.Subject, _ access: NativeACLRule.Access, _ topic: String, _ index: Int = 0) -> NativeACLRule {
    NativeACLRule(subject: subject, access: access, topic: topic, source: "config acl[\(index)]")
}

func user(_ name: String, client: String = "client-1") -> Identity {
    Identity(username: name, clientID: client)
}

let anonymousClient = Identity(username: nil, clientID: "anon-1")

extension AccessPolicy {
    func allows(_ identity: Identity, _ operation: AccessOperation, _ topic: String) -> Bool {
        decide(identity, operation, topic).allowed
    }
}
