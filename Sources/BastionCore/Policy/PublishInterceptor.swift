import MQTTCodec
import NIOCore

/// A policy that sees every PUBLISH a client sends, after the ACL allowed it and before it is
/// routed (Sparkplug's rules, future protocol-aware policies), and every session's end. Called on
/// the publisher's event loop: must not block.
public protocol PublishInterceptor: Sendable {
    /// Decide what happens to `message`, published by `publisher`.
    func intercept(_ message: Message, from publisher: PublisherContext) -> InterceptDecision
    /// The publisher's connection ended (`willTopic` is its will's topic, if it had one).
    func sessionEnded(_ publisher: PublisherContext, willTopic: String?)
}

/// Who published, as interceptors need it.
public struct PublisherContext: Sendable, Hashable {
    public var identity: ClientIdentity
    public var listener: String
    /// Whether the message comes from a will rather than a live PUBLISH.
    public var isWill: Bool

    public init(identity: ClientIdentity, listener: String, isWill: Bool = false) {
        self.identity = identity
        self.listener = listener
        self.isWill = isWill
    }
}

public enum InterceptDecision: Sendable {
    /// Route the message as published.
    case pass
    /// Route this message instead (a rewritten payload), and publish `also` beside it (e.g. a
    /// copy on another topic), all under the broker's authority.
    case replace(Message, also: [Message])
    /// Route it, and publish `also` beside it.
    case passAlso([Message])
    /// Refuse it: 5.0 acknowledgement with this reason (QoS 0: the connection is closed as the
    /// spec says for unauthorised publishes when `disconnect` is true).
    case refuse(ReasonCode, reason: String, disconnect: Bool)
}

/// No interceptor: everything passes.
public struct PassThroughInterceptor: PublishInterceptor {
    public init() {}
    public func intercept(_ message: Message, from publisher: PublisherContext) -> InterceptDecision { .pass }
    public func sessionEnded(_ publisher: PublisherContext, willTopic: String?) {}
}
