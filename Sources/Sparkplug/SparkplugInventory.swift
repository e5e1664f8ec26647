/// Milliseconds since the Unix epoch (UTC), Sparkplug's unit of time. The inventory never reads a
/// clock: every observation carries the time it was seen.
public typealias SparkplugMilliseconds = UInt64

/// A Sparkplug message the server saw pass, reduced to what the inventory tracks.
public enum SparkplugObservation: Sendable, Hashable {
    case nbirth(group: String, edge: String, bdSeq: UInt64?, metricCount: Int, seq: UInt64?, at: SparkplugMilliseconds)
    /// `byWill`: published by the server as the edge node's will, not by the edge node.
    case ndeath(group: String, edge: String, bdSeq: UInt64?, at: SparkplugMilliseconds, byWill: Bool)
    case ndata(group: String, edge: String, seq: UInt64?, at: SparkplugMilliseconds)
    case dbirth(group: String, edge: String, device: String, metricCount: Int, seq: UInt64?, at: SparkplugMilliseconds)
    case ddeath(group: String, edge: String, device: String, seq: UInt64?, at: SparkplugMilliseconds)
    case ddata(group: String, edge: String, device: String, seq: UInt64?, at: SparkplugMilliseconds)
    /// A host application's STATE; `timestamp` is the one in its payload.
    case state(hostID: String, online: Bool, timestamp: UInt64, at: SparkplugMilliseconds)
    /// The connection that published the edge node's current NBIRTH closed (before or instead
    /// of an NDEATH; a will, if any, is observed separately).
    case connectionLost(group: String, edge: String, at: SparkplugMilliseconds)
}

/// Something a well-behaved Sparkplug system does not do; counted and alerted on, never fatal.
public enum SparkplugAnomaly: Sendable, Hashable {
    /// Data, a device birth or a device death from an edge node that is not online, or device
    /// data from a device that is not.
    case dataBeforeBirth(group: String, edge: String, device: String?, type: SparkplugMessageType)
    /// An NDEATH whose bdSeq is not the one of the current NBIRTH: it belongs to an older session
    /// and was ignored.
    case bdSeqMismatch(group: String, edge: String, birth: UInt64, death: UInt64)
    /// `seq` did not follow the node session's previous message by one (mod 256).
    case seqGap(group: String, edge: String, expected: UInt64, received: UInt64)
    case missingSeq(group: String, edge: String, type: SparkplugMessageType)
    case missingBdSeq(group: String, edge: String, type: SparkplugMessageType)
    /// A STATE older than the latest one seen for the host; ignored, as spec 3.0 has hosts do.
    case staleState(hostID: String, timestamp: UInt64, latest: UInt64)
    /// A new group, edge node, device or host application beyond its cap, with nothing offline
    /// to evict: it is not tracked.
    case notTracked(SparkplugInventoryLimits.Kind)

    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        case dataBeforeBirth, bdSeqMismatch, seqGap, missingSeq, missingBdSeq, staleState, notTracked
    }

    /// For counters: one label per case.
    public var kind: Kind {
        switch self {
        case .dataBeforeBirth: .dataBeforeBirth
        case .bdSeqMismatch: .bdSeqMismatch
        case .seqGap: .seqGap
        case .missingSeq: .missingSeq
        case .missingBdSeq: .missingBdSeq
        case .staleState: .staleState
        case .notTracked: .notTracked
        }
    }
}

public struct SparkplugInventoryLimits: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case groups, edgeNodes, devices, hostApplications
    }

    /// A group is tracked while it has edge nodes; it is not evicted on its own.
    public var maximumGroups: Int
    public var maximumEdgeNodes: Int
    /// Across all edge nodes.
    public var maximumDevices: Int
    public var maximumHostApplications: Int

    public init(maximumGroups: Int = 1_000, maximumEdgeNodes: Int = 10_000, maximumDevices: Int = 100_000,
                maximumHostApplications: Int = 1_000) {
        self.maximumGroups = maximumGroups
        self.maximumEdgeNodes = maximumEdgeNodes
        self.maximumDevices = maximumDevices
        self.maximumHostApplications = maximumHostApplications
    }
}

