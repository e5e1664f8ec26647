import BastionCore
import Foundation
import NIOCore

extension StoreMapping {
    static func wallClock() -> WallClock { Date().timeIntervalSince1970 }

    /// `stored(_:now:wallNow:)` at the current time.
    static func stored(_ message: Message) -> StoredMessage {
        stored(message, now: .now(), wallNow: wallClock())
    }
}
