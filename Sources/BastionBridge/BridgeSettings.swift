import MQTTCodec
import NIOCore

/// A bridge as configured (`bridges[]`), resolved and checked: Bastion connects to `remotes` as
/// an MQTT client and forwards the selected local traffic (docs/bridge.md).
public struct BridgeSettings: Sendable {
    public struct Remote: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var tls: Bool

        public init(host: String, port: Int, tls: Bool) {
            self.host = host
            self.port = port
            self.tls = tls
        }

        public var description: String {
            let shown = host.contains(":") ? "[\(host)]" : host
            return "\(tls ? "mqtts" : "mqtt")://\(shown):\(port)"
        }
    }

    /// TLS towards the remotes: CA bundle (system roots when nil), client certificate and key.
    public struct TLS: Sendable, Equatable {
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public var name: String
    public var remotes: [Remote]
    public var protocolVersion: ProtocolVersion
    public var clientID: String
    public var username: String?
    /// Read from `password_file`; never logged.
    public var password: String?
    public var tls: TLS
    public var upwardOnly: Bool
    public var topics: [BridgeTopic]
    /// Queue kept for the remote while it is unreachable (bytes of topic and payload).
    public var storeMaximumBytes: Int
    /// Queued messages older than this are dropped instead of forwarded (seconds); nil keeps them.
    public var storeMaximumAge: Int?
    /// Bytes per second written to the remote (nil: unlimited).
    public var maximumBytesPerSecond: Int?
    /// QoS 1 messages in flight towards the remote at most (its Receive Maximum may lower it).
    public var maximumInflight: Int
    public var keepAlive: UInt16
    public var connectTimeout: TimeAmount

    public init(
        name: String, remotes: [Remote], protocolVersion: ProtocolVersion = .v5, clientID: String, username: String? = nil,
        password: String? = nil, tls: TLS = .init(), upwardOnly: Bool = true, topics: [BridgeTopic],
        storeMaximumBytes: Int = Self.defaultStoreBytes, storeMaximumAge: Int? = nil, maximumBytesPerSecond: Int? = nil,
        maximumInflight: Int = Self.defaultInflight, keepAlive: UInt16 = 60, connectTimeout: TimeAmount = .seconds(10)
    ) {
        self.name = name
        self.remotes = remotes
        self.protocolVersion = protocolVersion
        self.clientID = clientID
        self.username = username
        self.password = password
        self.tls = tls
        self.upwardOnly = upwardOnly
        self.topics = topics
        self.storeMaximumBytes = storeMaximumBytes
        self.storeMaximumAge = storeMaximumAge
        self.maximumBytesPerSecond = maximumBytesPerSecond
        self.maximumInflight = maximumInflight
        self.keepAlive = keepAlive
        self.connectTimeout = connectTimeout
    }

    public static let defaultStoreBytes = 256 * 1024 * 1024
    public static let defaultInflight = 100

    /// The client id of the bridge's own session on this broker. `$` cannot start a client id
    /// any listener accepts for this prefix, so no client can claim or take over the session.
    public var localClientID: String { Self.localClientIDPrefix + name }
    public static let localClientIDPrefix = "$bridge/"

    public var outTopics: [BridgeTopic] { topics.filter { $0.direction.sendsOut } }
    public var inTopics: [BridgeTopic] { upwardOnly ? [] : topics.filter { $0.direction.bringsIn } }
}
