import NIOCore

/// Primitive data types of spec 1.5, read with explicit bounds checks: a declared length is never
/// trusted beyond the bytes of the packet being decoded.
extension ByteBuffer {
    
    mutating func readMQTTByte(_ what: StaticString) throws(MQTTDecodeError) -> UInt8 {
        guard let value = readInteger(as: UInt8.self) else { throw .malformedPacket("truncated \(what)") }
        return value
    }

    
    mutating func readMQTTUInt16(_ what: StaticString) throws(MQTTDecodeError) -> UInt16 {
        guard let value = readInteger(endianness: .big, as: UInt16.self) else { throw .malformedPacket("truncated \(what)") }
        return value
    }

    
    mutating func readMQTTUInt32(_ what: StaticString) throws(MQTTDecodeError) -> UInt32 {
        guard let value = readInteger(endianness: .big, as: UInt32.self) else { throw .malformedPacket("truncated \(what)") }
        return value
    }

    /// Binary Data (spec 1.5.6): two-byte length then bytes, returned as a slice (no copy).
    
    mutating func readMQTTBinary(_ what: StaticString) throws(MQTTDecodeError) -> ByteBuffer {
        let length = Int(try readMQTTUInt16(what))
        guard let slice = readSlice(length: length) else { throw .malformedPacket("\(what) longer than packet") }
        return slice
    }

    /// UTF-8 Encoded String (spec 1.5.4): must be well formed and must not contain U+0000.
    
    mutating func readMQTTString(_ what: StaticString) throws(MQTTDecodeError) -> String {
        let length = Int(try readMQTTUInt16(what))
        guard length <= readableBytes else { throw .malformedPacket("\(what) longer than packet") }
        let string = try MQTTString.validate(self, at: readerIndex, length: length, what)
        moveReaderIndex(forwardBy: length)
        return string
    }

    
    /// Writes at most 65535 bytes (see `MQTTString.wireLength`), so the prefix always matches.
    mutating func writeMQTTString(_ string: String) {
        let length = MQTTString.wireLength(string)
        writeInteger(UInt16(length), endianness: .big)
        if length == string.utf8.count {
            writeString(string)
        } else {
            writeBytes(string.utf8.prefix(length))
        }
    }

    /// Writes at most 65535 bytes, the most a two-byte length can announce.
    mutating func writeMQTTBinary(_ bytes: ByteBuffer) {
        let length = min(bytes.readableBytes, MQTTString.maximumLength)
        writeInteger(UInt16(length), endianness: .big)
        writeImmutableBuffer(bytes.getSlice(at: bytes.readerIndex, length: length) ?? ByteBuffer())
    }
}

public enum MQTTString {
    /// Validates MQTT's UTF-8 rules and returns the string. Swift's validating initialiser rejects
    /// overlong forms and surrogates (spec 1.5.4: MUST NOT include U+D800..U+DFFF).
    
    static func validate(_ buffer: ByteBuffer, at index: Int, length: Int, _ what: StaticString) throws(MQTTDecodeError) -> String {
        let result: String? = buffer.withUnsafeReadableBytes { raw in
            let start = index - buffer.readerIndex
            let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
            if bytes.contains(0) { return nil }
            return String(validating: bytes, as: UTF8.self)
        }
        guard let result else { throw .malformedPacket("\(what) is not valid UTF-8 or contains U+0000") }
        return result
    }

    /// The most bytes a two-byte length prefix can announce.
    static let maximumLength = 65535

    /// Byte length of a string on the wire, prefix included.
    public static func encodedSize(_ string: String) -> Int { 2 + wireLength(string) }

    /// Byte length of Binary Data on the wire, prefix included.
    static func encodedSize(_ bytes: ByteBuffer) -> Int { 2 + min(bytes.readableBytes, maximumLength) }

    /// How many of the string's UTF-8 bytes go on the wire. Every decoded string fits; a longer one
    /// the server built itself (a reason string quoting a long client id) is cut at the last code
    /// point that fits, so the packet stays well formed instead of announcing a wrong length.
    static func wireLength(_ string: String) -> Int {
        let utf8 = string.utf8
        guard utf8.count > maximumLength else { return utf8.count }
        var end = utf8.index(utf8.startIndex, offsetBy: maximumLength)
        // Step back off continuation bytes (10xxxxxx) to the start of the code point cut in two.
        while end > utf8.startIndex, utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return utf8.distance(from: utf8.startIndex, to: end)
    }

    /// A client's string must fit the two-byte length prefix.
    
    public static func fits(_ string: String) -> Bool { string.utf8.count <= 65535 }
}
