import BastionBridge
import Foundation
import MQTTCodec
import NIOCore

/// One entry of `bridges` as written (docs/bridge.md).
public struct BridgeConfig: Codable, Sendable, Equatable {
    public var name: String?
    /// mqtt://HOST:PORT or mqtts://HOST:PORT, tried in order.
    public var remotes: [String]?
    /// 5 (default) or 3.1.1.
    public var `protocol`: ProtocolChoice?
    public var client_id: String?
    public var username: String?
    /// First line is the password; must be readable by its owner only.
    public var password_file: String?
    public var tls: BridgeTLSConfig?
    /// out (default), in or both: the default for topics that do not say.
    public var direction: String?
    /// Default true: no `in` topic, and nothing from the remote reaches a local subscriber.
    public var upward_only: Bool?
    public var topics: [BridgeTopicConfig]?
    public var store_and_forward: StoreAndForwardConfig?
    public var max_bytes_per_second: Int?
    /// QoS 1 messages in flight to the remote (default 100).
    public var max_inflight: Int?
    /// Seconds; 0 turns keep alive off (default 60).
    public var keepalive: Int?

    public init() {}
}

/// `protocol: 5` or `protocol: "3.1.1"` (a YAML number or string).
public struct ProtocolChoice: Codable, Sendable, Equatable {
    public var text: String

