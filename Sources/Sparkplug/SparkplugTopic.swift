/// The message types an edge node or a host application publishes under `spBv1.0/{group}/…`
/// (Sparkplug 3.0 §4.1.2; STATE has its own topic form, `SparkplugTopic.state`).
public enum SparkplugMessageType: String, Sendable, Hashable, CaseIterable, Codable {
    case nbirth = "NBIRTH"
    case ndeath = "NDEATH"
    case ndata = "NDATA"
    case ncmd = "NCMD"
    case dbirth = "DBIRTH"
    case ddeath = "DDEATH"
    case ddata = "DDATA"
    case dcmd = "DCMD"

    /// DBIRTH, DDEATH, DDATA and DCMD topics end with a device id; the others must not.
    public var hasDeviceID: Bool {
        switch self {
        case .dbirth, .ddeath, .ddata, .dcmd: true
        case .nbirth, .ndeath, .ndata, .ncmd: false
        }
    }

    /// NCMD and DCMD: written by host applications, read by the edge node.
    public var isCommand: Bool { self == .ncmd || self == .dcmd }

    public var isBirth: Bool { self == .nbirth || self == .dbirth }

    /// Every message published by (or, for NDEATH, on behalf of) the edge node named in the topic.
    public var isFromEdgeNode: Bool { !isCommand }

    /// Spec 3.0: births, deaths, data and commands are published with retain false.
    public var retainRequirement: SparkplugRetainRequirement { .forbidden }

    /// Matches the message-type level of a topic without building a String.
    init?(level: UnsafeBufferPointer<UInt8>.SubSequence) {
        guard level.count >= 4, level.count <= 6 else { return nil }
        let node: Bool
        switch level.first {
        case UInt8(ascii: "N"): node = true
        case UInt8(ascii: "D"): node = false
        default: return nil
        }
        let rest = level.dropFirst()
        if rest.elementsEqual("BIRTH".utf8) {
            self = node ? .nbirth : .dbirth
        } else if rest.elementsEqual("DEATH".utf8) {
            self = node ? .ndeath : .ddeath
        } else if rest.elementsEqual("DATA".utf8) {
            self = node ? .ndata : .ddata
        } else if rest.elementsEqual("CMD".utf8) {
            self = node ? .ncmd : .dcmd
        } else {
            return nil
        }
    }
}

/// Whether the MQTT retain flag must be set on a Sparkplug publish.
public enum SparkplugRetainRequirement: String, Sendable, Hashable, Codable {
    /// STATE births and deaths (spec 3.0 §4.3.1: QoS 1, retained).
    case required
    /// Births, deaths, data and commands of edge nodes and devices.
    case forbidden
}

/// Sparkplug 3.0 identifier rules for group, edge node, device and host ids: a non-empty UTF-8
/// string without `/`, `+` or `#` (§4.1.1).
public enum SparkplugID {
    public static func isValid(_ id: some StringProtocol) -> Bool {
        var any = false
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "/"), UInt8(ascii: "+"), UInt8(ascii: "#"): return false
            default: any = true
            }
        }
        return any
    }
}

/// `spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]`.
public struct SparkplugEdgeTopic: Sendable, Hashable {
    public let messageType: SparkplugMessageType
    public let groupID: String
    public let edgeNodeID: String
    /// Present exactly for DBIRTH, DDEATH, DDATA and DCMD.
    public let deviceID: String?

    /// Nil when an id breaks the identifier rules or the device id is missing or extra.
    public init?(_ messageType: SparkplugMessageType, groupID: String, edgeNodeID: String, deviceID: String? = nil) {
        guard SparkplugID.isValid(groupID), SparkplugID.isValid(edgeNodeID),
              messageType.hasDeviceID == (deviceID != nil) else { return nil }
        if let deviceID, !SparkplugID.isValid(deviceID) { return nil }
        self.init(unchecked: messageType, groupID: groupID, edgeNodeID: edgeNodeID, deviceID: deviceID)
    }

    init(unchecked messageType: SparkplugMessageType, groupID: String, edgeNodeID: String, deviceID: String?) {
        self.messageType = messageType
        self.groupID = groupID
        self.edgeNodeID = edgeNodeID
        self.deviceID = deviceID
    }

    public var topicName: String {
        var topic = "\(SparkplugTopic.namespace)/\(groupID)/\(messageType.rawValue)/\(edgeNodeID)"
        if let deviceID { topic += "/\(deviceID)" }
        return topic
    }

    /// Where a Sparkplug Aware server keeps the latest NBIRTH or DBIRTH, retained
    /// (`$sparkplug/certificates/spBv1.0/{group}/NBIRTH/{edge}` and `…/DBIRTH/{edge}/{device}`);
    /// nil for other message types.
    public var certificateTopicName: String? {
        messageType.isBirth ? SparkplugTopic.certificatePrefix + topicName : nil
    }
}

/// A topic in the Sparkplug B namespace, or in the `$sparkplug/` namespace the server keeps for
/// itself.
public enum SparkplugTopic: Sendable, Hashable {
    /// A birth, death, data or command topic of an edge node or device.
    case edge(SparkplugEdgeTopic)
    /// `spBv1.0/STATE/{host_id}`: a host application's birth and death (3.0 form).
    case state(hostID: String)
    /// `$sparkplug/certificates/spBv1.0/…/NBIRTH|DBIRTH/…`: a stored birth certificate.
    case certificate(SparkplugEdgeTopic)
    /// Any other topic under `$sparkplug/` (published only by the server itself).
    case serverNamespace

    public static let namespace = "spBv1.0"
    public static let certificatePrefix = "$sparkplug/certificates/"
    static let stateLevel = "STATE"

