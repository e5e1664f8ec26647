/// The inventory at one moment, for the admin API (JSON) and `$SYS`. Times are milliseconds since
/// the Unix epoch as observed by the server; lists are sorted by id.
public struct SparkplugInventorySnapshot: Sendable, Hashable, Codable {
    public struct Group: Sendable, Hashable, Codable {
        public var id: String
        public var edgeNodes: [EdgeNode]
    }

    public struct EdgeNode: Sendable, Hashable, Codable {
        public var id: String
        public var online: Bool
        /// From the latest NBIRTH.
        public var bdSeq: UInt64?
        public var metricCount: Int
        public var lastBirthAt: SparkplugMilliseconds?
        public var lastDeathAt: SparkplugMilliseconds?
        public var lastDeathCause: SparkplugDeathCause?
        public var devices: [Device]
    }

    public struct Device: Sendable, Hashable, Codable {
        public var id: String
        /// False after a DDEATH, and from the edge node's death or rebirth until the next DBIRTH.
        public var online: Bool
        public var metricCount: Int
        public var lastBirthAt: SparkplugMilliseconds?
        public var lastDeathAt: SparkplugMilliseconds?
    }

    public struct HostApplication: Sendable, Hashable, Codable {
        public var id: String
        public var online: Bool
        /// When the latest STATE was observed.
        public var lastStateAt: SparkplugMilliseconds
        /// The timestamp in that STATE's payload.
        public var lastStateTimestamp: UInt64
    }

    public var groups: [Group]
    public var hostApplications: [HostApplication]
}
