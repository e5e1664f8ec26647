import BastionBridge
import BastionCore
import MQTTCodec

/// What a bridge's local session may do: subscribe to its own `out` filters, and publish only
/// where an `in` topic maps remote traffic (nothing at all with `upward_only`). Fixed by the
/// configuration, not by the ACL: the bridge is the operator's own client.
final class BridgeAuthorizer: ClientAuthorizer, @unchecked Sendable {
    private let filters: Set<String>
    private let inbound: [String]

    init(_ settings: BridgeSettings) {
        filters = Set(settings.outTopics.map(\.local))
        inbound = settings.inTopics.map(\.local)
    }

    func mayPublish(_ topic: String) -> Bool { inbound.contains { TopicRules.matches(filter: $0, topic: topic) } }
    func maySubscribe(_ filter: String) -> Bool { filters.contains(filter) }
    func mayReceive(_ topic: String) -> Bool { true }
    var lastDenialRule: String? { "bridge configuration" }
}
