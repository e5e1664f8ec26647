import BastionSecurity
import Foundation

/// JSON shapes of the admin ban API (`/api/v1/bans`, and `/bans` as before), shared by the server and
/// `bastion ban`. Documented in docs/monitoring.md.
public enum BanAPI {
    /// One ban as `GET /bans` lists it.
    public struct Ban: Codable, Sendable, Hashable {
        /// ip | cidr | username | client_id
        public var type: String
        public var value: String
        /// config | manual | auth_failures | flapping
        public var origin: String
        public var note: String?
        public var permanent: Bool
        public var expires_in_seconds: Double?
        /// RFC 3339 UTC.
        public var expires_at: String?
        public var offence: Int

        public init(_ entry: BanEntry, now: MonotonicInstant, wallMilliseconds: Int64) {
            type = entry.subject.kind
            value = entry.subject.value
            origin = entry.origin.rawValue
            note = entry.note
            permanent = entry.isPermanent
            offence = entry.offence
            if let remaining = entry.remaining(at: now) {
                expires_in_seconds = (remaining.seconds * 1000).rounded() / 1000
                expires_at = RFC3339.format(millisecondsSinceEpoch: wallMilliseconds + Int64(remaining.seconds * 1000))
            }
        }
    }

    /// `POST /bans` body: exactly one of ip / cidr / user / client_id.
    public struct BanRequest: Codable, Sendable, Hashable {
        public var ip: String?
        public var cidr: String?
        public var user: String?
        public var client_id: String?
        /// Omitted: until removed.
        public var duration_seconds: Double?
        public var reason: String?

        public init(ip: String? = nil, cidr: String? = nil, user: String? = nil, client_id: String? = nil,
                    duration_seconds: Double? = nil, reason: String? = nil) {
            self.ip = ip
            self.cidr = cidr
            self.user = user
            self.client_id = client_id
            self.duration_seconds = duration_seconds
            self.reason = reason
        }

        /// The subject, or why the request names none or several.
        public func subject() -> Result<BanSubject, BanAPIError> {
            let given = [ip.map { ("ip", $0) }, cidr.map { ("cidr", $0) }, user.map { ("username", $0) },
                         client_id.map { ("client_id", $0) }].compactMap { $0 }
            guard given.count == 1, let (kind, value) = given.first else {
                return .failure(BanAPIError(error: "name exactly one of ip, cidr, user or client_id"))
            }
            guard let subject = BanSubject(kind: kind, value: value) else {
                return .failure(BanAPIError(error: "'\(value)' is not a valid \(kind)"))
            }
            return .success(subject)
        }
    }

    /// Query parameters of `DELETE /bans`: ip, cidr, user or client_id.
    public static func subject(query: [String: String]) -> Result<BanSubject, BanAPIError> {
        BanRequest(ip: query["ip"], cidr: query["cidr"], user: query["user"], client_id: query["client_id"]).subject()
    }
}

/// `{"error": "..."}` bodies of 4xx answers.
public struct BanAPIError: Error, Codable, Sendable, Hashable {
    public var error: String

    public init(error: String) {
        self.error = error
    }
}