/// How an edge node or device last went offline.
public enum SparkplugDeathCause: String, Sendable, Hashable, Codable {
    /// An NDEATH or DDEATH published by the edge node.
    case death
    /// The NDEATH will, published by the server.
    case will
    /// The connection closed (no NDEATH seen yet).
    case connectionLost
}

/// Edge node sessions, devices and host applications as seen from the messages passing through
/// the server, and the anomalies in them.
///
/// Cost: each observation is O(1) hash lookups, except NBIRTH, NDEATH and connection loss, which
/// also touch each device of that edge node (O(devices of the node)). Memory is bounded by the
/// limits: at a cap, the record that has been offline longest is evicted (amortised O(1)); with
/// none offline, the newcomer is not tracked and `.notTracked` is reported.
public struct SparkplugInventory: Sendable {
    public let limits: SparkplugInventoryLimits

    private var edges: [EdgeKey: EdgeRecord] = [:]
    private var groupEdgeCounts: [String: Int] = [:]
    private var hosts: [String: HostRecord] = [:]
    private var deviceCount = 0
    private var offlineEdges: OfflineQueue<EdgeKey>
    private var offlineDevices: OfflineQueue<DeviceKey>
    private var offlineHosts: OfflineQueue<String>

    public init(limits: SparkplugInventoryLimits = SparkplugInventoryLimits()) {
        self.limits = limits
        offlineEdges = OfflineQueue(capacity: limits.maximumEdgeNodes)
        offlineDevices = OfflineQueue(capacity: limits.maximumDevices)
        offlineHosts = OfflineQueue(capacity: limits.maximumHostApplications)
    }

    public var groupCount: Int { groupEdgeCounts.count }
    public var edgeNodeCount: Int { edges.count }
    public var trackedDeviceCount: Int { deviceCount }
    public var hostApplicationCount: Int { hosts.count }

    /// The live session of an edge node, for the connection that published its NBIRTH.
    public func session(group: String, edge: String) -> SparkplugEdgeSession? {
        edges[EdgeKey(group: group, edge: edge)]?.session
    }

    /// Updates the inventory with one observed message and returns what was wrong with it.
    public mutating func observe(_ observation: SparkplugObservation) -> [SparkplugAnomaly] {
        var anomalies: [SparkplugAnomaly] = []
        switch observation {
        case .nbirth(let group, let edge, let bdSeq, let metricCount, let seq, let at):
            nodeBirth(EdgeKey(group: group, edge: edge), bdSeq: bdSeq, metricCount: metricCount, seq: seq, at: at, &anomalies)
        case .ndeath(let group, let edge, let bdSeq, let at, let byWill):
            nodeDeath(EdgeKey(group: group, edge: edge), bdSeq: bdSeq, at: at, byWill: byWill, &anomalies)
        case .ndata(let group, let edge, let seq, _):
            let key = EdgeKey(group: group, edge: edge)
            guard edges[key]?.online == true else {
                anomalies.append(.dataBeforeBirth(group: group, edge: edge, device: nil, type: .ndata))
                break
            }
            checkSeq(key, seq, .ndata, &anomalies)
        case .dbirth(let group, let edge, let device, let metricCount, let seq, let at):
            deviceBirth(EdgeKey(group: group, edge: edge), device, metricCount: metricCount, seq: seq, at: at, &anomalies)
        case .ddeath(let group, let edge, let device, let seq, let at):
            deviceDeath(EdgeKey(group: group, edge: edge), device, seq: seq, at: at, &anomalies)
        case .ddata(let group, let edge, let device, let seq, _):
            let key = EdgeKey(group: group, edge: edge)
            guard let record = edges[key], record.online else {
                anomalies.append(.dataBeforeBirth(group: group, edge: edge, device: device, type: .ddata))
                break
            }
            checkSeq(key, seq, .ddata, &anomalies)
            if record.devices[device]?.online != true {
                anomalies.append(.dataBeforeBirth(group: group, edge: edge, device: device, type: .ddata))
            }
        case .state(let hostID, let online, let timestamp, let at):
            hostState(hostID, online: online, timestamp: timestamp, at: at, &anomalies)
        case .connectionLost(let group, let edge, let at):
            let key = EdgeKey(group: group, edge: edge)
            if edges[key]?.online == true { takeOffline(key, at: at, cause: .connectionLost) }
        }
        return anomalies
    }

