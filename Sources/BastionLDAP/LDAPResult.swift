import SwiftASN1

/// The resultCode of an LDAPResult (RFC 4511 §4.1.9, Appendix A). Codes this enum does not name
/// are kept as `unknown` so they still reach logs and callers unchanged.
public enum LDAPResultCode: Sendable, Hashable, CustomStringConvertible {
    case success
    case operationsError
    case protocolError
    case timeLimitExceeded
    case sizeLimitExceeded
    case compareFalse
    case compareTrue
    case authMethodNotSupported
    case strongerAuthRequired
    case referral
    case adminLimitExceeded
    case unavailableCriticalExtension
    case confidentialityRequired
    case saslBindInProgress
    case noSuchAttribute
    case undefinedAttributeType
    case inappropriateMatching
    case constraintViolation
    case attributeOrValueExists
    case invalidAttributeSyntax
    case noSuchObject
    case aliasProblem
    case invalidDNSyntax
    case aliasDereferencingProblem
    case inappropriateAuthentication
    case invalidCredentials
    case insufficientAccessRights
    case busy
    case unavailable
    case unwillingToPerform
    case loopDetect
    case namingViolation
    case objectClassViolation
    case notAllowedOnNonLeaf
    case notAllowedOnRDN
    case entryAlreadyExists
    case objectClassModsProhibited
    case affectsMultipleDSAs
    case other
    /// A code outside RFC 4511's list (vendor or later-RFC codes).
    case unknown(Int)

    private static let known: [(LDAPResultCode, Int, String)] = [
        (.success, 0, "success"), (.operationsError, 1, "operationsError"), (.protocolError, 2, "protocolError"),
        (.timeLimitExceeded, 3, "timeLimitExceeded"), (.sizeLimitExceeded, 4, "sizeLimitExceeded"),
        (.compareFalse, 5, "compareFalse"), (.compareTrue, 6, "compareTrue"),
        (.authMethodNotSupported, 7, "authMethodNotSupported"), (.strongerAuthRequired, 8, "strongerAuthRequired"),
        (.referral, 10, "referral"), (.adminLimitExceeded, 11, "adminLimitExceeded"),
        (.unavailableCriticalExtension, 12, "unavailableCriticalExtension"),
        (.confidentialityRequired, 13, "confidentialityRequired"), (.saslBindInProgress, 14, "saslBindInProgress"),
        (.noSuchAttribute, 16, "noSuchAttribute"), (.undefinedAttributeType, 17, "undefinedAttributeType"),
        (.inappropriateMatching, 18, "inappropriateMatching"), (.constraintViolation, 19, "constraintViolation"),
        (.attributeOrValueExists, 20, "attributeOrValueExists"), (.invalidAttributeSyntax, 21, "invalidAttributeSyntax"),
        (.noSuchObject, 32, "noSuchObject"), (.aliasProblem, 33, "aliasProblem"), (.invalidDNSyntax, 34, "invalidDNSyntax"),
        (.aliasDereferencingProblem, 36, "aliasDereferencingProblem"),
        (.inappropriateAuthentication, 48, "inappropriateAuthentication"), (.invalidCredentials, 49, "invalidCredentials"),
        (.insufficientAccessRights, 50, "insufficientAccessRights"), (.busy, 51, "busy"), (.unavailable, 52, "unavailable"),
        (.unwillingToPerform, 53, "unwillingToPerform"), (.loopDetect, 54, "loopDetect"),
        (.namingViolation, 64, "namingViolation"), (.objectClassViolation, 65, "objectClassViolation"),
        (.notAllowedOnNonLeaf, 66, "notAllowedOnNonLeaf"), (.notAllowedOnRDN, 67, "notAllowedOnRDN"),
        (.entryAlreadyExists, 68, "entryAlreadyExists"), (.objectClassModsProhibited, 69, "objectClassModsProhibited"),
        (.affectsMultipleDSAs, 71, "affectsMultipleDSAs"), (.other, 80, "other"),
    ]

    public init(rawValue: Int) {
        self = Self.known.first { $0.1 == rawValue }?.0 ?? .unknown(rawValue)
    }

    public var rawValue: Int {
        if case .unknown(let value) = self { return value }
        return Self.known.first { $0.0 == self }!.1
    }

    public var description: String {
        if case .unknown(let value) = self { return "resultCode \(value)" }
        let entry = Self.known.first { $0.0 == self }!
        return "\(entry.2) (\(entry.1))"
    }

    // `unknown(49)` and `.invalidCredentials` must compare equal: compare by wire value.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

/// LDAPResult (RFC 4511 §4.1.9): the outcome every response carries.
public struct LDAPResult: Sendable, Hashable, CustomStringConvertible {
    public var resultCode: LDAPResultCode
    public var matchedDN: String
    public var diagnosticMessage: String
    /// Referral URIs, present only with `resultCode == .referral`. They are reported, not followed.
    public var referral: [String]

    public init(resultCode: LDAPResultCode, matchedDN: String = "", diagnosticMessage: String = "", referral: [String] = []) {
        self.resultCode = resultCode
        self.matchedDN = matchedDN
        self.diagnosticMessage = diagnosticMessage
        self.referral = referral
    }

    public var isSuccess: Bool { resultCode == .success }

    public var description: String {
        diagnosticMessage.isEmpty ? resultCode.description : "\(resultCode): \(diagnosticMessage)"
    }
}

extension LDAPResult {
    /// Reads the COMPONENTS OF LDAPResult from a response's sequence, leaving the iterator after them.
    init(components iterator: inout ASN1NodeCollection.Iterator) throws {
        let code = try BERField.integer(of: BERField.next(&iterator, "resultCode"), .enumerated, in: 0...Int(Int32.max), "resultCode")
        let matchedDN = try BERField.string(of: BERField.next(&iterator, "matchedDN"), "matchedDN")
        let diagnostic = try BERField.string(of: BERField.next(&iterator, "diagnosticMessage"), "diagnosticMessage")
        var referral: [String] = []
        // The referral is optional; peek without consuming a following field of another tag.
        var lookahead = iterator
        if let node = lookahead.next(), node.identifier == .context(3) {
            for uri in try BERField.children(of: node, .context(3), "referral") {
                referral.append(try BERField.string(of: uri, "referral URI"))
            }
            iterator = lookahead
        }
        self.init(resultCode: LDAPResultCode(rawValue: code), matchedDN: matchedDN, diagnosticMessage: diagnostic, referral: referral)
    }

    func serializeComponents(into coder: inout DER.Serializer) {
        coder.appendInteger(resultCode.rawValue, identifier: .enumerated)
        coder.appendString(matchedDN)
        coder.appendString(diagnosticMessage)
        if !referral.isEmpty {
            coder.appendConstructedNode(identifier: .context(3)) { coder in
                for uri in referral { coder.appendString(uri) }
            }
        }
    }
}
