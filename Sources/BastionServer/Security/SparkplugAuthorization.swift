import BastionCore
import Crypto
import Sparkplug

/// The access policy with Sparkplug roles on top: a PUBLISH or will in the Sparkplug namespace
/// must be allowed by the ACL *and* by the publisher's roles (its own births, deaths and data;
/// commands only with a host role for the group; its own STATE), so that a forged birth or an
/// unauthorised command is refused and audited as such whatever a wider ACL rule grants.
struct SparkplugAuthorization: AuthorizationPolicy {
    let base: any AuthorizationPolicy
    let policy: SparkplugPolicy

    func authorizer(for identity: ClientIdentity) -> any ClientAuthorizer {
        let held = policy.roles(for: identity)
        return SparkplugClientAuthorizer(
            base: base.authorizer(for: identity), authority: SparkplugAuthority(roles: held.map(\.role)),
            held: held, signedCommandGroups: policy.signedCommandGroups)
    }
}

final class SparkplugClientAuthorizer: ClientAuthorizer {
    let base: any ClientAuthorizer
    let authority: SparkplugAuthority
    private let held: [(role: SparkplugRole, keys: [Curve25519.Signing.PublicKey])]
    private let signedCommandGroups: Set<String>
    /// The Sparkplug rule behind the last denial of `mayPublish`, when it was one.
    private(set) var lastRefusal: SparkplugRefusal?

    init(base: any ClientAuthorizer, authority: SparkplugAuthority,
         held: [(role: SparkplugRole, keys: [Curve25519.Signing.PublicKey])], signedCommandGroups: Set<String>) {
        self.base = base
        self.authority = authority
        self.held = held
        self.signedCommandGroups = signedCommandGroups
    }

    func mayPublish(_ topic: String) -> Bool {
        lastRefusal = nil
        // One byte decides for every non-Sparkplug topic (`$sparkplug/` is refused before this).
        if topic.utf8.first == UInt8(ascii: "s"), let decision = authority.decide(topicName: topic),
           case .refused(let refusal) = decision {
            lastRefusal = refusal
            return false
        }
        return base.mayPublish(topic)
    }

    func maySubscribe(_ filter: String) -> Bool { base.maySubscribe(filter) }
    func mayReceive(_ topic: String) -> Bool { base.mayReceive(topic) }

    var lastDenialRule: String? {
        if let lastRefusal { return "sparkplug \(lastRefusal.name): \(lastRefusal)" }
        return base.lastDenialRule
    }

    /// The keys a command to `group` must be signed with; nil when the group does not require
    /// signed commands.
    func commandKeys(group: String) -> [Curve25519.Signing.PublicKey]? {
        guard signedCommandGroups.contains(group) else { return nil }
        var keys: [Curve25519.Signing.PublicKey] = []
        for (role, roleKeys) in held {
            if case .host(_, let groups) = role, groups.contains(group) { keys.append(contentsOf: roleKeys) }
        }
        return keys
    }
}
