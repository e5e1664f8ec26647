extension SparkplugObservation {
    /// What the inventory learns from a message on `topic`: births and deaths are decoded (metric
    /// count, bdSeq, seq), data messages only have their top-level `seq` read, commands tell it
    /// nothing. A payload that does not decode gives no observation and its error; the message is
    /// still forwarded by the caller.
    public static func from(_ topic: SparkplugEdgeTopic, payload: UnsafeBufferPointer<UInt8>, at: SparkplugMilliseconds,
                            byWill: Bool, limits: SparkplugDecodeLimits = SparkplugDecodeLimits()) -> Result<SparkplugObservation?, SparkplugPayloadError> {
        let group = topic.groupID, edge = topic.edgeNodeID
        switch topic.messageType {
        case .ncmd, .dcmd:
            return .success(nil)
        case .ndata, .ddata:
            guard case .wellFormed(let seq) = ProtobufWire.lastVarint(SparkplugWire.seqField, in: payload) else {
                return .failure(.malformed)
            }
            if let device = topic.deviceID {
                return .success(.ddata(group: group, edge: edge, device: device, seq: seq, at: at))
            }
            return .success(.ndata(group: group, edge: edge, seq: seq, at: at))
        case .nbirth, .ndeath, .dbirth, .ddeath:
            let summary: SparkplugPayloadSummary
            switch SparkplugPayloadSummary.decode(payload, limits: limits) {
            case .success(let decoded): summary = decoded
            case .failure(let error): return .failure(error)
            }
            switch topic.messageType {
            case .nbirth:
                return .success(.nbirth(group: group, edge: edge, bdSeq: summary.bdSeq, metricCount: summary.metricCount,
                                        seq: summary.seq, at: at))
            case .ndeath:
                return .success(.ndeath(group: group, edge: edge, bdSeq: summary.bdSeq, at: at, byWill: byWill))
            case .dbirth:
                return .success(.dbirth(group: group, edge: edge, device: topic.deviceID ?? "", metricCount: summary.metricCount,
                                        seq: summary.seq, at: at))
            default:
                return .success(.ddeath(group: group, edge: edge, device: topic.deviceID ?? "", seq: summary.seq, at: at))
            }
        }
    }
}