    /// Nil for topics outside both namespaces and for malformed Sparkplug topics.
    public init?(_ topicName: String) {
        guard case .sparkplug(let topic) = Self.classify(topicName) else { return nil }
        self = topic
    }

    /// Topics that begin with neither `s` nor `$` are answered from their first byte; other native
    /// Strings are walked in place, so only a Sparkplug topic's id Strings are allocated.
    public static func classify(_ topicName: String) -> SparkplugTopicClassification {
        let utf8 = topicName.utf8
        guard let first = utf8.first, first == UInt8(ascii: "s") || first == UInt8(ascii: "$") else {
            return .notSparkplug
        }
        if let result = utf8.withContiguousStorageIfAvailable({ classify(bytes: $0) }) {
            return result
        }
        return Array(utf8).withUnsafeBufferPointer { classify(bytes: $0) }
    }

    /// The topic this value was parsed from; `.serverNamespace` keeps no topic and gives the
    /// namespace root, `$sparkplug`.
    public var topicName: String {
        switch self {
        case .edge(let topic): topic.topicName
        case .state(let hostID): "\(Self.namespace)/\(Self.stateLevel)/\(hostID)"
        case .certificate(let topic): Self.certificatePrefix + topic.topicName
        case .serverNamespace: "$sparkplug"
        }
    }

    /// `spBv1.0/STATE/{host_id}`; nil when the host id breaks the identifier rules.
    public static func stateTopicName(hostID: String) -> String? {
        SparkplugID.isValid(hostID) ? SparkplugTopic.state(hostID: hostID).topicName : nil
    }

    private static func classify(bytes: UnsafeBufferPointer<UInt8>) -> SparkplugTopicClassification {
        var levels = LevelCursor(bytes)
        guard let root = levels.next() else { return .notSparkplug }
        if root.elementsEqual(namespace.utf8) {
            return classifyNamespace(&levels)
        }
        if root.elementsEqual("$sparkplug".utf8) {
            // Everything under `$sparkplug/` is the server's, malformed or not.
            var certificate = levels
            guard let second = certificate.next(), second.elementsEqual("certificates".utf8),
                  let third = certificate.next(), third.elementsEqual(namespace.utf8),
                  case .sparkplug(.edge(let birth)) = classifyNamespace(&certificate), birth.messageType.isBirth else {
                return .sparkplug(.serverNamespace)
            }
            return .sparkplug(.certificate(birth))
        }
        return .notSparkplug
    }

    /// The levels after `spBv1.0`.
    private static func classifyNamespace(_ levels: inout LevelCursor) -> SparkplugTopicClassification {
        guard let group = levels.next() else { return .malformed(.tooFewLevels) }
        guard let second = levels.next() else { return .malformed(.tooFewLevels) }
        if group.elementsEqual(stateLevel.utf8) {
            // A group named STATE would collide with the host namespace, so every
            // `spBv1.0/STATE/…` topic is read as a STATE topic.
            guard levels.next() == nil else { return .malformed(.tooManyLevels) }
            guard isValidID(second) else { return .malformed(.invalidID) }
            return .sparkplug(.state(hostID: string(second)))
        }
        guard let type = SparkplugMessageType(level: second) else { return .malformed(.unknownMessageType) }
        guard let edge = levels.next() else { return .malformed(.tooFewLevels) }
        let device = levels.next()
        guard levels.next() == nil else { return .malformed(.tooManyLevels) }
        if type.hasDeviceID, device == nil { return .malformed(.tooFewLevels) }
        if !type.hasDeviceID, device != nil { return .malformed(.tooManyLevels) }
        guard isValidID(group), isValidID(edge) else { return .malformed(.invalidID) }
        if let device, !isValidID(device) { return .malformed(.invalidID) }
        return .sparkplug(.edge(SparkplugEdgeTopic(unchecked: type, groupID: string(group), edgeNodeID: string(edge),
                                                   deviceID: device.map(string))))
    }

    /// Levels never contain `/` (they were split on it).
    private static func isValidID(_ level: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        !level.isEmpty && !level.contains(UInt8(ascii: "+")) && !level.contains(UInt8(ascii: "#"))
    }

    /// The topic was a valid String and a level is split at ASCII `/`, so it is whole UTF-8.
    private static func string(_ level: UnsafeBufferPointer<UInt8>.SubSequence) -> String {
        String(decoding: level, as: UTF8.self)
    }
}

public enum SparkplugTopicClassification: Sendable, Hashable {
    /// Outside `spBv1.0/` and `$sparkplug/`.
    case notSparkplug
    case sparkplug(SparkplugTopic)
    /// Under `spBv1.0/` but not a topic the specification defines.
    case malformed(SparkplugTopicError)
}

public enum SparkplugTopicError: Error, Sendable, Hashable, CustomStringConvertible {
    case tooFewLevels
    case tooManyLevels
    case unknownMessageType
    /// An empty id, or one containing `+` or `#`.
    case invalidID

    public var description: String {
        switch self {
        case .tooFewLevels: "Sparkplug topic with too few levels (a D* type needs a device id)"
        case .tooManyLevels: "Sparkplug topic with too many levels (only D* types take a device id)"
        case .unknownMessageType: "unknown Sparkplug message type"
        case .invalidID: "Sparkplug id empty or containing '+' or '#'"
        }
    }
}

/// Walks the `/`-separated levels of a topic.
struct LevelCursor {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int
    private var done = false

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    mutating func next() -> UnsafeBufferPointer<UInt8>.SubSequence? {
        guard !done else { return nil }
        let start = position
        var end = start
        while end < bytes.endIndex, bytes[end] != UInt8(ascii: "/") { end += 1 }
        if end == bytes.endIndex {
            done = true
        } else {
            position = end + 1
        }
        return bytes[start..<end]
    }
}
