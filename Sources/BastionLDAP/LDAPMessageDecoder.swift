import NIOCore

/// Frames LDAP messages: reads the outer SEQUENCE tag and length, refuses a message larger than
/// `maximumMessageSize` from that header alone (before its body is buffered), then decodes it.
///
/// The outer length must be definite (RFC 4511 §5.1) and its length field at most four octets
/// long. Non-minimal length fields (`84 00 00 00 2a`) are accepted: Active Directory sends them.
public struct LDAPMessageDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = LDAPMessage

    public static let defaultMaximumMessageSize = 1024 * 1024

    public var maximumMessageSize: Int

    public init(maximumMessageSize: Int = LDAPMessageDecoder.defaultMaximumMessageSize) {
        self.maximumMessageSize = maximumMessageSize
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> LDAPMessage? {
        try Self.decode(bytes: &buffer, maximumMessageSize: maximumMessageSize)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> LDAPMessage? {
        try decode(buffer: &buffer)
    }

    /// Decodes one message from the front of `bytes`, consuming exactly its octets; nil (consuming
    /// nothing) while the message is incomplete. Pure and allocation-bounded by
    /// `maximumMessageSize`, so it doubles as a fuzz target.
    public static func decode(
        bytes: inout ByteBuffer, maximumMessageSize: Int = defaultMaximumMessageSize
    ) throws(LDAPDecodeError) -> LDAPMessage? {
        guard let total = try frameLength(bytes, maximumMessageSize: maximumMessageSize),
              let message = bytes.getBytes(at: bytes.readerIndex, length: total)
        else { return nil }
        let decoded = try LDAPMessage(berEncoded: message)
        bytes.moveReaderIndex(forwardBy: total)
        return decoded
    }

    /// The whole message's size (header included) once the header is readable and the body has
    /// arrived; nil while waiting. Throws as soon as the header shows the message is unacceptable.
    static func frameLength(_ bytes: ByteBuffer, maximumMessageSize: Int) throws(LDAPDecodeError) -> Int? {
        let start = bytes.readerIndex
        guard let tag = bytes.getInteger(at: start, as: UInt8.self) else { return nil }
        guard tag == 0x30 else {
            throw .malformedMessage("expected a SEQUENCE (0x30), found tag 0x\(String(tag, radix: 16))")
        }
        guard let first = bytes.getInteger(at: start + 1, as: UInt8.self) else { return nil }
        let headerLength: Int
        let bodyLength: Int
        switch first {
        case 0x00...0x7F:
            headerLength = 2
            bodyLength = Int(first)
        case 0x80:
            throw .malformedMessage("indefinite length")
        case 0x81...0x84:
            let count = Int(first & 0x7F)
            guard let lengthBytes = bytes.getBytes(at: start + 2, length: count) else { return nil }
            headerLength = 2 + count
            bodyLength = lengthBytes.reduce(0) { $0 << 8 | Int($1) }
        default:
            throw .malformedMessage("length field of \(first & 0x7F) octets")
        }
        let total = headerLength + bodyLength
        guard total <= maximumMessageSize else {
            throw .messageTooLarge(announced: total, maximum: maximumMessageSize)
        }
        return bytes.readableBytes >= total ? total : nil
    }
}

/// Writes each message's BER encoding.
public struct LDAPMessageEncoder: MessageToByteEncoder {
    public typealias OutboundIn = LDAPMessage

    public init() {}

    public func encode(data: LDAPMessage, out: inout ByteBuffer) throws {
        data.write(to: &out)
    }
}