    // MARK: Edge nodes

    private mutating func nodeBirth(_ key: EdgeKey, bdSeq: UInt64?, metricCount: Int, seq: UInt64?, at: SparkplugMilliseconds,
                                    _ anomalies: inout [SparkplugAnomaly]) {
        if bdSeq == nil { anomalies.append(.missingBdSeq(group: key.group, edge: key.edge, type: .nbirth)) }
        if seq == nil { anomalies.append(.missingSeq(group: key.group, edge: key.edge, type: .nbirth)) }
        if edges[key] == nil {
            guard admitEdge(key, &anomalies) else { return }
        }
        var staleDevices: [String] = []
        edges[key, default: EdgeRecord()].apply { record in
            record.online = true
            record.offlineTicket = nil
            record.bdSeq = bdSeq
            record.session?.end()
            record.session = SparkplugEdgeSession(seq: seq)
            record.metricCount = metricCount
            record.lastBirthAt = at
            // Devices stay stale until the new session's DBIRTHs.
            for (id, device) in record.devices where device.online { staleDevices.append(id) }
        }
        for device in staleDevices { takeDeviceOffline(DeviceKey(edge: key, device: device), at: nil) }
    }

    private mutating func nodeDeath(_ key: EdgeKey, bdSeq: UInt64?, at: SparkplugMilliseconds, byWill: Bool,
                                    _ anomalies: inout [SparkplugAnomaly]) {
        // A death for a node never born here carries no session to end.
        guard let record = edges[key] else { return }
        guard let bdSeq else {
            anomalies.append(.missingBdSeq(group: key.group, edge: key.edge, type: .ndeath))
            takeOffline(key, at: at, cause: byWill ? .will : .death)
            return
        }
        if let birth = record.bdSeq, birth != bdSeq {
            // Spec 3.0: a death that does not match the birth is from an earlier session (e.g. the
            // will of a connection taken over) and must not end the current one.
            anomalies.append(.bdSeqMismatch(group: key.group, edge: key.edge, birth: birth, death: bdSeq))
            return
        }
        takeOffline(key, at: at, cause: byWill ? .will : .death)
    }

    private mutating func takeOffline(_ key: EdgeKey, at: SparkplugMilliseconds, cause: SparkplugDeathCause) {
        guard let record = edges[key] else { return }
        var ticket = record.offlineTicket
        if record.online {
            ticket = offlineEdges.push(key, table: edges, isCurrent: Self.isCurrentEdge)
        }
        var onlineDevices: [String] = []
        edges[key]?.apply { record in
            record.online = false
            record.offlineTicket = ticket
            record.lastDeathAt = at
            record.deathCause = cause
            record.session?.end()
            record.session = nil
            for (id, device) in record.devices where device.online { onlineDevices.append(id) }
        }
        for device in onlineDevices { takeDeviceOffline(DeviceKey(edge: key, device: device), at: at) }
    }

    /// Makes room for a new edge node; false when it cannot be tracked.
    private mutating func admitEdge(_ key: EdgeKey, _ anomalies: inout [SparkplugAnomaly]) -> Bool {
        if groupEdgeCounts[key.group] == nil, groupEdgeCounts.count >= limits.maximumGroups {
            anomalies.append(.notTracked(.groups))
            return false
        }
        if edges.count >= limits.maximumEdgeNodes {
            guard let victim = offlineEdges.popOldest(table: edges, isCurrent: Self.isCurrentEdge) else {
                anomalies.append(.notTracked(.edgeNodes))
                return false
            }
            evictEdge(victim)
        }
        groupEdgeCounts[key.group, default: 0] += 1
        return true
    }

    private mutating func evictEdge(_ key: EdgeKey) {
        guard let record = edges.removeValue(forKey: key) else { return }
        record.session?.end()
        deviceCount -= record.devices.count
        let remaining = (groupEdgeCounts[key.group] ?? 1) - 1
        groupEdgeCounts[key.group] = remaining > 0 ? remaining : nil
    }

