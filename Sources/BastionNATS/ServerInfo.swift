/// The server's INFO: sent on connect and again when the cluster changes or the server enters lame
/// duck mode.
public struct NATSServerInfo: Sendable, Hashable, Decodable {
    public var serverID: String
    public var serverName: String
    public var version: String
    public var proto: Int
    public var host: String
    public var port: Int
    public var headers: Bool
    public var maxPayload: Int
    public var authRequired: Bool
    public var tlsRequired: Bool
    public var tlsAvailable: Bool
    public var connectURLs: [String]
    public var lameDuckMode: Bool
    public var nonce: String?
    public var jetStream: Bool
    public var clientID: UInt64?
    public var cluster: String?
    public var domain: String?

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, proto, host, port, headers
        case maxPayload = "max_payload", authRequired = "auth_required", tlsRequired = "tls_required"
        case tlsAvailable = "tls_available", connectURLs = "connect_urls", lameDuckMode = "ldm", nonce
        case jetStream = "jetstream", clientID = "client_id", cluster, domain
    }

    public init(serverID: String = "", maxPayload: Int = 1_048_576, authRequired: Bool = false,
                tlsRequired: Bool = false, nonce: String? = nil, connectURLs: [String] = []) {
        self.serverID = serverID
        serverName = ""
        version = ""
        proto = 1
        host = ""
        port = 0
        headers = true
        self.maxPayload = maxPayload
        self.authRequired = authRequired
        self.tlsRequired = tlsRequired
        tlsAvailable = false
        self.connectURLs = connectURLs
        lameDuckMode = false
        self.nonce = nonce
        jetStream = false
        clientID = nil
        cluster = nil
        domain = nil
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName) ?? ""
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        proto = try c.decodeIfPresent(Int.self, forKey: .proto) ?? 0
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? ""
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? 0
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? 1_048_576
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) ?? false
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        tlsAvailable = try c.decodeIfPresent(Bool.self, forKey: .tlsAvailable) ?? false
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        lameDuckMode = try c.decodeIfPresent(Bool.self, forKey: .lameDuckMode) ?? false
        nonce = try c.decodeIfPresent(String.self, forKey: .nonce)
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
        clientID = try c.decodeIfPresent(UInt64.self, forKey: .clientID)
        cluster = try c.decodeIfPresent(String.self, forKey: .cluster)
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
    }
}
