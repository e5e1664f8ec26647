/// Limits the decoder enforces before it allocates anything for a packet.
public struct DecoderLimits: Sendable, Hashable {
    // Narrow storage: every connection's decoder holds a copy.
    private var packetLimit: UInt32
    private var topicLengthLimit: UInt32
    private var topicLevelsLimit: UInt32

    /// Largest whole packet (fixed header included) accepted, as in 5.0 Maximum Packet Size.
    public var maximumPacketSize: Int {
        get { Int(packetLimit) }
        set { packetLimit = UInt32(clamping: min(newValue, VariableByteInteger.maximum + 5)) }
    }
    /// Longest topic name or filter in bytes (the protocol allows 65535).
    public var maximumTopicLength: Int {
        get { Int(topicLengthLimit) }
        set { topicLengthLimit = UInt32(clamping: newValue) }
    }
    /// Most `/`-separated levels in a topic name or filter.
    public var maximumTopicLevels: Int {
        get { Int(topicLevelsLimit) }
        set { topicLevelsLimit = UInt32(clamping: newValue) }
    }

    public init(maximumPacketSize: Int = 256 * 1024, maximumTopicLength: Int = 65535, maximumTopicLevels: Int = 128) {
        packetLimit = UInt32(clamping: min(maximumPacketSize, VariableByteInteger.maximum + 5))
        topicLengthLimit = UInt32(clamping: maximumTopicLength)
        topicLevelsLimit = UInt32(clamping: maximumTopicLevels)
    }
}
