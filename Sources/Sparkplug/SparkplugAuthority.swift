/// Who may publish what in the Sparkplug namespaces, decided from the roles bound to the
/// publisher's identity — a check on top of the ACL that names the Sparkplug rule broken, so
/// that a forged birth or an unauthorised command can be counted and audited as such. Applies to
/// PUBLISHes and to wills (an NDEATH is a will).
public struct SparkplugAuthority: Sendable, Hashable {
    public var roles: [SparkplugRole]

    public init(roles: [SparkplugRole]) {
        self.roles = roles
    }

    /// Nil for topics outside both Sparkplug namespaces (no Sparkplug opinion).
    public func decide(topicName: String) -> SparkplugPublishDecision? {
        switch SparkplugTopic.classify(topicName) {
        case .notSparkplug: nil
        case .malformed(let error): .refused(.malformedTopic(error))
        case .sparkplug(let topic): decide(topic)
        }
    }

    public func decide(_ topic: SparkplugTopic) -> SparkplugPublishDecision {
        switch topic {
        case .certificate, .serverNamespace:
            return .refused(.brokerOnlyNamespace)
        case .state(let hostID):
            for role in roles where role.stateHostID == hostID { return .allowed(by: role) }
            return .refused(.foreignHostState)
        case .edge(let edgeTopic) where edgeTopic.messageType.isCommand:
            for role in roles {
                if case .host(_, let groups) = role, groups.contains(edgeTopic.groupID) { return .allowed(by: role) }
            }
            return .refused(.commandWithoutHostRole)
        case .edge(let edgeTopic):
            for role in roles {
                if case .edge(let group, let edge) = role, group == edgeTopic.groupID, edge == edgeTopic.edgeNodeID {
                    return .allowed(by: role)
                }
            }
            return .refused(.forgedBirth)
        }
    }
}

public enum SparkplugPublishDecision: Sendable, Hashable, CustomStringConvertible {
    case allowed(by: SparkplugRole)
    case refused(SparkplugRefusal)

    public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .allowed(let role): "allowed by Sparkplug role \(role)"
        case .refused(let refusal): "refused: \(refusal)"
        }
    }
}

public enum SparkplugRefusal: Sendable, Hashable, CustomStringConvertible {
    /// A birth, death or data message for an edge node (or its device) that is not the
    /// publisher's own.
    case forgedBirth
    /// NCMD or DCMD from a client without a host role for that group.
    case commandWithoutHostRole
    /// STATE for a host id that is not the publisher's own.
    case foreignHostState
    /// Anything under `$sparkplug/`: only the server publishes there.
    case brokerOnlyNamespace
    /// Under `spBv1.0/` but not a topic the specification defines.
    case malformedTopic(SparkplugTopicError)

    /// A stable name for counters and audit records.
    public var name: String {
        switch self {
        case .forgedBirth: "forgedBirth"
        case .commandWithoutHostRole: "commandWithoutHostRole"
        case .foreignHostState: "foreignHostState"
        case .brokerOnlyNamespace: "brokerOnlyNamespace"
        case .malformedTopic: "malformedTopic"
        }
    }

    public var description: String {
        switch self {
        case .forgedBirth: "birth, death or data for an edge node that is not the publisher's"
        case .commandWithoutHostRole: "command without a host application role for the group"
        case .foreignHostState: "STATE for a host application that is not the publisher's"
        case .brokerOnlyNamespace: "$sparkplug/ is published only by the server"
        case .malformedTopic(let error): "\(error)"
        }
    }
}
