/// Per-connection memo of access decisions, so the hot publish and delivery paths do one
/// dictionary lookup per (operation, topic). Owned by one connection (not `Sendable`), bound to
/// that connection's identity: when the identity changes (re-authentication), make a new cache.
///
/// Bounded: at most `capacity` entries and `byteBudget` bytes of topic text in the current table;
/// when it fills, it becomes the previous table (still consulted, hits are promoted) and a new one
/// starts, so frequently used topics survive and memory stays below twice the limits — also when
/// a client publishes to many long topics. Everything is dropped when a different policy value
/// (a reload) is passed in.
public final class AuthorizationCache {
    struct Key: Hashable {
        var operation: AccessOperation
        var topic: String
    }

    public let identity: Identity
    /// The rules a backend returned for this connection's identity.
    public let backendRules: BackendRules
    public let capacity: Int
    public let byteBudget: Int
    private var currentBytes = 0
    private var policy: AccessPolicy.Storage?
    private var current: [Key: AccessDecision] = [:]
    private var previous: [Key: AccessDecision] = [:]

    public init(identity: Identity, backendRules: BackendRules = .none, capacity: Int = 1024, byteBudget: Int = 256 * 1024) {
        self.identity = identity
        self.backendRules = backendRules
        self.capacity = max(1, capacity)
        self.byteBudget = max(1, byteBudget)
    }

    /// `policy.decide(identity, operation, topic)`, remembered.
    public func decide(_ policy: AccessPolicy, _ operation: AccessOperation, _ topic: String) -> AccessDecision {
        if self.policy !== policy.storage {
            self.policy = policy.storage
            removeAll()
        }
        let key = Key(operation: operation, topic: topic)
        if let hit = current[key] { return hit }
        let decision = previous[key] ?? policy.decide(identity, operation, topic, backendRules: backendRules)
        if current.count >= capacity || currentBytes >= byteBudget {
            previous = current
            current.removeAll(keepingCapacity: true)
            currentBytes = 0
        }
        current[key] = decision
        currentBytes += topic.utf8.count
        return decision
    }

    /// Entries currently held (both tables).
    public var count: Int { current.count + previous.count }

    public func removeAll() {
        current.removeAll()
        previous.removeAll()
        currentBytes = 0
    }
}

@available(*, unavailable, message: "AuthorizationCache belongs to one connection")
extension AuthorizationCache: Sendable {}
