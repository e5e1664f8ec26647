import NIOCore

/// Reads a PUBLISH topic name and checks it (UTF-8, no U+0000, no wildcards, length and depth
/// limits) in one pass over its bytes. ASCII topics, the common case, need no general UTF-8
/// validation, and a topic equal to the previous one on the connection reuses that String.
struct TopicNameReader {
    private var previous = ""

    private enum Scan {
        case reuse
        case ascii(String)
        case invalid(MQTTDecodeError)
        case needsUTF8Validation
    }

    mutating func read(from buffer: inout ByteBuffer, limits: DecoderLimits, allowEmpty: Bool) throws(MQTTDecodeError) -> String {
        let length = Int(try buffer.readMQTTUInt16("topic name"))
        guard length <= buffer.readableBytes else { throw .malformedPacket("topic name longer than packet") }
        if length == 0 {
            guard allowEmpty else { throw .protocolError("empty topic name") }
            return ""
        }
        let previous = self.previous
        let scan: Scan = buffer.withUnsafeReadableBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<length])
            let same = previous.utf8.count == length && previous.utf8.withContiguousStorageIfAvailable {
                $0.elementsEqual(bytes)
            } == true
            if same { return .reuse }
            var ascii = true
            var levels = 1
            for byte in bytes {
                switch byte {
                case 0: return .invalid(.malformedPacket("topic name contains U+0000"))
                case UInt8(ascii: "+"), UInt8(ascii: "#"): return .invalid(.topicNameInvalid("wildcard in topic name"))
                case UInt8(ascii: "/"): levels += 1
                case 0x80...: ascii = false
                default: break
                }
            }
            guard length <= limits.maximumTopicLength else {
                return .invalid(.topicNameInvalid("topic longer than \(limits.maximumTopicLength) bytes"))
            }
            guard levels <= limits.maximumTopicLevels else {
                return .invalid(.topicNameInvalid("topic deeper than \(limits.maximumTopicLevels) levels"))
            }
            return ascii ? .ascii(String(decoding: bytes, as: UTF8.self)) : .needsUTF8Validation
        }
        let topic: String
        switch scan {
        case .reuse:
            buffer.moveReaderIndex(forwardBy: length)
            return previous
        case .ascii(let string):
            buffer.moveReaderIndex(forwardBy: length)
            topic = string
        case .invalid(let error):
            throw error
        case .needsUTF8Validation:
            topic = try MQTTString.validate(buffer, at: buffer.readerIndex, length: length, "topic name")
            buffer.moveReaderIndex(forwardBy: length)
        }
        self.previous = topic
        return topic
    }
}
