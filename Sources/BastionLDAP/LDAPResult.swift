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

    public init(rawValue: Int) {
        switch rawValue {
        case 0: self = .success
        case 1: self = .operationsError
        case 2: self = .protocolError
        case 3: self = .timeLimitExceeded
        case 4: self = .sizeLimitExceeded
        case 5: self = .compareFalse
        case 6: self = .compareTrue
        case 7: self = .authMethodNotSupported
        case 8: self = .strongerAuthRequired
        case 10: self = .referral
        case 11: self = .adminLimitExceeded
        case 12: self = .unavailableCriticalExtension
        case 13: self = .confidentialityRequired
        case 14: self = .saslBindInProgress
        case 16: self = .noSuchAttribute
        case 17: self = .undefinedAttributeType
        case 18: self = .inappropriateMatching
        case 19: self = .constraintViolation
        case 20: self = .attributeOrValueExists
        case 21: self = .invalidAttributeSyntax
        case 32: self = .noSuchObject
        case 33: self = .aliasProblem
        case 34: self = .invalidDNSyntax
        case 36: self = .aliasDereferencingProblem
        case 48: self = .inappropriateAuthentication
        case 49: self = .invalidCredentials
        case 50: self = .insufficientAccessRights
        case 51: self = .busy
        case 52: self = .unavailable
        case 53: self = .unwillingToPerform
        case 54: self = .loopDetect
        case 64: self = .namingViolation
        case 65: self = .objectClassViolation
        case 66: self = .notAllowedOnNonLeaf
        case 67: self = .notAllowedOnRDN
        case 68: self = .entryAlreadyExists
        case 69: self = .objectClassModsProhibited
        case 71: self = .affectsMultipleDSAs
        case 80: self = .other
        default: self = .unknown(rawValue)
        }
    }

    /// Wire value and RFC 4511 name of a named code.
    private var known: (code: Int, name: String)? {
        switch self {
        case .success: (0, "success")
        case .operationsError: (1, "operationsError")
        case .protocolError: (2, "protocolError")
        case .timeLimitExceeded: (3, "timeLimitExceeded")
        case .sizeLimitExceeded: (4, "sizeLimitExceeded")
        case .compareFalse: (5, "compareFalse")
        case .compareTrue: (6, "compareTrue")
        case .authMethodNotSupported: (7, "authMethodNotSupported")
        case .strongerAuthRequired: (8, "strongerAuthRequired")
        case .referral: (10, "referral")
        case .adminLimitExceeded: (11, "adminLimitExceeded")
        case .unavailableCriticalExtension: (12, "unavailableCriticalExtension")
        case .confidentialityRequired: (13, "confidentialityRequired")
        case .saslBindInProgress: (14, "saslBindInProgress")
        case .noSuchAttribute: (16, "noSuchAttribute")
        case .undefinedAttributeType: (17, "undefinedAttributeType")
        case .inappropriateMatching: (18, "inappropriateMatching")
        case .constraintViolation: (19, "constraintViolation")
        case .attributeOrValueExists: (20, "attributeOrValueExists")
        case .invalidAttributeSyntax: (21, "invalidAttributeSyntax")
        case .noSuchObject: (32, "noSuchObject")
        case .aliasProblem: (33, "aliasProblem")
        case .invalidDNSyntax: (34, "invalidDNSyntax")
        case .aliasDereferencingProblem: (36, "aliasDereferencingProblem")
        case .inappropriateAuthentication: (48, "inappropriateAuthentication")
        case .invalidCredentials: (49, "invalidCredentials")
        case .insufficientAccessRights: (50, "insufficientAccessRights")
        case .busy: (51, "busy")
        case .unavailable: (52, "unavailable")
        case .unwillingToPerform: (53, "unwillingToPerform")
        case .loopDetect: (54, "loopDetect")
        case .namingViolation: (64, "namingViolation")
        case .objectClassViolation: (65, "objectClassViolation")
        case .notAllowedOnNonLeaf: (66, "notAllowedOnNonLeaf")
        case .notAllowedOnRDN: (67, "notAllowedOnRDN")
        case .entryAlreadyExists: (68, "entryAlreadyExists")
        case .objectClassModsProhibited: (69, "objectClassModsProhibited")
        case .affectsMultipleDSAs: (71, "affectsMultipleDSAs")
        case .other: (80, "other")
        case .unknown: nil
        }
    }

    public var rawValue: Int {
        if case .unknown(let value) = self { return value }
        return known!.code
    }

    public var description: String {
        guard let known else { return "resultCode \(rawValue)" }
        return "\(known.name) (\(known.code))"
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
