import Foundation
import SwiftProtobuf
@testable import Sparkplug

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

func metric(_ name: String?, long value: UInt64? = nil, double: Double? = nil, alias: UInt64? = nil) -> SparkplugB.Metric {
    var metric = SparkplugB.Metric()
    if let name { metric.name = name }
    if let alias { metric.alias = alias }
    if let value {
        metric.datatype = UInt32(SparkplugB.DataType.int64.rawValue)
        metric.longValue = value
    }
    if let double {
        metric.datatype = UInt32(SparkplugB.DataType.double.rawValue)
        metric.doubleValue = double
    }
    return metric
}

func payload(timestamp: UInt64? = nil, seq: UInt64? = nil, metrics: [SparkplugB.Metric] = []) -> SparkplugB.Payload {
    var payload = SparkplugB.Payload()
    if let timestamp { payload.timestamp = timestamp }
    if let seq { payload.seq = seq }
    payload.metrics = metrics
    return payload
}

func encoded(_ payload: SparkplugB.Payload) -> [UInt8] {
    try! payload.serializedBytes()
}

func decoded(_ bytes: [UInt8]) throws -> SparkplugB.Payload {
    try SparkplugB.Payload(serializedBytes: bytes)
}

/// Payloads published by a Python Sparkplug edge node (pysparkplug 0.6.1) through Mosquitto:
/// group G1, edge node E1, device D1.
enum PeerCapture {
    /// metrics temp (Double 21.5) and bdSeq (Int64 0), seq 0.
    static let nbirth = bytes(hex: "08859492dea33412180a0474656d7018c59392dea334200a69000000000080354012120a05626453657118c69392dea334200458001800")
    /// temp = 22.0, seq 1.
    static let ndata = bytes(hex: "08fa9b92dea33412180a0474656d7018fa9b92dea334200a6900000000000036401801")
    /// device D1, rpm (Int32 1200), seq 2.
    static let dbirth = bytes(hex: "08fb9b92dea33412110a0372706d18fb9b92dea334200350b0091802")
    /// The will, published by the broker when the edge node's connection dropped: its timestamp
    /// (1796299065798) is from CONNECT time, before the NBIRTH's.
    static let ndeathWill = bytes(hex: "08c69392dea33412120a05626453657118c69392dea33420045800")
    /// A will NDEATH without a timestamp (bdSeq 0), as mqtt-spb-wrapper 2.1.2 registers it.
    static let ndeathWithoutTimestamp = bytes(hex: "12120a0562645365711899db95dea33420045800")
}