    private mutating func checkSeq(_ key: EdgeKey, _ seq: UInt64?, _ type: SparkplugMessageType, _ anomalies: inout [SparkplugAnomaly]) {
        guard let seq else {
            anomalies.append(.missingSeq(group: key.group, edge: key.edge, type: type))
            return
        }
        switch edges[key]?.session?.advance(to: seq) {
        case .gap(let expected)?:
            anomalies.append(.seqGap(group: key.group, edge: key.edge, expected: expected, received: seq))
        case .inOrder?, .ended?, nil:
            break
        }
    }

    // MARK: Devices

    private mutating func deviceBirth(_ key: EdgeKey, _ device: String, metricCount: Int, seq: UInt64?, at: SparkplugMilliseconds,
                                      _ anomalies: inout [SparkplugAnomaly]) {
        guard let record = edges[key], record.online else {
            anomalies.append(.dataBeforeBirth(group: key.group, edge: key.edge, device: device, type: .dbirth))
            return
        }
        checkSeq(key, seq, .dbirth, &anomalies)
        if record.devices[device] == nil {
            if deviceCount >= limits.maximumDevices {
                guard let victim = offlineDevices.popOldest(table: edges, isCurrent: Self.isCurrentDevice) else {
                    anomalies.append(.notTracked(.devices))
                    return
                }
                if edges[victim.edge]?.devices.removeValue(forKey: victim.device) != nil { deviceCount -= 1 }
            }
            deviceCount += 1
        }
        edges[key]?.apply { record in
            record.devices[device, default: DeviceRecord()].apply { device in
                device.online = true
                device.offlineTicket = nil
                device.metricCount = metricCount
                device.lastBirthAt = at
            }
        }
    }

    private mutating func deviceDeath(_ key: EdgeKey, _ device: String, seq: UInt64?, at: SparkplugMilliseconds,
                                      _ anomalies: inout [SparkplugAnomaly]) {
        guard let record = edges[key], record.online else {
            anomalies.append(.dataBeforeBirth(group: key.group, edge: key.edge, device: device, type: .ddeath))
            return
        }
        checkSeq(key, seq, .ddeath, &anomalies)
        if record.devices[device]?.online == true {
            takeDeviceOffline(DeviceKey(edge: key, device: device), at: at)
        }
    }

    /// `at` nil: stale because its edge node was born again, not dead.
    private mutating func takeDeviceOffline(_ key: DeviceKey, at: SparkplugMilliseconds?) {
        guard edges[key.edge]?.devices[key.device]?.online == true else { return }
        let ticket = offlineDevices.push(key, table: edges, isCurrent: Self.isCurrentDevice)
        edges[key.edge]?.devices[key.device]?.apply { device in
            device.online = false
            device.offlineTicket = ticket
            if let at {
                device.lastDeathAt = at
            }
        }
    }

    // MARK: Host applications

    private mutating func hostState(_ hostID: String, online: Bool, timestamp: UInt64, at: SparkplugMilliseconds,
                                    _ anomalies: inout [SparkplugAnomaly]) {
        if let record = hosts[hostID] {
            if timestamp < record.lastStateTimestamp {
                anomalies.append(.staleState(hostID: hostID, timestamp: timestamp, latest: record.lastStateTimestamp))
                return
            }
        } else if hosts.count >= limits.maximumHostApplications {
            guard let victim = offlineHosts.popOldest(table: hosts, isCurrent: Self.isCurrentHost) else {
                anomalies.append(.notTracked(.hostApplications))
                return
            }
            hosts[victim] = nil
        }
        let wasOnline = hosts[hostID]?.online
        var ticket = hosts[hostID]?.offlineTicket
        if !online, wasOnline != false {
            ticket = offlineHosts.push(hostID, table: hosts, isCurrent: Self.isCurrentHost)
        }
        hosts[hostID] = HostRecord(online: online, lastStateAt: at, lastStateTimestamp: timestamp,
                                   offlineTicket: online ? nil : ticket)
    }

    // An eviction-queue entry is current while its record is still offline with the same ticket.
    private static func isCurrentEdge(_ edges: [EdgeKey: EdgeRecord], _ key: EdgeKey, _ ticket: UInt64) -> Bool {
        edges[key]?.offlineTicket == ticket
    }

    private static func isCurrentDevice(_ edges: [EdgeKey: EdgeRecord], _ key: DeviceKey, _ ticket: UInt64) -> Bool {
        edges[key.edge]?.devices[key.device]?.offlineTicket == ticket
    }

