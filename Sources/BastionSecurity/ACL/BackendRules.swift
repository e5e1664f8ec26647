import BastionCore
import MQTTCodec

/// The topic rules an identity backend returned for one client (`ClientIdentity.backendRules`),
/// ready for `AccessPolicy.decide`. They compete like the client's own user rules: the most
/// specific filter wins, a deny among them vetoes client-id grants. Filters are taken literally
/// (no `%u`/`%c`): the backend answered for this very client.
public struct BackendRules: Sendable {
    let rules: [ACLRule]

    public static let none = BackendRules(rules: [])

    init(rules: [ACLRule]) { self.rules = rules }

    /// Converts the rules; an invalid filter fails the whole set (skipping a deny would widen
    /// access), and the caller then denies everything.
    public init(_ backendRules: [BackendACLRule], username: String?) throws(ACLError) {
        var rules: [ACLRule] = []
        rules.reserveCapacity(backendRules.count)
        for (index, rule) in backendRules.enumerated() {
            let levels: [FilterLevel]
            do {
                levels = try ACLRule.parseLevels(rule.filter, substitutes: false)
            } catch {
                throw ACLError(source: rule.source, message: "invalid topic filter from the backend")
            }
            let effect: RuleEffect = switch rule.access {
            case .read, .subscribe: .allow([.subscribe, .read])
            case .write: .allow(.publish)
            case .readwrite: .allow(.all)
            case .deny: .deny
            }
            rules.append(ACLRule(
                subject: .user(username ?? ""), effect: effect, filter: rule.filter, levels: levels, origin: .native,
                source: rule.source, description: "\(rule.source): \(rule.access.rawValue) \(rule.filter)",
                order: Int(Int32.max) + index))
        }
        self.rules = rules
    }

    public var isEmpty: Bool { rules.isEmpty }
}
