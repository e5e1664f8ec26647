import NIOCore

/// The 1–4 byte little-endian base-128 integer used for remaining length, property length and
/// subscription identifiers (spec 1.5.5).
public enum VariableByteInteger {
    public static let maximum = 268_435_455

    public enum ReadResult: Equatable {
        case value(Int, byteCount: Int)
        case needMoreBytes
    }

    /// Reads without consuming, so a partial fixed header can wait for more bytes.
    @inlinable
    public static func peek(_ buffer: ByteBuffer, at offset: Int) throws(MQTTDecodeError) -> ReadResult {
        var value = 0
        var multiplier = 1
        for i in 0..<4 {
            guard let byte = buffer.getInteger(at: buffer.readerIndex + offset + i, as: UInt8.self) else {
                return .needMoreBytes
            }
            value += Int(byte & 0x7F) * multiplier
            if byte & 0x80 == 0 {
                // A longer encoding than needed is not an error in the spec, but a zero continuation
                // byte after the first ("0x80 0x00") is non-minimal; spec 1.5.5 only requires the
                // minimum number of bytes for the sender, so accept it like Mosquitto does.
                return .value(value, byteCount: i + 1)
            }
            multiplier *= 128
        }
        throw .malformedPacket("variable byte integer longer than 4 bytes")
    }

    @inlinable
    public static func read(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Int {
        switch try peek(buffer, at: 0) {
        case .value(let value, let count):
            buffer.moveReaderIndex(forwardBy: count)
            return value
        case .needMoreBytes:
            throw .malformedPacket("truncated variable byte integer")
        }
    }

    @inlinable
    public static func size(of value: Int) -> Int {
        switch value {
        case ..<128: 1
        case ..<16_384: 2
        case ..<2_097_152: 3
        default: 4
        }
    }

    @inlinable
    @discardableResult
    public static func write(_ value: Int, to buffer: inout ByteBuffer) -> Int {
        precondition(value >= 0 && value <= maximum, "variable byte integer out of range")
        var remaining = value
        var written = 0
        repeat {
            var byte = UInt8(remaining & 0x7F)
            remaining >>= 7
            if remaining > 0 { byte |= 0x80 }
            buffer.writeInteger(byte)
            written += 1
        } while remaining > 0
        return written
    }
}
