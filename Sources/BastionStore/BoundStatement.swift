import GRDB
import GRDBSQLite
import NIOCore

/// A GRDB cached statement bound and stepped through SQLite's C API. Used for the few statements
/// the writer runs per message: GRDB's argument arrays and execution bookkeeping cost more than
/// SQLite's own work there. Errors are thrown as GRDB `DatabaseError`s with SQLite's result code,
/// like every other statement's.
///
/// Text and blob values are copied once into the statement's staging area and bound without a
/// copy (`SQLITE_STATIC`) when the statement runs; SQLite would otherwise allocate, copy and free
/// each of them (several per message). Values over `stagingLimit` are copied by SQLite as usual,
/// so the staging area stays small.
struct BoundStatement {
    private let handle: OpaquePointer
    private let connection: OpaquePointer?
    private let staging = Staging()

    init(_ db: Database, sql: String) throws {
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        connection = db.sqliteConnection
    }

    /// SQLite copies what it is given (`SQLITE_TRANSIENT`): no buffer must outlive the call.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
    /// SQLite uses the memory as it is until the statement is reset (`SQLITE_STATIC`).
    private static let `static` = unsafeBitCast(OpaquePointer(bitPattern: 0), to: sqlite3_destructor_type.self)
    static let stagingLimit = 16 << 10

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
            if utf8.count <= Self.stagingLimit {
                // An empty value is still a staged, non-NULL pointer: "" stays an empty TEXT.
                staging.stage(index, UnsafeRawBufferPointer(utf8), isText: true)
            } else {
                utf8.baseAddress!.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                    _ = sqlite3_bind_text(handle, index, $0, Int32(utf8.count), Self.transient)
                }
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
            } else if raw.count <= Self.stagingLimit {
                staging.stage(index, raw, isText: false)
            } else {
                sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), Self.transient)
            }
        }
    }

    /// Runs the statement to completion; the statement is reset for its next use either way.
    /// Every use binds every parameter, so bindings are not cleared; staged ones are unbound
    /// (NULL) after the step, so no binding ever points into reused staging memory.
    func run() throws {
        staging.bindStaged(handle, destructor: Self.static)
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        staging.unbind(handle)
        guard code == SQLITE_DONE || code == SQLITE_ROW else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) }
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
    }

    /// Rows changed by the last `run` on this connection.
    var changes: Int { Int(sqlite3_changes(connection)) }
}

/// One statement's staged text and blob values: contiguous copies, bound by pointer just before
/// the step (the memory may move while values are added).
private final class Staging {
    private struct Value {
        var index: Int32
        var offset: Int
        var count: Int
        var isText: Bool
    }

    private var memory: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    private var values: [Value] = []

    init() {
        capacity = 1024
        memory = .allocate(byteCount: capacity, alignment: 8)
        values.reserveCapacity(8)
    }

    deinit { memory.deallocate() }

    func stage(_ index: Int32, _ bytes: UnsafeRawBufferPointer, isText: Bool) {
        if used + bytes.count > capacity {
            let grown = max(capacity * 2, used + bytes.count)
            let moved = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
            moved.copyMemory(from: memory, byteCount: used)
            memory.deallocate()
            memory = moved
            capacity = grown
        }
        if let base = bytes.baseAddress, bytes.count > 0 {
            (memory + used).copyMemory(from: base, byteCount: bytes.count)
        }
        values.append(Value(index: index, offset: used, count: bytes.count, isText: isText))
        used += bytes.count
    }

    func bindStaged(_ handle: OpaquePointer, destructor: sqlite3_destructor_type) {
        for value in values {
            let pointer = memory + value.offset
            if value.isText {
                sqlite3_bind_text(handle, value.index, pointer.assumingMemoryBound(to: CChar.self), Int32(value.count), destructor)
            } else {
                sqlite3_bind_blob(handle, value.index, pointer, Int32(value.count), destructor)
            }
        }
    }

    func unbind(_ handle: OpaquePointer) {
        for value in values { sqlite3_bind_null(handle, value.index) }
        values.removeAll(keepingCapacity: true)
        used = 0
    }
}
