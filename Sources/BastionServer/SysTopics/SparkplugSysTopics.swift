import Foundation
import Sparkplug

/// The Sparkplug inventory on `$SYS/bastion/sparkplug/…`, retained: `summary` (counts and
/// counters), `hosts` (host applications' STATE) and one document per group
/// (`groups/{group}`: its edge nodes and devices). Only documents that changed are published; a
/// group no longer tracked gets an empty retained message, which clears it.
struct SparkplugSysTopics {
    static let prefix = "$SYS/bastion/sparkplug/"
    private var published: [String: String] = [:]

    private struct Summary: Encodable {
        var groups: Int
        var edgeNodes: Int
        var edgeNodesOnline: Int
        var devices: Int
        var hostApplications: Int
        var counters: SparkplugService.Counters
    }

    mutating func update(_ document: SparkplugService.Document) -> [SysTopicMessage] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ value: some Encodable) -> String {
            (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        let nodes = document.inventory.groups.flatMap(\.edgeNodes)
        var current: [String: String] = [
            Self.prefix + "summary": json(Summary(
                groups: document.inventory.groups.count, edgeNodes: nodes.count, edgeNodesOnline: nodes.count { $0.online },
                devices: nodes.reduce(0) { $0 + $1.devices.count }, hostApplications: document.inventory.hostApplications.count,
                counters: document.counters)),
            Self.prefix + "hosts": json(document.inventory.hostApplications),
        ]
        for group in document.inventory.groups { current[Self.prefix + "groups/" + group.id] = json(group) }
        var messages: [SysTopicMessage] = []
        for (topic, payload) in current.sorted(by: { $0.key < $1.key }) where published[topic] != payload {
            messages.append(SysTopicMessage(topic, payload))
        }
        for topic in published.keys.sorted() where current[topic] == nil {
            messages.append(SysTopicMessage(topic, ""))
        }
        published = current
        return messages
    }
}
