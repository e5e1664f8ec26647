/// `$SYS/bastion/bridges/{name}/…`: retained, republished only when a value changed.
struct BridgeSysTopics {
    private var published: [String: String] = [:]

    static func prefix(_ name: String) -> String { "$SYS/bastion/bridges/\(name)/" }

    mutating func update(_ snapshots: [BridgeService.Snapshot]) -> [SysTopicMessage] {
        var messages: [SysTopicMessage] = []
        for s in snapshots {
            let prefix = Self.prefix(s.name)
            let dropped = s.dropped.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            let values: [(String, String)] = [
                ("state", s.connected ? "connected" : "disconnected"),
                ("remote", s.remote ?? ""),
                ("queued_messages", String(s.queuedMessages)),
                ("queued_bytes", String(s.queuedBytes)),
                ("oldest_queued_age", String(s.oldestQueuedAge)),
                ("forwarded", String(s.forwarded)),
                ("received", String(s.received)),
                ("dropped", "{\(dropped)}"),
            ]
            for (leaf, value) in values where published[prefix + leaf] != value {
                published[prefix + leaf] = value
                messages.append(SysTopicMessage(prefix + leaf, value))
            }
        }
        return messages
    }
}
