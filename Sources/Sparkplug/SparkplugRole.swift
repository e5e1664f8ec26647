/// What a client is in a Sparkplug system. A client may hold several roles (an edge node that is
/// also a monitor, a host for two group lists).
public enum SparkplugRole: Sendable, Hashable, Codable {
    /// An edge node: births, deaths and data for itself and its devices; receives commands.
    case edge(group: String, edgeNode: String)
    /// A host application: reads the groups, commands their edge nodes and devices, publishes its
    /// own STATE.
    case host(hostID: String, groups: SparkplugGroupSelection)
    /// Reads everything, commands nothing; publishes its own STATE when it has a host id.
    case monitor(hostID: String?)

    /// The ACL grants that let this role do exactly what the specification asks of it.
    public func grants() throws(SparkplugRoleError) -> [SparkplugGrant] {
        try validate()
        let ns = SparkplugTopic.namespace
        switch self {
        case .edge(let group, let edge):
            return [
                .init(.publish, "\(ns)/\(group)/NBIRTH/\(edge)", retain: .forbidden),
                .init(.publish, "\(ns)/\(group)/NDEATH/\(edge)", retain: .forbidden),
                .init(.publish, "\(ns)/\(group)/NDATA/\(edge)", retain: .forbidden),
                .init(.publish, "\(ns)/\(group)/DBIRTH/\(edge)/+", retain: .forbidden),
                .init(.publish, "\(ns)/\(group)/DDEATH/\(edge)/+", retain: .forbidden),
                .init(.publish, "\(ns)/\(group)/DDATA/\(edge)/+", retain: .forbidden),
                .init(.subscribe, "\(ns)/\(group)/NCMD/\(edge)"),
                .init(.subscribe, "\(ns)/\(group)/DCMD/\(edge)/+"),
                .init(.subscribe, "\(ns)/STATE/+"),
            ]
        case .host(let hostID, let groups):
            var grants: [SparkplugGrant] = []
            switch groups {
            case .all:
                grants.append(.init(.subscribe, "\(ns)/#"))
                grants.append(.init(.subscribe, "\(SparkplugTopic.certificatePrefix)\(ns)/#"))
                grants.append(.init(.publish, "\(ns)/+/NCMD/+", retain: .forbidden))
                grants.append(.init(.publish, "\(ns)/+/DCMD/+/+", retain: .forbidden))
            case .listed(let list):
                // Its own STATE: spec 3.0 has a host subscribe to it to see itself declared offline.
                grants.append(.init(.subscribe, "\(ns)/STATE/\(hostID)"))
                for group in list {
                    grants.append(.init(.subscribe, "\(ns)/\(group)/#"))
                    grants.append(.init(.subscribe, "\(SparkplugTopic.certificatePrefix)\(ns)/\(group)/#"))
                    grants.append(.init(.publish, "\(ns)/\(group)/NCMD/+", retain: .forbidden))
                    grants.append(.init(.publish, "\(ns)/\(group)/DCMD/+/+", retain: .forbidden))
                }
            }
            grants.append(.init(.publish, "\(ns)/STATE/\(hostID)", retain: .required))
            return grants
        case .monitor(let hostID):
            var grants: [SparkplugGrant] = [
                .init(.read, "\(ns)/#"),
                .init(.read, "\(SparkplugTopic.certificatePrefix)\(ns)/#"),
            ]
            if let hostID { grants.append(.init(.publish, "\(ns)/STATE/\(hostID)", retain: .required)) }
            return grants
        }
    }

    /// Ids with `/`, `+` or `#` would turn a template's filter into a wider one.
    public func validate() throws(SparkplugRoleError) {
        switch self {
        case .edge(let group, let edge):
            guard SparkplugID.isValid(group) else { throw .invalidID(group) }
            guard SparkplugID.isValid(edge) else { throw .invalidID(edge) }
            guard group != SparkplugTopic.stateLevel else { throw .reservedGroup }
        case .host(let hostID, let groups):
            guard SparkplugID.isValid(hostID) else { throw .invalidID(hostID) }
            if case .listed(let list) = groups {
                for group in list {
                    guard SparkplugID.isValid(group) else { throw .invalidID(group) }
                    guard group != SparkplugTopic.stateLevel else { throw .reservedGroup }
                }
            }
        case .monitor(let hostID):
            if let hostID, !SparkplugID.isValid(hostID) { throw .invalidID(hostID) }
        }
    }

    /// The STATE host id this role may publish for, if any.
    var stateHostID: String? {
        switch self {
        case .edge: nil
        case .host(let hostID, _): hostID
        case .monitor(let hostID): hostID
        }
    }
}

public enum SparkplugGroupSelection: Sendable, Hashable, Codable {
    case all
    case listed([String])

    public func contains(_ group: String) -> Bool {
        switch self {
        case .all: true
        case .listed(let list): list.contains(group)
        }
    }
}

public enum SparkplugRoleError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidID(String)
    /// `STATE` cannot be a group: `spBv1.0/STATE/…` is the host applications' namespace.
    case reservedGroup

    public var description: String {
        switch self {
        case .invalidID(let id): "Sparkplug id '\(id)' is empty or contains '/', '+' or '#'"
        case .reservedGroup: "'STATE' cannot be a Sparkplug group id"
        }
    }
}

/// One ACL rule of a role template, in the terms of the broker's ACL (`publish`, `subscribe`,
/// `read` — subscribe and receive —, `deny`).
public struct SparkplugGrant: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Access: String, Sendable, Hashable, Codable {
        case publish
        case subscribe
        case read
        /// Nothing on matching topics, whatever other rules grant; for operators' own exclusions.
        case deny
    }

    public var access: Access
    public var filter: String
    /// How the retain flag must be set on publishes this grant allows, when the specification
    /// says. A note for the ACL and its audit; the ACL itself matches topics only.
    public var retain: SparkplugRetainRequirement?

    public init(_ access: Access, _ filter: String, retain: SparkplugRetainRequirement? = nil) {
        self.access = access
        self.filter = filter
        self.retain = retain
    }

    public var description: String {
        var text = "\(access.rawValue) \(filter)"
        if let retain { text += " (retain \(retain == .required ? "required" : "forbidden"))" }
        return text
    }
}
