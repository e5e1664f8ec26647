import Foundation
import NIOCore

/// The CONNECT options. Encoded as the JSON the server expects; nil fields are left out.
public struct NATSConnectOptions: Sendable, Hashable, Encodable {
    public var verbose = false
    public var pedantic = false
    public var tlsRequired: Bool
    public var name: String?
    public var lang = "swift"
    public var version = NATSConnectOptions.clientVersion
    public var `protocol` = 1
    public var echo = true
    public var headers = true
    public var noResponders = true
    public var user: String?
    public var pass: String?
    public var authToken: String?
    public var nkey: String?
    public var sig: String?

    public static let clientVersion = "0.1.0"

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, tlsRequired = "tls_required", name, lang, version, `protocol`, echo, headers
        case noResponders = "no_responders", user, pass, authToken = "auth_token", nkey, sig
    }

    public init(tlsRequired: Bool = false, name: String? = nil) {
        self.tlsRequired = tlsRequired
        self.name = name
    }
}

/// Writes client → server operations. Every function validates what goes into the line before it
/// writes anything, so a failed call leaves the buffer untouched.
public enum NATSProtocolEncoder {
    public static func writeConnect(_ options: NATSConnectOptions, to buffer: inout ByteBuffer) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings, bools and ints cannot fail.
        let json = try! encoder.encode(options)
        buffer.writeStaticString("CONNECT ")
        buffer.writeBytes(json)
        buffer.writeStaticString("\r\n")
    }

    /// `PUB subject [reply] size` or, with headers, `HPUB subject [reply] hsize tsize`, then the
    /// payload. The payload is copied once, into `buffer`.
    public static func writePublish(subject: String, reply: String?, headers: NATSHeaders?, payload: ByteBuffer,
                                    to buffer: inout ByteBuffer) throws(NATSError) {
        try Subjects.validate(subject, as: .publish)
        if let reply { try Subjects.validate(reply, as: .reply) }
        if let headers, !headers.isEmpty {
            try HeaderCoding.validate(headers)
            let headerLength = HeaderCoding.encodedLength(headers)
            buffer.writeStaticString("HPUB ")
            buffer.writeString(subject)
            if let reply {
                buffer.writeStaticString(" ")
                buffer.writeString(reply)
            }
            buffer.writeStaticString(" ")
            writeDecimal(headerLength, to: &buffer)
            buffer.writeStaticString(" ")
            writeDecimal(headerLength + payload.readableBytes, to: &buffer)
            buffer.writeStaticString("\r\n")
            HeaderCoding.write(headers, to: &buffer)
        } else {
            buffer.writeStaticString("PUB ")
            buffer.writeString(subject)
            if let reply {
                buffer.writeStaticString(" ")
                buffer.writeString(reply)
            }
            buffer.writeStaticString(" ")
            writeDecimal(payload.readableBytes, to: &buffer)
            buffer.writeStaticString("\r\n")
        }
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }

    /// Upper bound of the bytes `writePublish` adds besides subject, reply and payload.
    static func publishOverhead(headers: NATSHeaders?) -> Int {
        48 + (headers.map(HeaderCoding.encodedLength) ?? 0)
    }

    public static func writeSubscribe(subject: String, queue: String?, sid: UInt64, to buffer: inout ByteBuffer) throws(NATSError) {
        try Subjects.validate(subject, as: .subscribe)
        if let queue { try Subjects.validateQueue(queue) }
        buffer.writeStaticString("SUB ")
        buffer.writeString(subject)
        if let queue {
            buffer.writeStaticString(" ")
            buffer.writeString(queue)
        }
        buffer.writeStaticString(" ")
        writeDecimal(sid, to: &buffer)
        buffer.writeStaticString("\r\n")
    }

    public static func writeUnsubscribe(sid: UInt64, max: Int? = nil, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("UNSUB ")
        writeDecimal(sid, to: &buffer)
        if let max {
            buffer.writeStaticString(" ")
            writeDecimal(max, to: &buffer)
        }
        buffer.writeStaticString("\r\n")
    }

    public static func writePing(to buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    public static func writePong(to buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }

    /// Decimal digits without going through String (no allocation).
    static func writeDecimal<T: BinaryInteger>(_ value: T, to buffer: inout ByteBuffer) {
        var v = UInt64(value)
        if v < 10 {
            buffer.writeInteger(UInt8(0x30 + v))
            return
        }
        var count = 0
        var scratch: UInt64 = v
        while scratch > 0 { scratch /= 10; count += 1 }
        let start = buffer.writerIndex
        buffer.writeRepeatingByte(0x30, count: count)
        var i = count - 1
        while v > 0 {
            buffer.setInteger(UInt8(0x30 + v % 10), at: start + i)
            v /= 10
            i -= 1
        }
    }
}
