import Foundation
import Yams

/// Reads the YAML configuration file into `ConfigFile`, rejecting unknown keys with their path and
/// line so a typo never silently falls back to a default.
public enum ConfigLoader {
    public static func load(path: String) throws(ConfigError) -> ConfigFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, "cannot read the configuration file: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ConfigError) -> ConfigFile {
        let node: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else { return ConfigFile() }
            node = composed
        } catch let error as YamlError {
            throw ConfigError(file: file, line: line(of: error), "invalid YAML: \(summary(of: error))")
        } catch {
            throw ConfigError(file: file, "invalid YAML: \(error)")
        }
        guard node.mapping != nil else {
            throw ConfigError(file: file, line: node.mark?.line, "the configuration must be a mapping of sections (listeners, auth, limits, ...)")
        }
        let config: ConfigFile
        do {
            config = try YAMLDecoder().decode(ConfigFile.self, from: node)
        } catch let error as DecodingError {
            throw describe(error, node: node, file: file)
        } catch {
            throw ConfigError(file: file, "\(error)")
        }
        try rejectUnknownKeys(node: node, decoded: config, file: file)
        return config
    }

    // MARK: Unknown keys

    /// Re-encodes what was decoded and compares it with the document: a key in the document that
    /// did not survive decoding is not part of the schema.
    private static func rejectUnknownKeys(node: Node, decoded: ConfigFile, file: String) throws(ConfigError) {
        let known: Any
        do {
            let data = try JSONEncoder().encode(decoded)
            known = try JSONSerialization.jsonObject(with: data)
        } catch {
            return
        }
        try compare(node, known, path: "", file: file)
    }

    private static func compare(_ node: Node, _ known: Any, path: String, file: String) throws(ConfigError) {
        switch node {
        case .mapping(let mapping):
            let dict = known as? [String: Any] ?? [:]
            for (keyNode, valueNode) in mapping {
                let key = keyNode.string ?? "\(keyNode)"
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if case .scalar(let scalar) = valueNode, scalar.string == "~" || scalar.string == "null" || scalar.string.isEmpty,
                   scalar.style == .plain {
                    continue
                }
                guard let child = dict[key] else {
                    throw ConfigError(file: file, line: keyNode.mark?.line, key: childPath, "unknown key",
                                      fix: "check the spelling against the configuration reference in README.md")
                }
                try compare(valueNode, child, path: childPath, file: file)
            }
        case .sequence(let sequence):
            let array = known as? [Any] ?? []
            for (i, element) in sequence.enumerated() where i < array.count {
                try compare(element, array[i], path: "\(path)[\(i)]", file: file)
            }
        default:
            break
        }
    }

    // MARK: Error messages

    private static func describe(_ error: DecodingError, node: Node, file: String) -> ConfigError {
        let (path, message): ([any CodingKey], String) = switch error {
        case .typeMismatch(let type, let ctx): (ctx.codingPath, "expected \(typeName(type))")
        case .valueNotFound(let type, let ctx): (ctx.codingPath, "missing value, expected \(typeName(type))")
        case .keyNotFound(let key, let ctx): (ctx.codingPath + [key], "required key is missing")
        case .dataCorrupted(let ctx): (ctx.codingPath, ctx.debugDescription)
        @unknown default: ([], "\(error)")
        }
        let keyPath = render(path)
        return ConfigError(file: file, line: self.node(at: path, in: node)?.mark?.line, key: keyPath.isEmpty ? nil : keyPath, message)
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "\(type)".contains("Array") ? "a list" : "a mapping"
        }
    }

    private static func render(_ path: [any CodingKey]) -> String {
        var out = ""
        for key in path {
            if let i = key.intValue { out += "[\(i)]" } else { out += out.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return out
    }

    private static func node(at path: [any CodingKey], in root: Node) -> Node? {
        var current: Node? = root
        for key in path {
            if let i = key.intValue, let seq = current?.sequence, i < seq.count {
                current = seq[i]
            } else if let map = current?.mapping {
                current = map[key.stringValue] ?? current
            }
        }
        return current
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }

    private static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): problem
        default: "\(error)"
        }
    }
}
