import GRDB
import GRDBSQLite
import NIOCore

/// A GRDB cached statement bound and stepped through SQLite's C API. Used for the few statements
/// the writer runs per message: GRDB's argument arrays and execution bookkeeping cost more than
/// SQLite's own work there. Errors are thrown as GRDB `DatabaseError`s with SQLite's result code,
/// like every other statement's.
struct BoundStatement {
    private let handle: OpaquePointer
    private let connection: OpaquePointer?

    init(_ db: Database, sql: String) throws {
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        connection = db.sqliteConnection
    }

    /// SQLite copies what it is given (`SQLITE_TRANSIENT`): no buffer must outlive the call.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ value: Bool) {
        sqlite3_bind_int64(handle, index, value ? 1 : 0)
    }

    func bind(_ index: Int32, _ value: Double?) {
        if let value { sqlite3_bind_double(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ value: String?) {
        guard var value else {
            sqlite3_bind_null(handle, index)
            return
        }
        value.withUTF8 { utf8 in
            guard let base = utf8.baseAddress else {
                // "" must stay an empty TEXT: a nil pointer would bind NULL.
                sqlite3_bind_text(handle, index, "", 0, Self.transient)
                return
            }
            base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                _ = sqlite3_bind_text(handle, index, $0, Int32(utf8.count), Self.transient)
            }
        }
    }

    /// The readable bytes as a BLOB (an empty buffer is an empty BLOB, not NULL); nil binds NULL.
    func bind(_ index: Int32, bytes: ByteBuffer?) {
        guard let bytes else {
            sqlite3_bind_null(handle, index)
            return
        }
        bytes.withUnsafeReadableBytes { raw in
            if raw.isEmpty {
                sqlite3_bind_zeroblob(handle, index, 0)
            } else {
                sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), Self.transient)
            }
        }
    }

    /// Runs the statement to completion; the statement is reset for its next use either way.
    /// Every use binds every parameter, so bindings are not cleared.
    func run() throws {
        let code = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        guard code == SQLITE_DONE || code == SQLITE_ROW else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) }
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
    }

    /// Rows changed by the last `run` on this connection.
    var changes: Int { Int(sqlite3_changes(connection)) }
}
