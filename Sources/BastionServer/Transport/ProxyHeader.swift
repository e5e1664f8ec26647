import NIOCore

/// The PROXY protocol header (HAProxy's specification, versions 1 and 2) that a load balancer or
/// TLS terminator sends before the client's bytes, naming the client's real address.
public enum ProxyHeader: Sendable, Equatable {
    /// The proxy speaks for itself (v2 LOCAL, e.g. a health check; v1 UNKNOWN): use the socket's
    /// own address.
    case local
    /// The connection is relayed for a client at this address.
    case proxied(SocketAddress)

    /// v2's 12-byte signature.
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// v1's longest line, CRLF included (spec 2.1).
    static let maximumV1Length = 107
    /// The largest v2 header accepted (16-byte prefix and addresses plus TLVs): enough for what
    /// load balancers send; anything larger is refused rather than buffered.
    public static let maximumV2Length = 1024

    /// Whether a stream starting with `byte` carries a PROXY header: "P" for v1, CR for v2. Neither
    /// can start an MQTT stream (CONNECT is 0x10), so a header is never mistaken for MQTT.
    static func mayStart(with byte: UInt8) -> Bool {
        byte == UInt8(ascii: "P") || byte == 0x0D
    }
}

public enum ProxyHeaderError: Error, Equatable, CustomStringConvertible {
    case notAHeader
    case malformed(String)
    case tooLong

    public var description: String {
        switch self {
        case .notAHeader: "not a PROXY protocol header"
        case .malformed(let why): "malformed PROXY header: \(why)"
        case .tooLong: "PROXY header too long"
        }
    }
}

/// Parses a PROXY header from the start of a stream: nil until it is complete, then the header
/// (the buffer's reader index moves past it). Pure: no IO, so it is unit-tested and fuzzed.
public enum ProxyHeaderParser {
    public static func parse(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        switch first {
        case UInt8(ascii: "P"): return try parseV1(&buffer)
        case 0x0D: return try parseV2(&buffer)
        default: throw .notAHeader
        }
    }

    private static func parseV1(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        let view = buffer.readableBytesView
        let prefix = Array("PROXY ".utf8)
        let checked = min(view.count, prefix.count)
        guard view.prefix(checked).elementsEqual(prefix.prefix(checked)) else { throw .notAHeader }
        guard let lf = view.firstIndex(of: 0x0A) else {
            if view.count >= ProxyHeader.maximumV1Length { throw .tooLong }
            return nil
        }
        let length = lf - view.startIndex + 1
        guard length <= ProxyHeader.maximumV1Length else { throw .tooLong }
        guard length >= 2, view[lf - 1] == 0x0D else { throw .malformed("line does not end with CRLF") }
        let line = view[view.startIndex..<(lf - 1)]
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { throw .malformed("non-ASCII byte") }
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        buffer.moveReaderIndex(forwardBy: length)
        guard fields.count >= 2, fields[0] == "PROXY" else { throw .malformed("no PROXY keyword") }
        switch fields[1] {
        case "UNKNOWN":
            return .local
        case "TCP4", "TCP6":
            guard fields.count == 6 else { throw .malformed("expected 6 fields, found \(fields.count)") }
            let wantsV6 = fields[1] == "TCP6"
            guard let source = address(fields[2], port: fields[4], ipv6: wantsV6),
                  address(fields[3], port: fields[5], ipv6: wantsV6) != nil else {
                throw .malformed("bad address or port")
            }
            return .proxied(source)
        default:
            throw .malformed("unknown protocol \(fields[1])")
        }
    }

    /// A v1 address and port: dotted-quad or IPv6 text as the protocol says, decimal port without
    /// leading zeros.
    private static func address(_ ip: String, port text: String, ipv6: Bool) -> SocketAddress? {
        guard let port = UInt16(text), String(port) == text, ip.contains(":") == ipv6 else { return nil }
        return try? SocketAddress(ipAddress: ip, port: Int(port))
    }

    private static func parseV2(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        let view = buffer.readableBytesView
        let checked = min(view.count, ProxyHeader.signature.count)
        guard view.prefix(checked).elementsEqual(ProxyHeader.signature.prefix(checked)) else { throw .notAHeader }
        guard view.count >= 16 else { return nil }
        let start = buffer.readerIndex
        let versionCommand = buffer.getInteger(at: start + 12, as: UInt8.self)!
        let family = buffer.getInteger(at: start + 13, as: UInt8.self)!
        let length = Int(buffer.getInteger(at: start + 14, as: UInt16.self)!)
        guard versionCommand >> 4 == 2 else { throw .malformed("version \(versionCommand >> 4)") }
        guard 16 + length <= ProxyHeader.maximumV2Length else { throw .tooLong }
        guard view.count >= 16 + length else { return nil }
        let command = versionCommand & 0x0F
        // Consumed whatever follows: the addresses are read from the bytes just checked.
        defer { buffer.moveReaderIndex(forwardBy: 16 + length) }
        switch command {
        case 0x0:
            // LOCAL: addresses (if any) are to be ignored.
            return .local
        case 0x1:
            break
        default:
            throw .malformed("command \(command)")
        }
        let body = start + 16
        switch family {
        case 0x11:  // TCP over IPv4
            guard length >= 12, let bytes = buffer.getBytes(at: body, length: 4), let port = buffer.getInteger(at: body + 8, as: UInt16.self) else {
                throw .malformed("IPv4 addresses truncated")
            }
            return .proxied(try socketAddress(bytes, port: port))
        case 0x21:  // TCP over IPv6
            guard length >= 36, let bytes = buffer.getBytes(at: body, length: 16), let port = buffer.getInteger(at: body + 32, as: UInt16.self) else {
                throw .malformed("IPv6 addresses truncated")
            }
            return .proxied(try socketAddress(bytes, port: port))
        case 0x00:
            // UNSPEC with PROXY: the proxy does not know the source; use the socket's address.
            return .local
        default:
            throw .malformed("unsupported address family 0x\(String(family, radix: 16))")
        }
    }

    private static func socketAddress(_ bytes: [UInt8], port: UInt16) throws(ProxyHeaderError) -> SocketAddress {
        let text: String
        if bytes.count == 4 {
            text = bytes.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        do {
            return try SocketAddress(ipAddress: text, port: Int(port))
        } catch {
            throw .malformed("bad address \(text)")
        }
    }
}
