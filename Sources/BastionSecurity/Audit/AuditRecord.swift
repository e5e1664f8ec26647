#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A field value in an audit record. Optional payloads encode as JSON null.
public enum AuditValue: Sendable, Hashable {
    case string(String?)
    case int(Int?)
    case number(Double?)
    case bool(Bool?)
    case strings([String])
}

/// An event with the wall-clock time it happened (captured when recorded, not when written).
public struct AuditRecord: Sendable, Hashable {
    /// Milliseconds since the Unix epoch, UTC.
    public var timestamp: Int64
    public var event: AuditEvent

    public init(timestamp: Int64, event: AuditEvent) {
        self.timestamp = timestamp
        self.event = event
    }

    /// The record's fields after `ts` and `event`, in schema order.
    public var fields: [(String, AuditValue)] { event.fields }

    /// One JSON Lines line, newline included. Keys in a fixed order: ts, event, then the fields.
    public func jsonLine() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        JSONText.appendKey("ts", to: &out)
        JSONText.appendString(RFC3339.format(millisecondsSinceEpoch: timestamp), to: &out)
        out.append(UInt8(ascii: ","))
        JSONText.appendKey("event", to: &out)
        JSONText.appendString(event.name, to: &out)
        for (key, value) in fields {
            out.append(UInt8(ascii: ","))
            JSONText.appendKey(key, to: &out)
            JSONText.append(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        out.append(UInt8(ascii: "\n"))
        return out
    }
}

extension AuditEvent {
    private static func peerFields(_ peer: AuditPeer) -> [(String, AuditValue)] {
        [("listener", .string(peer.listener)), ("remote_ip", .string(peer.ip)), ("remote_port", .int(peer.port))]
    }