    private static func isCurrentHost(_ hosts: [String: HostRecord], _ key: String, _ ticket: UInt64) -> Bool {
        hosts[key]?.offlineTicket == ticket
    }

    // MARK: Reading

    /// Everything tracked, sorted by id. O(n log n) in the records tracked: for the admin API and
    /// `$SYS`, not for the message path.
    public func snapshot() -> SparkplugInventorySnapshot {
        var byGroup: [String: [SparkplugInventorySnapshot.EdgeNode]] = [:]
        for (key, record) in edges {
            byGroup[key.group, default: []].append(record.snapshot(id: key.edge))
        }
        let groups = byGroup.map { group, nodes in
            SparkplugInventorySnapshot.Group(id: group, edgeNodes: nodes.sorted { $0.id < $1.id })
        }.sorted { $0.id < $1.id }
        let hostApplications = hosts.map { id, host in
            SparkplugInventorySnapshot.HostApplication(id: id, online: host.online, lastStateAt: host.lastStateAt,
                                                       lastStateTimestamp: host.lastStateTimestamp)
        }.sorted { $0.id < $1.id }
        return SparkplugInventorySnapshot(groups: groups, hostApplications: hostApplications)
    }

    public func edgeNode(group: String, edge: String) -> SparkplugInventorySnapshot.EdgeNode? {
        edges[EdgeKey(group: group, edge: edge)]?.snapshot(id: edge)
    }

    public func hostApplication(_ hostID: String) -> SparkplugInventorySnapshot.HostApplication? {
        hosts[hostID].map {
            SparkplugInventorySnapshot.HostApplication(id: hostID, online: $0.online, lastStateAt: $0.lastStateAt,
                                                       lastStateTimestamp: $0.lastStateTimestamp)
        }
    }

    /// Entries held by the eviction queues (live and stale); for tests of the memory bound.
    var evictionQueueSizes: (edges: Int, devices: Int, hosts: Int) {
        (offlineEdges.storedEntries, offlineDevices.storedEntries, offlineHosts.storedEntries)
    }
}

struct EdgeKey: Hashable, Sendable {
    var group: String
    var edge: String
}

struct DeviceKey: Hashable, Sendable {
    var edge: EdgeKey
    var device: String
}

struct EdgeRecord: Sendable {
    var online = false
    var bdSeq: UInt64?
    /// The live session's seq counter; nil while offline.
    var session: SparkplugEdgeSession?
    var metricCount = 0
    var lastBirthAt: SparkplugMilliseconds?
    var lastDeathAt: SparkplugMilliseconds?
    var deathCause: SparkplugDeathCause?
    var offlineTicket: UInt64?
    var devices: [String: DeviceRecord] = [:]

    func snapshot(id: String) -> SparkplugInventorySnapshot.EdgeNode {
        let devices = devices.map { id, device in
            SparkplugInventorySnapshot.Device(id: id, online: device.online, metricCount: device.metricCount,
                                              lastBirthAt: device.lastBirthAt, lastDeathAt: device.lastDeathAt)
        }.sorted { $0.id < $1.id }
        return SparkplugInventorySnapshot.EdgeNode(id: id, online: online, bdSeq: bdSeq, metricCount: metricCount,
                                                   lastBirthAt: lastBirthAt, lastDeathAt: lastDeathAt,
                                                   lastDeathCause: deathCause, devices: devices)
    }
}

struct DeviceRecord: Sendable {
    var online = false
    var metricCount = 0
    var lastBirthAt: SparkplugMilliseconds?
    var lastDeathAt: SparkplugMilliseconds?
    var offlineTicket: UInt64?
}

struct HostRecord: Sendable {
    var online: Bool
    var lastStateAt: SparkplugMilliseconds
    var lastStateTimestamp: UInt64
    var offlineTicket: UInt64?
}

extension EdgeRecord {
    /// In-place mutation through optional chaining or `default:` subscripts, without copying the
    /// device table.
    mutating func apply(_ change: (inout EdgeRecord) -> Void) { change(&self) }
}

extension DeviceRecord {
    mutating func apply(_ change: (inout DeviceRecord) -> Void) { change(&self) }
}
