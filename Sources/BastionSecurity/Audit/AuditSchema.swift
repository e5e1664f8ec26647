import Foundation

/// The stable schema of audit records: for each event, its fields, their JSON types and (for
/// enumerations) the allowed values. docs/audit-log.md documents the same table; `validate`
/// checks a line against it (`bastion audit validate`, tests).
public enum AuditSchema {
    public enum FieldType: String, Sendable {
        case string, integer, number, boolean
        case stringArray = "array of strings"
    }

    public struct Field: Sendable {
        public var name: String
        public var type: FieldType
        public var nullable: Bool
        /// Allowed values of an enumerated string.
        public var values: [String]?

        init(_ name: String, _ type: FieldType, nullable: Bool = false, values: [String]? = nil) {
            self.name = name
            self.type = type
            self.nullable = nullable
            self.values = values
        }
    }

    private static let peer: [Field] = [
        Field("listener", .string, nullable: true),
        Field("remote_ip", .string, nullable: true),
        Field("remote_port", .integer, nullable: true),
    ]

    private static func values<T: RawRepresentable & CaseIterable>(_ type: T.Type) -> [String] where T.RawValue == String {
        T.allCases.map(\.rawValue)
    }

    private static let protocols = ["3.1", "3.1.1", "5.0"]
    private static let refusalReasons = ["banned", "too_many_total", "too_many_per_address", "rate_exceeded"]
    private static let banOrigins = ["config", "manual", "auth_failures", "flapping", "protocol_violations"]
    private static let subjectTypes = ["ip", "cidr", "username", "client_id"]

    /// Fields after `ts` and `event`, per event name, in the order they are written.
    public static let events: [String: [Field]] = [
        "start": [
            Field("version", .string), Field("listeners", .stringArray),
            Field("config", .string, nullable: true), Field("pid", .integer),
        ],
        "shutdown": [Field("cause", .string, values: ["signal", "failure"]), Field("uptime_seconds", .integer)],
        "connection_accepted": peer + [
            Field("client_id", .string), Field("username", .string, nullable: true), Field("identity", .string, nullable: true),
            Field("protocol", .string, values: protocols), Field("clean_start", .boolean),
            Field("tls_version", .string, nullable: true), Field("tls_cipher", .string, nullable: true),
            Field("cert_serial", .string, nullable: true),
        ],
        "connection_refused": peer + [Field("reason", .string, values: refusalReasons)],
        "auth_failure": peer + [
            Field("client_id", .string, nullable: true), Field("username", .string, nullable: true),
            Field("protocol", .string, nullable: true, values: protocols),
            Field("reason", .string, values: values(AuditEvent.AuthFailure.Reason.self)),
        ],
        "authz_denied": peer + [
            Field("client_id", .string), Field("username", .string, nullable: true),
            Field("operation", .string, values: ["publish", "subscribe", "receive"]), Field("topic", .string),
            Field("rule", .string, nullable: true),
        ],
        "ban": [
            Field("subject_type", .string, values: subjectTypes), Field("subject", .string),
            Field("origin", .string, values: banOrigins), Field("duration_seconds", .number, nullable: true),
            Field("offence", .integer), Field("note", .string, nullable: true),
        ],
        "unban": [
            Field("subject_type", .string, values: subjectTypes), Field("subject", .string),
            Field("cause", .string, values: ["expired", "removed", "config_reload"]),
        ],
        "limit_reached": peer + [
            Field("limit", .string, values: values(AuditEvent.LimitReached.Limit.self)),
            Field("action", .string, values: values(AuditEvent.LimitReached.Action.self)),
            Field("client_id", .string, nullable: true), Field("username", .string, nullable: true),
            Field("value", .integer, nullable: true), Field("maximum", .integer, nullable: true),
        ],
        "config_reload": [
            Field("outcome", .string, values: ["success", "rejected"]), Field("path", .string, nullable: true),
            Field("error", .string, nullable: true),
        ],
        "alert": [
            Field("kind", .string, values: values(Alert.Kind.self)), Field("count", .integer),
            Field("threshold", .integer), Field("window_seconds", .number), Field("subject", .string, nullable: true),
        ],
        "ban_suppressed": [
            Field("subject_type", .string, values: subjectTypes), Field("subject", .string),
            Field("origin", .string, values: banOrigins),
        ],
        "session_hijack_refused": peer + [
            Field("client_id", .string), Field("identity", .string), Field("owner", .string),
        ],
        "sparkplug_command": peer + [
            Field("client_id", .string), Field("username", .string, nullable: true), Field("topic", .string),
            Field("group", .string), Field("edge_node", .string), Field("device", .string, nullable: true),
            Field("metrics", .stringArray, nullable: true),
            Field("outcome", .string, values: values(AuditEvent.SparkplugCommand.Outcome.self)),
            Field("reason", .string, nullable: true),
            Field("signature", .string, values: values(AuditEvent.SparkplugCommand.Signature.self)),
        ],
        "bridge_connected": [
            Field("bridge", .string), Field("remote", .string, nullable: true), Field("reason", .string, nullable: true),
            Field("dropped", .integer, nullable: true),
        ],
        "bridge_disconnected": [
            Field("bridge", .string), Field("remote", .string, nullable: true), Field("reason", .string, nullable: true),
            Field("dropped", .integer, nullable: true),
        ],
        "bridge_refused": [
            Field("bridge", .string), Field("remote", .string, nullable: true), Field("reason", .string, nullable: true),
            Field("dropped", .integer, nullable: true),
        ],
        "bridge_unreachable": [
            Field("bridge", .string), Field("remote", .string, nullable: true), Field("reason", .string, nullable: true),
            Field("dropped", .integer, nullable: true),
        ],
        "bridge_queue_full": [
            Field("bridge", .string), Field("remote", .string, nullable: true), Field("reason", .string, nullable: true),
            Field("dropped", .integer, nullable: true),
        ],
        "sparkplug_payload_invalid": peer + [
            Field("client_id", .string), Field("topic", .string), Field("error", .string), Field("will", .boolean),
        ],
        "admin_login": [
            Field("remote_ip", .string, nullable: true), Field("user", .string),
            Field("method", .string, values: values(AuditEvent.AdminLogin.Method.self)),
            Field("outcome", .string, values: values(AuditEvent.AdminLogin.Outcome.self)),
            Field("reason", .string, nullable: true, values: values(AuditEvent.AdminLogin.Reason.self)),
            Field("role", .string, nullable: true, values: ["viewer", "operator", "admin"]),
        ],
        "admin_action": [
            Field("remote_ip", .string, nullable: true), Field("user", .string),
            Field("role", .string, values: ["viewer", "operator", "admin"]),
            Field("via", .string, values: values(AuditEvent.AdminAction.Via.self)),
            Field("action", .string, values: values(AuditEvent.AdminAction.Action.self)),
            Field("target", .string, nullable: true),
            Field("outcome", .string, values: values(AuditEvent.AdminAction.Outcome.self)),
            Field("detail", .string, nullable: true),
        ],
        "audit_dropped": [Field("count", .integer)],
    ]

