import BastionSecurity
import MQTTCodec

extension Broker {
    /// A ban an operator just added also ends the connections it covers: by address (the client's
    /// real address, after PROXY protocol), by user name (the one presented or the resolved
    /// identity, e.g. a certificate's), or by client id.
    func disconnectBanned(_ entry: BanEntry) {
        for loop in group.makeIterator() {
            loop.execute {
                let worker = self.worker(on: loop)
                for handler in worker.connections.values where handler.machine.isConnected && handler.isCovered(by: entry.subject) {
                    handler.closeReason = "banned (\(entry.subject))"
                    _ = handler.run(.disconnect(.administrativeAction, reasonString: "banned"))
                }
            }
        }
    }
}

extension MQTTConnectionHandler {
    func isCovered(by subject: BanSubject) -> Bool {
        switch subject {
        case .address(let range):
            guard let ip = IPAddress(remoteAddress) else { return false }
            return range.contains(ip)
        case .username(let name):
            guard let identity else { return false }
            return identity.username == name || identity.certificateIdentity == name
        case .clientID(let id):
            return clientID == id
        }
    }
}
