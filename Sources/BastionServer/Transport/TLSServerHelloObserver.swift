import NIOCore

/// NIOSSL does not expose the negotiated cipher suite, but the ServerHello that carries it is sent in
/// the clear in every TLS version. This handler sits between the socket and `NIOSSLServerHandler`,
/// reads the cipher suite out of the first outbound handshake record, and then only forwards.
final class TLSServerHelloObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let onCipherSuite: (UInt16) -> Void
    private var done = false

    init(onCipherSuite: @escaping (UInt16) -> Void) {
        self.onCipherSuite = onCipherSuite
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !done {
            done = true
            if let suite = TLSServerHello.cipherSuite(in: unwrapOutboundIn(data)) {
                onCipherSuite(suite)
            }
        }
        context.write(data, promise: promise)
    }
}

/// Pure parsing of the fields we need from a TLS ServerHello (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3).
enum TLSServerHello {
    /// The cipher suite of a ServerHello at the start of `buffer`, or nil if it is not one.
    static func cipherSuite(in buffer: ByteBuffer) -> UInt16? {
        var b = buffer
        // Record header: type 22 (handshake), version, length.
        guard b.readInteger(as: UInt8.self) == 22,
            b.readInteger(as: UInt16.self) != nil,
            let recordLength = b.readInteger(as: UInt16.self),
            var record = b.readSlice(length: Int(recordLength))
        else { return nil }
        // Handshake header: type 2 (server_hello), 24-bit length.
        guard record.readInteger(as: UInt8.self) == 2,
            record.readBytes(length: 3) != nil,
            record.readInteger(as: UInt16.self) != nil,  // legacy_version
            record.readBytes(length: 32) != nil,  // random
            let sessionIDLength = record.readInteger(as: UInt8.self),
            record.readBytes(length: Int(sessionIDLength)) != nil
        else { return nil }
        return record.readInteger(as: UInt16.self)
    }

    /// IANA names of the suites a Bastion listener can negotiate; others print as hex.
    static func name(of suite: UInt16) -> String {
        switch suite {
        case 0x1301: return "TLS_AES_128_GCM_SHA256"
        case 0x1302: return "TLS_AES_256_GCM_SHA384"
        case 0x1303: return "TLS_CHACHA20_POLY1305_SHA256"
        case 0xC02B: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xC02C: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xC02F: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xC030: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xCCA8: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xCCA9: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        default:
            let hex = String(suite, radix: 16, uppercase: true)
            return "0x" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        }
    }
}
