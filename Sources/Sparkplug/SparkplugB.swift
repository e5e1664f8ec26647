import SwiftProtobuf

/// Short names for the types generated from Eclipse Tahu's `sparkplug_b.proto`.
public enum SparkplugB {
    public typealias Payload = Org_Eclipse_Tahu_Protobuf_Payload
    public typealias Metric = Org_Eclipse_Tahu_Protobuf_Payload.Metric
    public typealias DataType = Org_Eclipse_Tahu_Protobuf_DataType
}
