import BastionCore
import BastionStore
import Testing
import BastionTesting

@Suite("InMemoryStore")
struct InMemoryStoreTests {
    @Test("injected failures reject whole submissions until cleared")
    func injectedFailure() async throws {
        let store = InMemoryStore()
        #expect(await store.submitAndWait([.saveSession(Sample.session("a"))]).isSuccess)
        store.failCommits(with: .diskFull("test"))
        #expect(!store.isHealthy)
        let failed = await store.submitAndWait([.saveSession(Sample.session("b")), .putMessage(Sample.message(1))])
        guard case .failure(.diskFull) = failed else {
            Issue.record("expected .diskFull, got \(failed)")
            return
        }
        store.failCommits(with: nil)
        #expect(store.isHealthy)
        #expect(await store.submitAndWait([.saveSession(Sample.session("c"))]).isSuccess)

        let state = try store.load(now: 0)
        #expect(state.sessions.map(\.record.clientID) == ["a", "c"])
        #expect(store.storedMessageCount == 0)
        #expect(store.commitCount == 2)
    }
}