    /// Problems with one line; empty when it is a valid record.
    public static func validate(line: String) -> [String] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
        } catch {
            return ["not valid JSON"]
        }
        guard case .object(let object) = value else { return ["not a JSON object"] }
        var problems: [String] = []
        if case .string(let ts)? = object["ts"] {
            if !isTimestamp(ts) { problems.append("'ts' is not an RFC 3339 UTC timestamp with milliseconds: \(ts)") }
        } else {
            problems.append("'ts' is missing or not a string")
        }
        guard case .string(let event)? = object["event"] else {
            return problems + ["'event' is missing or not a string"]
        }
        guard let fields = events[event] else { return problems + ["unknown event '\(event)'"] }
        for field in fields {
            guard let v = object[field.name] else {
                problems.append("\(event): field '\(field.name)' is missing")
                continue
            }
            if let problem = check(v, field) { problems.append("\(event): field '\(field.name)' \(problem)") }
        }
        let known = Set(fields.map(\.name) + ["ts", "event"])
        for key in object.keys.sorted() where !known.contains(key) {
            problems.append("\(event): unknown field '\(key)'")
        }
        return problems
    }

    private static func check(_ value: JSONValue, _ field: Field) -> String? {
        switch (value, field.type) {
        case (.null, _): return field.nullable ? nil : "must not be null"
        case (.string(let s), .string):
            if let allowed = field.values, !allowed.contains(s) { return "has unknown value '\(s)'" }
            return nil
        case (.integer, .integer), (.integer, .number), (.number, .number), (.bool, .boolean): return nil
        case (.array(let items), .stringArray):
            return items.allSatisfy { if case .string = $0 { true } else { false } } ? nil : "must contain only strings"
        default: return "must be \(field.type.rawValue)"
        }
    }

    /// YYYY-MM-DDTHH:MM:SS.mmmZ
    static func isTimestamp(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 24 else { return false }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
        let fixed: [(Int, Unicode.Scalar)] = [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")]
        return digits.allSatisfy { (0x30...0x39).contains(b[$0]) } && fixed.allSatisfy { b[$0.0] == UInt8(ascii: $0.1) }
    }
}

/// Just enough JSON to validate records, keeping integers, numbers and booleans apart.
enum JSONValue: Decodable {
    case null, bool(Bool), integer(Int64), number(Double), string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }
}
