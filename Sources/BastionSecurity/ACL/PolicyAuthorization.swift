import BastionCore
import Logging
import MQTTCodec

/// Authorization from the access policy, with a per-connection decision cache. With no ACL
/// configured at all, every authenticated client may publish and subscribe anywhere except
/// `$SYS` (readable only through an explicit grant), and the broker says so at startup.
public struct PolicyAuthorization: AuthorizationPolicy {
    let policy: AccessPolicy?
    let logger: Logger

    public init(policy: AccessPolicy?, logger: Logger) {
        self.policy = policy
        self.logger = logger
    }

    /// With no ACL configured, an identity whose backend answered for its topic access gets
    /// that answer alone (what it does not grant is denied) rather than the open default.
    public func authorizer(for identity: ClientIdentity) -> any ClientAuthorizer {
        guard policy != nil || identity.hasBackendACL else { return OpenAuthorizer.shared }
        let policy = self.policy ?? .empty
        let backendRules: BackendRules
        do {
            backendRules = try BackendRules(identity.backendRules, username: identity.username)
        } catch {
            logger.warning("backend returned an invalid ACL rule; denying all topic access", metadata: [
                "client_id": "\(identity.clientID)", "error": "\(error)",
            ])
            return DenyAllAuthorizer(rule: "\(error)")
        }
        let cache = AuthorizationCache(identity: policy.bound(identity.securityIdentity), backendRules: backendRules)
        return PolicyAuthorizer(policy: policy, cache: cache, logger: logger)
    }
}

/// Every operation denied, naming why.
final class DenyAllAuthorizer: ClientAuthorizer {
    let rule: String
    init(rule: String) { self.rule = rule }
    var lastDenialRule: String? { rule }
    func mayPublish(_ topic: String) -> Bool { false }
    func maySubscribe(_ filter: String) -> Bool { false }
    func mayReceive(_ topic: String) -> Bool { false }
}

final class PolicyAuthorizer: ClientAuthorizer {
    let policy: AccessPolicy
    let cache: AuthorizationCache
    let logger: Logger
    private(set) var lastDenialRule: String?

    init(policy: AccessPolicy, cache: AuthorizationCache, logger: Logger) {
        self.policy = policy
        self.cache = cache
        self.logger = logger
    }

    private func check(_ operation: AccessOperation, _ topic: String) -> Bool {
        let decision = cache.decide(policy, operation, topic)
        if !decision.allowed {
            lastDenialRule = decision.rule
            // Read denials are routine filtering of a wider subscription; the others are client errors.
            logger.log(level: operation == .read ? .debug : .info, "access denied", metadata: [
                "client_id": "\(cache.identity.clientID)", "operation": "\(operation.rawValue)", "topic": "\(topic)",
                "rule": "\(decision.rule)",
            ])
        }
        return decision.allowed
    }

    func mayPublish(_ topic: String) -> Bool { check(.publish, topic) }
    func maySubscribe(_ filter: String) -> Bool { check(.subscribe, filter) }
    func mayReceive(_ topic: String) -> Bool { check(.read, topic) }
}

/// No ACL configured: everything but `$SYS`, which only an explicit grant opens.
public final class OpenAuthorizer: ClientAuthorizer {
    /// Stateless, so every connection shares one.
    nonisolated(unsafe) public static let shared = OpenAuthorizer()

    private static func isSys(_ topicOrFilter: String) -> Bool {
        guard topicOrFilter.utf8.first == UInt8(ascii: "$") else { return false }
        let plain = SharedFilter(topicOrFilter)?.filter ?? topicOrFilter
        return plain == "$SYS" || plain.hasPrefix("$SYS/")
    }

    public func mayPublish(_ topic: String) -> Bool { !Self.isSys(topic) }
    public func maySubscribe(_ filter: String) -> Bool { !Self.isSys(filter) }
    public func mayReceive(_ topic: String) -> Bool { !Self.isSys(topic) }
}
