import Foundation
import SwiftASN1

/// RFC 5280 `Time` (UTCTime through 2049, GeneralizedTime from 2050), converted with plain calendar
/// arithmetic so no locale or time zone database is involved.
enum ASN1Time {
    static func serialize(_ date: Date, into coder: inout DER.Serializer) throws {
        let c = CivilTime(date)
        if (1950..<2050).contains(c.year) {
            try coder.serialize(
                UTCTime(year: c.year, month: c.month, day: c.day, hours: c.hour, minutes: c.minute, seconds: c.second)
            )
        } else {
            try coder.serialize(
                GeneralizedTime(
                    year: c.year,
                    month: c.month,
                    day: c.day,
                    hours: c.hour,
                    minutes: c.minute,
                    seconds: c.second,
                    fractionalSeconds: 0
                )
            )
        }
    }

    static func isTime(_ node: ASN1Node) -> Bool {
        node.identifier == .utcTime || node.identifier == .generalizedTime
    }

    static func parse(_ node: ASN1Node) throws -> Date {
        let c: CivilTime
        switch node.identifier {
        case .utcTime:
            let t = try UTCTime(derEncoded: node)
            c = CivilTime(year: t.year, month: t.month, day: t.day, hour: t.hours, minute: t.minutes, second: t.seconds)
        case .generalizedTime:
            let t = try GeneralizedTime(derEncoded: node)
            c = CivilTime(year: t.year, month: t.month, day: t.day, hour: t.hours, minute: t.minutes, second: t.seconds)
        default:
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        return c.date
    }
}

/// A UTC calendar date and time (proleptic Gregorian), using Howard Hinnant's civil-from-days algorithms.
struct CivilTime: Equatable {
    var year: Int
    var month: Int
    var day: Int
    var hour: Int
    var minute: Int
    var second: Int

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    init(_ date: Date) {
        let total = Int(date.timeIntervalSince1970.rounded(.down))
        var days = total / 86_400
        var secondsOfDay = total % 86_400
        if secondsOfDay < 0 {
            secondsOfDay += 86_400
            days -= 1
        }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.month = m
        self.day = d
        self.hour = secondsOfDay / 3600
        self.minute = secondsOfDay % 3600 / 60
        self.second = secondsOfDay % 60
    }

    var date: Date {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second))
    }
}
