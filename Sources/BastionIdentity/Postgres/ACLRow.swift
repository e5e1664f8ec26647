import BastionCore

/// One row of an `acl_query`: an access word (Mosquitto's read, write, readwrite, deny,
/// subscribe) or mosquitto-go-auth's number (1 read, 2 write, 3 readwrite, 4 subscribe), and a
/// topic filter.
enum ACLRow {
    static func access(text: String) -> BackendACLRule.Access? {
        BackendACLRule.Access(rawValue: text.lowercased())
    }

    static func access(number: Int) -> BackendACLRule.Access? {
        switch number {
        case 1: .read
        case 2: .write
        case 3: .readwrite
        case 4: .subscribe
        default: nil
        }
    }
}
