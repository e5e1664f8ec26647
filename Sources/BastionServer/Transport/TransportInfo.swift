import BastionSecurity
import NIOCore

/// What the transport learned about a connection before MQTT starts: the MQTT handler reads it for
/// authentication (certificate identity), authorization and audit.
public struct TransportInfo: Sendable, Hashable {
    /// How the bytes actually travel; differs from the listener's scheme when ALPN switched a TLS
    /// listener to WebSocket (or back).
    public enum Transport: String, Sendable, Hashable {
        case mqtt, mqtts, ws, wss
    }

    public var listenerName: String
    public var listener: ListenerURL
    public var transport: Transport
    /// `127.0.0.1:53211`, `[::1]:53211`, or `unknown`.
    public var remoteAddress: String
    /// `TLSv1.2` / `TLSv1.3`; nil on plaintext.
    public var tlsVersion: String?
    /// IANA name, e.g. `TLS_AES_128_GCM_SHA256`; nil on plaintext.
    public var cipherSuite: String?
    public var alpn: String?
    /// The verified client certificate, if the client presented one.
    public var clientCertificate: ClientCertificateInfo?
    /// Rules the MQTT layer enforces for this listener (client id match, two-factor).
    public var certificateRequirements: ClientCertificateRequirements

    public init(
        listenerName: String,
        listener: ListenerURL,
        transport: Transport,
        remoteAddress: String,
        tlsVersion: String? = nil,
        cipherSuite: String? = nil,
        alpn: String? = nil,
        clientCertificate: ClientCertificateInfo? = nil,
        certificateRequirements: ClientCertificateRequirements = ClientCertificateRequirements()
    ) {
        self.listenerName = listenerName
        self.listener = listener
        self.transport = transport
        self.remoteAddress = remoteAddress
        self.tlsVersion = tlsVersion
        self.cipherSuite = cipherSuite
        self.alpn = alpn
        self.clientCertificate = clientCertificate
        self.certificateRequirements = certificateRequirements
    }

    public var isSecure: Bool { transport == .mqtts || transport == .wss }
    /// The user name the authorization layer sees for a certificate-authenticated client.
    public var certificateIdentity: String? { clientCertificate?.identity }
    public var certificateSerial: String? { clientCertificate?.serialNumber }
    public var certificateFingerprint: String? { clientCertificate?.fingerprintSHA256 }
    public var certificateSubject: String? { clientCertificate?.subject }
}

/// A connection the transport refused before MQTT started, for audit records and metrics. The same
/// facts are logged; this is the structured copy.
public struct TransportRejection: Sendable, Hashable {
    public var listenerName: String
    public var remoteAddress: String
    /// Stable code: a `ClientCertificateRejection.code`, `protocol_version`, `not_tls`,
    /// `no_shared_cipher`, `handshake_timeout`, `websocket_refused`, …
    public var reason: String
    public var detail: String
    /// A certificate was presented (or required) and refused, as opposed to protocol noise.
    public var isCertificateProblem: Bool

    public init(listenerName: String, remoteAddress: String, reason: String, detail: String, isCertificateProblem: Bool) {
        self.listenerName = listenerName
        self.remoteAddress = remoteAddress
        self.reason = reason
        self.detail = detail
        self.isCertificateProblem = isCertificateProblem
    }
}

extension SocketAddress {
    /// `host:port` with IPv6 in brackets, for logs and audit.
    var bastionDescription: String {
        guard let ip = ipAddress else { return pathname ?? "unknown" }
        let port = self.port ?? 0
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}

func remoteAddressString(of channel: any Channel) -> String {
    channel.remoteAddress?.bastionDescription ?? "unknown"
}
