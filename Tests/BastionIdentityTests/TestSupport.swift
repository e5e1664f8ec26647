import BastionCore
@testable import BastionIdentity
import NIOCore
import NIOPosix
import Synchronization
import BastionTesting

/// A backend that answers from a closure and counts its calls.
final class ScriptedBackend: IdentityBackend {
    let name: String
    private let answer: @Sendable (AuthenticationRequest) async -> BackendDecision
    private let appliesTo: @Sendable (AuthenticationRequest) -> Bool
    private let calls = Atomic<Int>(0)

    init(_ name: String, applies: @escaping @Sendable (AuthenticationRequest) -> Bool = { _ in true },
         _ answer: @escaping @Sendable (AuthenticationRequest) async -> BackendDecision) {
        self.name = name
        self.answer = answer
        self.appliesTo = applies
    }

    convenience init(_ name: String, always decision: BackendDecision) {
        self.init(name) { _ in decision }
    }

    var callCount: Int { calls.load(ordering: .relaxed) }

    func applies(to request: AuthenticationRequest) -> Bool { appliesTo(request) }

    func decide(_ request: AuthenticationRequest) async -> BackendDecision {
        calls.add(1, ordering: .relaxed)
        return await answer(request)
    }
}

/// A clock tests move by hand.
/// Records the alerts raised.
final class AlertRecorder: Sendable {
    private let raised = Mutex<[String]>([])
    var backends: [String] { raised.withLock { $0 } }
    func alerts(clock: ManualClock? = nil) -> BackendAlerts {
        BackendAlerts(logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), clock: { clock?.now ?? .now() }) { [self] backend, _ in
            raised.withLock { $0.append(backend) }
        }
    }
}

/// Runs blocking work inline: the tests have no event loop to protect.
struct InlinePool: BlockingWorkPool {
    func run<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        eventLoop.makeSucceededFuture(work())
    }
}

let testLoop = MultiThreadedEventLoopGroup.singleton.next()
let inlineRunner = BlockingRunner(pool: InlinePool(), eventLoop: testLoop)

func request(_ username: String? = "alice", _ password: String? = "secret", clientID: String = "dev-1") -> AuthenticationRequest {
    AuthenticationRequest(username: username, password: password.map { Array($0.utf8) }, clientID: clientID,
                          listener: "mqtt://127.0.0.1:1883", remoteHost: "127.0.0.1")
}

func connectCredentials(_ username: String? = "alice", _ password: String? = "secret", clientID: String = "dev-1",
                        allowAnonymous: Bool = false, certificate: String? = nil) -> ConnectCredentials {
    var info = ConnectionInfo(listener: "mqtt://127.0.0.1:1883", remoteAddress: "127.0.0.1:5000", allowAnonymous: allowAnonymous)
    info.certificateIdentity = certificate
    return ConnectCredentials(clientID: clientID, username: username, password: password.map { ByteBuffer(string: $0) }, connection: info)
}

import Logging