    /// Encoding of each event; `AuditSchema` describes the same fields for validation and docs.
    var fields: [(String, AuditValue)] {
        switch self {
        case .started(let e):
            return [("version", .string(e.version)), ("listeners", .strings(e.listeners)),
                    ("config", .string(e.configPath)), ("pid", .int(e.pid))]
        case .shutdown(let e):
            return [("cause", .string(e.cause.rawValue)), ("uptime_seconds", .int(e.uptimeSeconds))]
        case .connectionAccepted(let e):
            return Self.peerFields(e.peer) + [
                ("client_id", .string(e.clientID)), ("username", .string(e.username)), ("identity", .string(e.identity)),
                ("protocol", .string(e.protocolVersion)), ("clean_start", .bool(e.cleanStart)),
                ("tls_version", .string(e.tlsVersion)), ("tls_cipher", .string(e.tlsCipher)),
                ("cert_serial", .string(e.certificateSerial)),
            ]
        case .connectionRefused(let e):
            return Self.peerFields(e.peer) + [("reason", .string(e.reason.rawValue))]
        case .authFailure(let e):
            return Self.peerFields(e.peer) + [
                ("client_id", .string(e.clientID)), ("username", .string(e.username)),
                ("protocol", .string(e.protocolVersion)), ("reason", .string(e.reason.rawValue)),
            ]
        case .authorizationDenied(let e):
            return Self.peerFields(e.peer) + [
                ("client_id", .string(e.clientID)), ("username", .string(e.username)),
                ("operation", .string(e.operation.rawValue)), ("topic", .string(e.topic)), ("rule", .string(e.rule)),
            ]
        case .ban(let e):
            return [("subject_type", .string(e.subjectType)), ("subject", .string(e.subject)),
                    ("origin", .string(e.origin.rawValue)), ("duration_seconds", .number(e.durationSeconds)),
                    ("offence", .int(e.offence)), ("note", .string(e.note))]
        case .unban(let e):
            return [("subject_type", .string(e.subjectType)), ("subject", .string(e.subject)), ("cause", .string(e.cause.rawValue))]
        case .limitReached(let e):
            return Self.peerFields(e.peer) + [
                ("limit", .string(e.limit.rawValue)), ("action", .string(e.action.rawValue)),
                ("client_id", .string(e.clientID)), ("username", .string(e.username)),
                ("value", .int(e.value)), ("maximum", .int(e.maximum)),
            ]
        case .configReload(let e):
            return [("outcome", .string(e.outcome.rawValue)), ("path", .string(e.path)), ("error", .string(e.error))]
        case .alert(let e):
            return [("kind", .string(e.kind.rawValue)), ("count", .int(e.count)), ("threshold", .int(e.threshold)),
                    ("window_seconds", .number(e.windowSeconds)), ("subject", .string(e.subject))]
        case .banSuppressed(let e):
            return [("subject_type", .string(e.subjectType)), ("subject", .string(e.subject)), ("origin", .string(e.origin.rawValue))]
        case .sessionHijackRefused(let e):
            return Self.peerFields(e.peer) + [
                ("client_id", .string(e.clientID)), ("identity", .string(e.identity)), ("owner", .string(e.owner)),
            ]
        case .sparkplugCommand(let e):
            return Self.peerFields(e.peer) + [
                ("client_id", .string(e.clientID)), ("username", .string(e.username)), ("topic", .string(e.topic)),
                ("group", .string(e.group)), ("edge_node", .string(e.edgeNode)), ("device", .string(e.device)),
                ("metrics", e.metrics.map { .strings($0) } ?? .string(nil)), ("outcome", .string(e.outcome.rawValue)),
                ("reason", .string(e.reason)), ("signature", .string(e.signature.rawValue)),
            ]
        case .sparkplugPayloadInvalid(let e):
            return Self.peerFields(e.peer) + [
                ("client_id", .string(e.clientID)), ("topic", .string(e.topic)), ("error", .string(e.error)), ("will", .bool(e.will)),
            ]
        case .adminLogin(let e):
            return [("remote_ip", .string(e.remoteIP)), ("user", .string(e.user)), ("method", .string(e.method.rawValue)),
                    ("outcome", .string(e.outcome.rawValue)), ("reason", .string(e.reason?.rawValue)), ("role", .string(e.role))]
        case .adminAction(let e):
            return [("remote_ip", .string(e.remoteIP)), ("user", .string(e.user)), ("role", .string(e.role)),
                    ("via", .string(e.via.rawValue)), ("action", .string(e.action.rawValue)), ("target", .string(e.target)),
                    ("outcome", .string(e.outcome.rawValue)), ("detail", .string(e.detail))]
        case .bridge(let e):
            return [("bridge", .string(e.bridge)), ("remote", .string(e.remote)), ("reason", .string(e.reason)), ("dropped", .int(e.dropped))]
        case .recordsDropped(let count):
            return [("count", .int(count))]
        }
    }
}

/// Minimal JSON text output for audit records: strings escaped per RFC 8259 (control characters,
/// quote, backslash, and U+2028/U+2029), so client-controlled text cannot break a line or forge a
/// record.
enum JSONText {
    static func appendKey(_ key: String, to out: inout [UInt8]) {
        appendString(key, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    static func append(_ value: AuditValue, to out: inout [UInt8]) {
        switch value {
        case .string(let s):
            if let s { appendString(s, to: &out) } else { appendNull(to: &out) }
        case .int(let i):
            if let i { out.append(contentsOf: String(i).utf8) } else { appendNull(to: &out) }
        case .number(let d):
            if let d, d.isFinite {
                out.append(contentsOf: (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)).utf8)
            } else {
                appendNull(to: &out)
            }
        case .bool(let b):
            if let b { out.append(contentsOf: (b ? "true" : "false").utf8) } else { appendNull(to: &out) }
        case .strings(let list):
            out.append(UInt8(ascii: "["))
            for (i, s) in list.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(s, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    static func appendNull(to out: inout [UInt8]) {
        out.append(contentsOf: "null".utf8)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// Longest field value written (in UTF-8 bytes of the source text): client ids, user names
    /// and topics are client-chosen, and a record must stay small whatever a client sends. Longer
    /// values end with "…" (`…[+N]` says how much was cut).
    static let maximumStringBytes = 1024

    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var written = 0
        for scalar in s.unicodeScalars {
            written += scalar.utf8.count
            if written > maximumStringBytes {
                out.append(contentsOf: "…[+\(s.utf8.count - written + scalar.utf8.count)]".utf8)
                break
            }
            switch scalar.value {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20, 0x7F, 0x2028, 0x2029:
                let v = scalar.value
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"),
                                        hex[Int(v >> 12 & 0xF)], hex[Int(v >> 8 & 0xF)], hex[Int(v >> 4 & 0xF)], hex[Int(v & 0xF)]])
            default:
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// RFC 3339 timestamps in UTC with milliseconds: 2024-05-01T12:34:56.789Z.
public enum RFC3339 {
    public static func format(millisecondsSinceEpoch ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = Int(ms - seconds * 1000)
        var t = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&t, &parts) != nil else { return "1970-01-01T00:00:00.000Z" }
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    /// The current wall-clock time in milliseconds since the epoch.
    public static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
