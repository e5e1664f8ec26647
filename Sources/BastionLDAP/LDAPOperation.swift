/// What a caller asks the connection to do; one at a time.
enum LDAPOperation: Sendable, Hashable {
    case bind(LDAPBindRequest)
    case search(LDAPSearchRequest, LDAPSearchLimits)
    case startTLS
    case unbind

    var name: String {
        switch self {
        case .bind: "bind"
        case .search: "search"
        case .startTLS: "StartTLS"
        case .unbind: "unbind"
        }
    }
}

/// What a finished operation produced.
enum LDAPOperationResponse: Sendable, Hashable {
    case bind(LDAPResult)
    case search([LDAPEntry])
    /// The server agreed to StartTLS and the TLS handler is in place.
    case tlsStarted
    case unbound
}

/// Caps on what one search may return, checked as results arrive.
public struct LDAPSearchLimits: Sendable, Hashable {
    /// Most entries accepted; one more fails the search with `LDAPError.limitExceeded`.
    public var maximumEntries: Int
    /// Most bytes of entries and references accepted, counted as they arrive on the wire.
    public var maximumBytes: Int

    public init(maximumEntries: Int = 1000, maximumBytes: Int = 4 * 1024 * 1024) {
        self.maximumEntries = maximumEntries
        self.maximumBytes = maximumBytes
    }
}

/// Collects a search's results until SearchResultDone, within its limits.
struct SearchCollector: Sendable, Hashable {
    enum Step: Hashable {
        case needMore
        case done([LDAPEntry])
        case failed(LDAPError)
    }

    let limits: LDAPSearchLimits
    private(set) var entries: [LDAPEntry] = []
    private(set) var bytes = 0

    init(limits: LDAPSearchLimits) { self.limits = limits }

    /// `size` is the message's size on the wire.
    mutating func received(_ op: LDAPProtocolOp, size: Int) -> Step {
        switch op {
        case .searchResultEntry(let entry):
            bytes += size
            guard entries.count < limits.maximumEntries else {
                return .failed(.limitExceeded("search returned more than \(limits.maximumEntries) entries"))
            }
            guard bytes <= limits.maximumBytes else {
                return .failed(.limitExceeded("search returned more than \(limits.maximumBytes) bytes"))
            }
            entries.append(entry)
            return .needMore
        case .searchResultReference:
            // Continuation references point at other servers; they are not followed.
            bytes += size
            guard bytes <= limits.maximumBytes else {
                return .failed(.limitExceeded("search returned more than \(limits.maximumBytes) bytes"))
            }
            return .needMore
        case .searchResultDone(let result):
            return result.isSuccess ? .done(entries) : .failed(.result(result))
        default:
            return .failed(.protocolError("\(op.name) in answer to a search"))
        }
    }
}
