/// One rule of the configuration file's `auth.acl` list:
/// `{user|role|client_id|certificate: NAME | anonymous: true | all: true, access: ACCESS, topic: FILTER}`.
///
/// In the topic, `%u` stands for the username and `%c` for the client id (for every subject).
public struct NativeACLRule: Sendable, Hashable {
    public enum Subject: Sendable, Hashable {
        case user(String)
        case role(String)
        case clientID(String)
        case certificate(String)
        /// Clients with neither a username nor a certificate.
        case anonymous
        /// Every client, anonymous ones included.
        case all
    }

    public enum Access: String, Sendable, Hashable, CaseIterable {
        /// Publish to matching topics.
        case publish
        /// Subscribe with filters inside the rule's filter, and receive the messages.
        case subscribe
        /// Same as `subscribe` (Mosquitto's word: subscribe and receive).
        case read
        /// publish + subscribe + receive.
        case readwrite
        /// Nothing on matching topics, whatever wider rules grant.
        case deny
    }

    public var subject: Subject
    /// For a `client_id` rule that also names a user, role or certificate: the identity the
    /// client id is bound to. The rule then applies to that identity with that client id only.
    public var binding: Subject?
    public var access: Access
    public var topic: String
    /// Where the rule was written, e.g. `config acl[3]` or `bastion.yaml acl[3]`.
    public var source: String

    public init(subject: Subject, binding: Subject? = nil, access: Access, topic: String, source: String) {
        self.subject = subject
        self.binding = binding
        self.access = access
        self.topic = topic
        self.source = source
    }

    /// Builds a rule from the configuration file's fields: exactly one of `user`, `role`,
    /// `clientID`, `certificate`, `anonymous: true`, `all: true` must be set; `access` must be one of
    /// publish, subscribe, read, readwrite, deny. Errors name `source` and the key.
    public init(user: String? = nil, role: String? = nil, clientID: String? = nil, certificate: String? = nil,
                anonymous: Bool? = nil, all: Bool? = nil, access: String, topic: String, source: String) throws(ACLError) {
        var subjects: [Subject] = []
        if let user { subjects.append(.user(user)) }
        if let role { subjects.append(.role(role)) }
        if let clientID { subjects.append(.clientID(clientID)) }
        if let certificate { subjects.append(.certificate(certificate)) }
        if anonymous == true { subjects.append(.anonymous) }
        if all == true { subjects.append(.all) }
        // `client_id` with one of user/role/certificate binds that client id to that identity.
        var binding: Subject?
        if let clientID, subjects.count == 2, let other = subjects.first(where: { $0 != .clientID(clientID) }) {
            switch other {
            case .user, .role, .certificate:
                binding = other
                subjects = [.clientID(clientID)]
            case .clientID, .anonymous, .all:
                break
            }
        }
        guard subjects.count == 1, let subject = subjects.first else {
            throw ACLError(source: source, message: "set exactly one of user, role, client_id, certificate, anonymous: true, all: true (found \(subjects.count)); client_id may be combined with one user, role or certificate to bind it")
        }
        switch subject {
        case .user(let name), .role(let name), .clientID(let name), .certificate(let name):
            guard !name.isEmpty else { throw ACLError(source: source, message: "the rule's subject name is empty") }
        case .anonymous, .all:
            break
        }
        if case .user(let name)? = binding, name.isEmpty { throw ACLError(source: source, message: "the rule's user name is empty") }
        if case .role(let name)? = binding, name.isEmpty { throw ACLError(source: source, message: "the rule's role name is empty") }
        if case .certificate(let name)? = binding, name.isEmpty { throw ACLError(source: source, message: "the rule's certificate name is empty") }
        guard let parsed = Access(rawValue: access) else {
            throw ACLError(source: "\(source).access", message: "unknown access '\(access)'; use one of publish, subscribe, read, readwrite, deny")
        }
        self.init(subject: subject, binding: binding, access: parsed, topic: topic, source: source)
    }

    var subjectText: String {
        if let binding { return "\(Self.text(subject)) bound to \(Self.text(binding))" }
        return Self.text(subject)
    }

    private static func text(_ subject: Subject) -> String {
        switch subject {
        case .user(let name): "user \(name)"
        case .role(let name): "role \(name)"
        case .clientID(let name): "client_id \(name)"
        case .certificate(let name): "certificate \(name)"
        case .anonymous: "anonymous"
        case .all: "all"
        }
    }

    var ruleSubject: RuleSubject { subject.ruleSubject }

    var effect: RuleEffect {
        switch access {
        case .publish: .allow(.publish)
        case .subscribe, .read: .allow([.subscribe, .read])
        case .readwrite: .allow(.all)
        case .deny: .deny
        }
    }
}

extension NativeACLRule.Subject {
    var ruleSubject: RuleSubject {
        switch self {
        case .user(let name): .user(name)
        case .role(let name): .role(name)
        case .clientID(let name): .clientID(name)
        case .certificate(let name): .certificate(name)
        case .anonymous: .anonymous
        case .all: .all
        }
    }

}
