#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A Sparkplug role as written in the configuration, held by the identities its subject names.
/// Ids in the role may contain `%u` (the user name) and `%c` (the client id), so that one entry
/// serves every edge node: `{all: true, edge: {group: plant1, edge_node: "%u"}}`.
public struct SparkplugRoleBinding: Sendable, Hashable {
    public enum Subject: Sendable, Hashable, CustomStringConvertible {
        case user(String)
        /// A role of the access policy (`auth.roles`, or one a backend maps).
        case aclRole(String)
        /// The certificate identity the listener maps (mTLS).
        case certificate(String)
        /// Every authenticated or anonymous client; useful with `%u` / `%c` templates.
        case all

        public var description: String {
            switch self {
            case .user(let name): "user \(name)"
            case .aclRole(let name): "role \(name)"
            case .certificate(let name): "certificate \(name)"
            case .all: "all"
            }
        }
    }

    public var subject: Subject
    public var template: SparkplugRole
    /// Where it was written, e.g. `bastion.yaml sparkplug.roles[2]`.
    public var source: String

    public init(subject: Subject, template: SparkplugRole, source: String) throws(SparkplugRoleError) {
        self.subject = subject
        self.template = template
        self.source = source
        // The template must be valid with any safe value in place of %u / %c.
        try template.substituting(username: "u", clientID: "c")?.validate()
    }

    /// `aclRoles`: the access-policy roles the identity holds.
    public func applies(username: String?, certificateIdentity: String?, aclRoles: Set<String>) -> Bool {
        switch subject {
        case .user(let name): username == name
        case .aclRole(let name): aclRoles.contains(name)
        case .certificate(let name): certificateIdentity == name
        case .all: true
        }
    }

    /// The role this identity holds through the binding; nil when it needs a `%u` / `%c` value the
    /// identity lacks or one that could widen it (`/`, `+`, `#`, NUL, empty): default deny.
    public func role(username: String?, clientID: String, certificateIdentity: String?, aclRoles: Set<String> = []) -> SparkplugRole? {
        guard applies(username: username, certificateIdentity: certificateIdentity, aclRoles: aclRoles) else { return nil }
        guard let role = template.substituting(username: username.flatMap(Self.safe), clientID: Self.safe(clientID)),
              (try? role.validate()) != nil else { return nil }
        return role
    }

    static func safe(_ value: String) -> String? {
        guard !value.isEmpty, !value.utf8.contains(0) else { return nil }
        return SparkplugID.isValid(value) ? value : nil
    }
}

extension SparkplugRole {
    /// The role with `%u` and `%c` replaced; nil when a placeholder has no value.
    func substituting(username: String?, clientID: String?) -> SparkplugRole? {
        func fill(_ id: String) -> String? {
            guard id.contains("%") else { return id }
            var out = id
            if out.contains("%u") {
                guard let username else { return nil }
                out = out.replacingOccurrences(of: "%u", with: username)
            }
            if out.contains("%c") {
                guard let clientID else { return nil }
                out = out.replacingOccurrences(of: "%c", with: clientID)
            }
            return out
        }
        switch self {
        case .edge(let group, let edge):
            guard let group = fill(group), let edge = fill(edge) else { return nil }
            return .edge(group: group, edgeNode: edge)
        case .host(let hostID, let groups):
            guard let hostID = fill(hostID) else { return nil }
            switch groups {
            case .all: return .host(hostID: hostID, groups: .all)
            case .listed(let list):
                var filled: [String] = []
                for group in list {
                    guard let group = fill(group) else { return nil }
                    filled.append(group)
                }
                return .host(hostID: hostID, groups: .listed(filled))
            }
        case .monitor(let hostID):
            guard let hostID else { return .monitor(hostID: nil) }
            guard let filled = fill(hostID) else { return nil }
            return .monitor(hostID: filled)
        }
    }
}
