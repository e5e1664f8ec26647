import NIOCore

/// PINGREQ and PINGRESP (spec 3.12, 3.13) are a fixed header alone: `MQTTPacket` carries them as
/// cases without a struct, and decoding only checks that the body is empty.
enum PingPacket {
    static func decode(_ type: PacketType, from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> MQTTPacket {
        guard buffer.readableBytes == 0 else { throw .malformedPacket("\(type) with a body") }
        return type == .pingreq ? .pingreq : .pingresp
    }
}
