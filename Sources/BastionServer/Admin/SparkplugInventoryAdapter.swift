import BastionAdmin

/// The Sparkplug inventory for the admin API.
struct SparkplugInventoryAdapter: SparkplugInventoryProvider {
    let service: SparkplugService

    func edgeNodes() async -> [SparkplugNodeSummary] {
        service.document().inventory.groups.flatMap { group in
            group.edgeNodes.map { node in
                SparkplugNodeSummary(group: group.id, edge_node: node.id, online: node.online, devices: node.devices.map(\.id))
            }
        }
    }

    func inventoryJSON() async -> String { service.documentJSON() }
}
