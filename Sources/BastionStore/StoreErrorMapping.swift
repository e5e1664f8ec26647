import BastionCore
import GRDB

/// Maps SQLite failures to the store's error kinds, in one place.
enum StoreErrorMapping {
    /// An error while committing at run time.
    static func runtime(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let error = error as? DatabaseError else { return .io("\(path): \(error)") }
        let detail = "\(path): \(error.message ?? "SQLite error \(error.extendedResultCode.rawValue)")"
        switch error.resultCode {
        case .SQLITE_FULL: return .diskFull(detail)
        default: return .io(detail + " (SQLite code \(error.extendedResultCode.rawValue))")
        }
    }

    /// An error while opening, migrating or loading: anything that means "this directory or file
    /// cannot hold the broker's state" is `.unusable`; a full disk stays `.diskFull`.
    static func startup(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? RowDecodingFailure { return .unusable("\(path): damaged row: \(error)") }
        guard let error = error as? DatabaseError else { return .unusable("\(path): \(error)") }
        let message = error.message ?? "SQLite error \(error.extendedResultCode.rawValue)"
        switch error.resultCode {
        case .SQLITE_FULL:
            return .diskFull("\(path): \(message)")
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return .unusable(
                "\(path) is not a valid Bastion database (\(message)); move it away to start empty, or restore a backup")
        case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH:
            return .unusable(
                "\(path) cannot be opened for writing (\(message)); check the directory's owner, permissions and mount")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return .unusable(
                "\(path) is locked by another process (\(message)); is another broker using this data directory?")
        default:
            return .unusable("\(path): \(message) (SQLite code \(error.extendedResultCode.rawValue))")
        }
    }

    /// Errors after which the transaction cannot go on (SQLite may already have rolled it back):
    /// the whole batch fails. Other errors are blamed on the submission that raised them.
    static func failsWholeBatch(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        switch error.resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_NOMEM, .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_READONLY,
            .SQLITE_CANTOPEN, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_INTERRUPT, .SQLITE_PROTOCOL, .SQLITE_PERM:
            return true
        default:
            return false
        }
    }
}
