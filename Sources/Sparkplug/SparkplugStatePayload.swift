#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON payload of a 3.0 STATE message: `{"online": true, "timestamp": 1700000000000}`.
public struct SparkplugStatePayload: Sendable, Hashable, Codable {
    public var online: Bool
    /// Milliseconds since the Unix epoch, set by the host application (the same in its birth and
    /// in the will registered at CONNECT).
    public var timestamp: UInt64

    public init(online: Bool, timestamp: UInt64) {
        self.online = online
        self.timestamp = timestamp
    }

    /// A STATE payload is two keys; anything much longer is not one.
    public static let maximumBytes = 4096

    /// Nil when the payload is not such JSON (or is longer than `maximumBytes`).
    public static func decode(_ bytes: some Collection<UInt8>) -> SparkplugStatePayload? {
        guard bytes.count <= maximumBytes else { return nil }
        return try? JSONDecoder().decode(SparkplugStatePayload.self, from: Data(bytes))
    }

    public func encoded() -> [UInt8] {
        Array(#"{"online":\#(online),"timestamp":\#(timestamp)}"#.utf8)
    }
}
