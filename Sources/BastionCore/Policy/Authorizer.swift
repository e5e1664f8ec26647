/// Per-connection authorization, consulted on the connection's loop at the fixed points: SUBSCRIBE,
/// PUBLISH in, delivery out. Implementations cache per topic.
public protocol ClientAuthorizer: AnyObject {
    func mayPublish(_ topic: String) -> Bool
    func maySubscribe(_ filter: String) -> Bool
    func mayReceive(_ topic: String) -> Bool
    /// The rule behind the last denial, for the audit log.
    var lastDenialRule: String? { get }
}

extension ClientAuthorizer {
    public var lastDenialRule: String? { nil }
}

public protocol AuthorizationPolicy: Sendable {
    func authorizer(for identity: ClientIdentity) -> any ClientAuthorizer
}

/// Used when no access control is configured at all (tests, embedding).
public final class AllowAllAuthorizer: ClientAuthorizer {
    /// Stateless, so every connection shares one.
    nonisolated(unsafe) public static let shared = AllowAllAuthorizer()

    public func mayPublish(_ topic: String) -> Bool { true }
    public func maySubscribe(_ filter: String) -> Bool { true }
    public func mayReceive(_ topic: String) -> Bool { true }
}

public struct AllowAllPolicy: AuthorizationPolicy {
    public init() {}
    public func authorizer(for identity: ClientIdentity) -> any ClientAuthorizer { AllowAllAuthorizer.shared }
}