    public init(_ text: String) { self.text = text }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            text = String(number)
        } else if let number = try? container.decode(Double.self) {
            text = String(number)
        } else {
            text = try container.decode(String.self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

public struct BridgeTLSConfig: Codable, Sendable, Equatable {
    /// CAs trusted for the remote's certificate (default: the system's roots).
    public var ca: String?
    public var cert: String?
    public var key: String?
}

public struct BridgeTopicConfig: Codable, Sendable, Equatable {
    public var local: String?
    public var remote: String?
    public var remote_prefix: String?
    public var qos: Int?
    public var direction: String?
}

public struct StoreAndForwardConfig: Codable, Sendable, Equatable {
    /// Bytes of topic and payload queued for the remote at most; the oldest go first.
    public var max_bytes: Int?
    /// Seconds a queued message may wait before it is dropped.
    public var max_age: Int?
}

extension BridgeConfig {
    /// Checks and resolves every bridge; errors name the key (`bridges[0].topics[1].qos`).
    static func resolve(_ configs: [BridgeConfig], file: String?) throws(ConfigError) -> [BridgeSettings] {
        var names = Set<String>()
        var result: [BridgeSettings] = []
        for (i, config) in configs.enumerated() {
            let settings = try config.resolve(key: "bridges[\(i)]", file: file)
            guard names.insert(settings.name).inserted else {
                throw ConfigError(file: file, key: "bridges[\(i)].name", "'\(settings.name)' names two bridges", fix: "give each bridge its own name")
            }
            result.append(settings)
        }
        return result
    }

    private func resolve(key: String, file: String?) throws(ConfigError) -> BridgeSettings {
        func fail(_ sub: String, _ message: String, fix: String? = nil) -> ConfigError {
            ConfigError(file: file, key: "\(key).\(sub)", message, fix: fix)
        }
        guard let name, !name.isEmpty else { throw fail("name", "required key is missing", fix: "name the bridge, e.g. it-dmz") }
        guard name.utf8.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw fail("name", "'\(name)' must be 1 to 64 letters, digits, '-', '_' or '.'", fix: "it names $SYS topics and metrics")
        }
        guard let remoteList = remotes, !remoteList.isEmpty else {
            throw fail("remotes", "required key is missing", fix: "list the remote brokers, e.g. [mqtts://broker-it.example:8883]")
        }
        var parsed: [BridgeSettings.Remote] = []
        for (j, text) in remoteList.enumerated() {
            let url: ListenerURL
            do {
                url = try ListenerURL(parsing: text)
            } catch {
                throw fail("remotes[\(j)]", error.description, fix: "write mqtt://HOST:PORT or mqtts://HOST:PORT")
            }
            guard url.scheme == .mqtt || url.scheme == .mqtts else {
                throw fail("remotes[\(j)]", "'\(text)': a bridge connects with mqtt:// or mqtts://")
            }
            parsed.append(.init(host: url.host, port: url.port, tls: url.scheme == .mqtts))
        }
        let version: ProtocolVersion
        switch self.protocol?.text ?? "5" {
        case "5", "5.0": version = .v5
        case "3.1.1", "4", "311": version = .v3_1_1
        case let other: throw fail("protocol", "unknown protocol '\(other)'", fix: "use 5 or 3.1.1")
        }
        let clientID = client_id ?? "bastion-bridge-\(name)"
        guard !clientID.isEmpty, clientID.utf8.count <= 65535 else { throw fail("client_id", "must not be empty") }
        var password: String?
        if let path = password_file {
            try SecretFiles.makePrivate(path, key: "\(key).password_file")
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw fail("password_file", "cannot read \(path)")
            }
            password = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        }
        var tlsSettings = BridgeSettings.TLS()
        if let tls {
            for (sub, path) in [("ca", tls.ca), ("cert", tls.cert), ("key", tls.key)] {
                if let path, !FileManager.default.isReadableFile(atPath: path) {
                    throw fail("tls.\(sub)", "cannot read \(path)")
                }
            }
            guard (tls.cert == nil) == (tls.key == nil) else {
                throw fail(tls.cert == nil ? "tls.cert" : "tls.key", "a client certificate needs both cert and key")
            }
            if let path = tls.key { try SecretFiles.makePrivate(path, key: "\(key).tls.key") }
            tlsSettings = .init(caFile: tls.ca, certificateFile: tls.cert, keyFile: tls.key)
        }
        let upward = upward_only ?? true
        let defaultDirection = try Self.direction(direction ?? "out", key: "\(key).direction", file: file)
        if upward && defaultDirection != .out {
            throw fail("direction", "'\(defaultDirection.rawValue)' contradicts upward_only: true (nothing may come in from the remote)",
                       fix: "use direction: out, or set upward_only: false deliberately")
        }
        guard let topicList = topics, !topicList.isEmpty else {
            throw fail("topics", "required key is missing", fix: "list what to forward, e.g. - {local: \"spBv1.0/#\", remote_prefix: \"site1/\", qos: 1}")
        }
        var resolvedTopics: [BridgeTopic] = []
        for (j, topic) in topicList.enumerated() {
            let topicKey = "topics[\(j)]"
            guard let local = topic.local else { throw fail("\(topicKey).local", "required key is missing") }
            if topic.remote != nil && topic.remote_prefix != nil {
                throw fail("\(topicKey).remote", "give remote or remote_prefix, not both")
            }
            let qos = topic.qos ?? 0
            guard qos == 0 || qos == 1 else {
                throw fail("\(topicKey).qos", "\(qos): bridges forward at QoS 0 or 1", fix: "use 0 (best effort) or 1 (stored and forwarded)")
            }
            let direction = try topic.direction.map { d throws(ConfigError) in try Self.direction(d, key: "\(key).\(topicKey).direction", file: file) }
                ?? defaultDirection
            if upward && direction != .out {
                throw fail("\(topicKey).direction", "'\(direction.rawValue)' contradicts upward_only: true (nothing may come in from the remote)",
                           fix: "remove the topic, or set upward_only: false deliberately")
            }
            do {
                resolvedTopics.append(try BridgeTopic(
                    local: local, remote: topic.remote, remotePrefix: topic.remote_prefix, qos: qos == 1 ? .atLeastOnce : .atMostOnce,
                    direction: direction))
            } catch {
                throw fail(topicKey, error.description)
            }
        }
        let maxBytes = store_and_forward?.max_bytes ?? BridgeSettings.defaultStoreBytes
        guard maxBytes >= 0 else { throw fail("store_and_forward.max_bytes", "\(maxBytes) is out of range", fix: "use 0 or more bytes") }
        if let age = store_and_forward?.max_age, age <= 0 {
            throw fail("store_and_forward.max_age", "\(age) is out of range", fix: "use seconds above 0, or leave it out to keep messages until max_bytes")
        }
        if let rate = max_bytes_per_second, rate <= 0 {
            throw fail("max_bytes_per_second", "\(rate) is out of range", fix: "use bytes per second above 0, or leave it out")
        }
        let inflight = max_inflight ?? BridgeSettings.defaultInflight
        guard (1...65535).contains(inflight) else { throw fail("max_inflight", "\(inflight) is out of range", fix: "use 1 to 65535") }
        let keepAlive = keepalive ?? 60
        guard (0...65535).contains(keepAlive) else { throw fail("keepalive", "\(keepAlive) is out of range", fix: "use 0 to 65535 seconds") }
        return BridgeSettings(
            name: name, remotes: parsed, protocolVersion: version, clientID: clientID, username: username, password: password,
            tls: tlsSettings, upwardOnly: upward, topics: resolvedTopics, storeMaximumBytes: maxBytes,
            storeMaximumAge: store_and_forward?.max_age, maximumBytesPerSecond: max_bytes_per_second, maximumInflight: inflight,
            keepAlive: UInt16(keepAlive))
    }

    private static func direction(_ text: String, key: String, file: String?) throws(ConfigError) -> BridgeTopic.Direction {
        guard let direction = BridgeTopic.Direction(rawValue: text) else {
            throw ConfigError(file: file, key: key, "unknown direction '\(text)'", fix: "use out, in or both")
        }
        return direction
    }
}
