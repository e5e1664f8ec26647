import BastionSecurity
import Foundation
import Testing

/// docs/audit-log.md is the published schema: it must describe every event and field the code
/// writes.
@Suite struct AuditDocsTests {
    static let docPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/audit-log.md").path

    @Test func everyEventAndFieldIsDocumented() throws {
        let doc = try String(contentsOfFile: Self.docPath, encoding: .utf8)
        for (event, fields) in AuditSchema.events {
            let heading = "## `\(event)`\n"
            let start = try #require(doc.range(of: heading), "no section for \(event)")
            let rest = doc[start.upperBound...]
            let section = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
            for field in fields {
                #expect(section.contains("`\(field.name)`"), "\(event).\(field.name) is not documented")
                for value in field.values ?? [] where !["3.1", "3.1.1", "5.0"].contains(value) {
                    #expect(section.contains("`\(value)`"), "\(event).\(field.name) value \(value) is not documented")
                }
            }
        }
    }
}
