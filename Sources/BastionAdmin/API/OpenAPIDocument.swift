import Foundation

/// `/api/v1/openapi.json`: an OpenAPI 3.1 description of the routes in `APIRoutes.specs`.
enum OpenAPIDocument {
    static func json() -> String {
        var paths: [String: [String: Any]] = [:]
        for spec in APIRoutes.specs {
            var operation: [String: Any] = [
                "summary": spec.summary,
                "operationId": "\(spec.method.lowercased())\(spec.path.replacingOccurrences(of: "/api/v1", with: "").split(whereSeparator: { !$0.isLetter }).map { $0.capitalized }.joined())",
            ]
            var responses: [String: Any] = [
                "200": ["description": "OK", "content": ["application/json": [:] as [String: Any]]],
                "400": ["description": "Bad input (the body says why)"],
                "404": ["description": "Unknown route, object, or provider not configured"],
            ]
            if let role = spec.role {
                operation["security"] = [["bearer": [] as [String]]]
                operation["x-bastion-role"] = role.rawValue
                responses["401"] = ["description": "No or an unknown bearer token"]
                responses["403"] = ["description": "The token's role is below \(role.rawValue)"]
            }
            if spec.method == "POST" {
                operation["requestBody"] = ["required": true, "content": ["application/json": [:] as [String: Any]]]
                responses["415"] = ["description": "The body is not application/json"]
            }
            let parameters = spec.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { part -> [String: Any] in
                ["name": String(part.dropFirst().dropLast()), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            operation["responses"] = responses
            paths[spec.path, default: [:]][spec.method.lowercased()] = operation
        }
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "Bastion admin API", "version": "1"],
            "paths": paths,
            "components": ["securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]]],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
