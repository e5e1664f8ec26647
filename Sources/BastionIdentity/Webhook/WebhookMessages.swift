import BastionCore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON the webhook backend POSTs (docs/auth-backends.md, "Webhook").
struct WebhookRequest: Encodable, Equatable {
    struct Certificate: Encodable, Equatable {
        var identity: String
        var serial: String?
        var fingerprint_sha256: String?
    }

    var username: String?
    /// The password as text; null when there is none or it is not UTF-8 (then `password_base64`).
    var password: String?
    var password_base64: String?
    var client_id: String
    var listener: String
    var remote_address: String?
    var certificate: Certificate?

    init(_ request: AuthenticationRequest) {
        username = request.username
        if let password = request.password {
            if let text = request.passwordText { self.password = text } else { password_base64 = Data(password).base64EncodedString() }
        }
        client_id = request.clientID
        listener = request.listener
        remote_address = request.remoteHost
        if let identity = request.certificateIdentity {
            certificate = Certificate(identity: identity, serial: request.certificateSerial, fingerprint_sha256: request.certificateFingerprint)
        }
    }

    /// Absent fields are written as `null`, so the receiver sees every key every time.
    func encode(to encoder: any Encoder) throws {
        enum Key: String, CodingKey { case username, password, password_base64, client_id, listener, remote_address, certificate }
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(username, forKey: .username)
        try container.encode(password, forKey: .password)
        if let password_base64 { try container.encode(password_base64, forKey: .password_base64) }
        try container.encode(client_id, forKey: .client_id)
        try container.encode(listener, forKey: .listener)
        try container.encode(remote_address, forKey: .remote_address)
        try container.encode(certificate, forKey: .certificate)
    }
}

/// Reads the webhook's answer. Anything not exactly as documented is `unavailable`: a garbled
/// answer must never become an allow.
enum WebhookResponse {
    static let maximumBodySize = 64 * 1024

    static func decision(status: Int, body: [UInt8], request: AuthenticationRequest, source: String) -> BackendDecision {
        switch status {
        case 200: break
        case 401, 403: return .deny(BackendDenial(.badCredentials, "the webhook answered \(status)"))
        default: return .unavailable("the webhook answered HTTP \(status)")
        }
        guard let object = JSONValue.object(from: body) else { return .unavailable("the webhook's answer is not a JSON object") }
        let known: Set<String> = ["result", "username", "acl", "roles"]
        if let unknown = object.keys.first(where: { !known.contains($0) }) {
            return .unavailable("the webhook's answer has an unknown key \(unknown)")
        }
        switch object["result"]?.string {
        case "deny"?:
            return .deny(BackendDenial(.badCredentials, "the webhook denied the login"))
        case "ignore"?:
            return .noOpinion
        case "allow"?:
            break
        default:
            return .unavailable("the webhook's answer has no result of allow, deny or ignore")
        }
        var username = request.username ?? request.certificateIdentity
        if let value = object["username"] {
            guard let name = value.string else { return .unavailable("the webhook's username is not a string") }
            username = name
        }
        var rules: [BackendACLRule]?
        if let value = object["acl"] {
            guard let entries = value.array else { return .unavailable("the webhook's acl is not an array") }
            var collected: [BackendACLRule] = []
            for entry in entries {
                guard let fields = entry.object, fields.count == 2, let accessText = fields["access"]?.string,
                      let access = BackendACLRule.Access(rawValue: accessText), let topic = fields["topic"]?.string
                else { return .unavailable("the webhook's acl entries must be {\"access\": read|write|readwrite|subscribe|deny, \"topic\": FILTER}") }
                collected.append(BackendACLRule(access: access, filter: topic, source: "\(source) acl"))
            }
            rules = collected
        }
        var roles: [String] = []
        if let value = object["roles"] {
            guard let names = value.strings, value.array != nil else { return .unavailable("the webhook's roles are not an array of strings") }
            roles = names
        }
        return .allow(BackendGrant(username: username, rules: rules, roles: roles))
    }
}
