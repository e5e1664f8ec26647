/// One entry of `auth.backends`: answers allow / deny / no opinion for a CONNECT's credentials.
/// `decide` runs off the event loops under the chain's concurrency limit and deadline for this
/// backend; it must not block a thread (blocking work goes to the `BlockingRunner`).
public protocol IdentityBackend: Sendable {
    /// `auth.backends[1] jwt`: names the backend in logs, alerts and rule sources.
    var name: String { get }
    /// Cheap check on the event loop: whether the backend could say anything about this request
    /// (a token backend only looks at token-shaped passwords). Skipped backends take no slot.
    func applies(to request: AuthenticationRequest) -> Bool
    func decide(_ request: AuthenticationRequest) async -> BackendDecision
    /// Releases connections and pools; called when a reload replaced the chain.
    func shutdown() async
}

extension IdentityBackend {
    public func shutdown() async {}
}
