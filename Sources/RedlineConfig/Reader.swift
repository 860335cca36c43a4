import Foundation
import Yams

/// A mapping whose keys have been checked against the allowed set.
struct Fields {
    let node: Node
    private(set) var values: [String: Node] = [:]
    private(set) var keys: [String: Node] = [:]

    init(node: Node) { self.node = node }
    mutating func add(key: String, keyNode: Node, value: Node) {
        values[key] = value
        keys[key] = keyNode
    }
    subscript(_ key: String) -> Node? { values[key] }
    func has(_ key: String) -> Bool { values[key] != nil }
}

/// Reads typed values out of a composed YAML tree and collects every diagnostic.
final class Reader {
    let file: String
    var diagnostics: [ConfigDiagnostic] = []

    init(file: String) { self.file = file }

    func error(_ node: Node?, _ message: String) {
        error(at: node?.mark, message)
    }

    func error(at mark: Mark?, _ message: String) {
        diagnostics.append(ConfigDiagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message))
    }

    func error(line: Int, column: Int, _ message: String) {
        diagnostics.append(ConfigDiagnostic(file: file, line: line, column: column, message: message))
    }

    /// Reads and composes a YAML file; reports syntax errors with their position.
    func compose() -> Node? {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            guard let s = String(data: data, encoding: .utf8) else {
                error(at: nil, "file is not valid UTF-8")
                return nil
            }
            text = s
        } catch {
            self.error(at: nil, "cannot read file: \(Reader.describe(error))")
            return nil
        }
        return compose(text: text)
    }

    func compose(text: String) -> Node? {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                error(at: nil, "file is empty")
                return nil
            }
            return node
        } catch let e as YamlError {
            switch e {
            case .scanner(let context, let problem, let mark, _),
                 .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                let ctx = context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
                error(at: mark, "YAML syntax error: \(problem)\(ctx)")
            case .reader(let problem, let offset, _, let yaml):
                let (line, column) = Reader.position(offset: offset, in: yaml)
                error(line: line, column: column, "YAML reader error: \(problem)")
            case .duplicatedKeysInMapping(let duplicates, let context):
                let (line, column) = Reader.secondOccurrence(of: duplicates.first ?? "", after: context.mark, in: text)
                error(line: line, column: column, "key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) appears more than once in this mapping (first at \(context.mark.line):\(context.mark.column))")
            default:
                error(at: nil, "YAML error: \(e)")
            }
            return nil
        } catch {
            self.error(at: nil, "YAML error: \(Reader.describe(error))")
            return nil
        }
    }

    /// Where a duplicated key occurs again: later on the same line (flow mapping) or at the same
    /// column of a later line (block mapping). Falls back to the first occurrence.
    static func secondOccurrence(of key: String, after first: Mark, in text: String) -> (Int, Int) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        let k = Array(key.unicodeScalars)
        func keyAt(_ l: [Unicode.Scalar], _ i: Int) -> Bool {
            guard i >= 0, i + k.count < l.count, Array(l[i..<(i + k.count)]) == k else { return false }
            var j = i + k.count
            while j < l.count, l[j] == " " { j += 1 }
            return j < l.count && l[j] == ":"
        }
        guard first.line >= 1, first.line <= lines.count else { return (first.line, first.column) }
        let l0 = lines[first.line - 1]
        var i = first.column - 1 + k.count
        while i < l0.count {
            if keyAt(l0, i), i > 0, [",", "{", " "].contains(l0[i - 1]) { return (first.line, i + 1) }
            i += 1
        }
        for n in first.line..<lines.count {
            let l = lines[n]
            let col = first.column - 1
            guard col < l.count else {
                if let firstNonSpace = l.firstIndex(where: { $0 != " " }), firstNonSpace < col, l[firstNonSpace] != "#" { break }
                continue
            }
            if l[0..<col].allSatisfy({ $0 == " " }), keyAt(l, col) { return (n + 1, col + 1) }
            // A line starting left of the key (a new list item or a parent key) ends the mapping.
            if let firstNonSpace = l.firstIndex(where: { $0 != " " }), firstNonSpace < col, l[firstNonSpace] != "#" { break }
        }
        return (first.line, first.column)
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? CocoaError, let path = e.filePath { return "\(path): \(e.localizedDescription)" }
        return "\(error)"
    }

    static func position(offset: Int?, in yaml: String) -> (Int, Int) {
        guard let offset else { return (1, 1) }
        var line = 1, column = 1, i = 0
        for u in yaml.unicodeScalars {
            if i >= offset { break }
            if u == "\n" { line += 1; column = 1 } else { column += 1 }
            i += 1
        }
        return (line, column)
    }

    // MARK: typed access

    /// A mapping with only `allowed` keys and every `required` key. Reports the rest.
    func fields(_ node: Node, _ what: String, allowed: [String], required: [String] = [],
                special: [String: String] = [:]) -> Fields? {
        guard case .mapping(let m) = node else {
            error(node, "\(what) must be a mapping, not \(kind(node))")
            return nil
        }
        var f = Fields(node: node)
        for (k, v) in m {
            guard case .scalar(let s) = k else {
                error(k, "\(what) keys must be plain strings")
                continue
            }
            let key = s.string
            if let why = special[key] {
                error(k, why)
            } else if !allowed.contains(key) {
                let near = allowed.filter { Reader.distance($0, key) <= 2 }.sorted { Reader.distance($0, key) < Reader.distance($1, key) }
                let hint = near.first.map { "did you mean '\($0)'? " } ?? ""
                error(k, "unknown key '\(key)' in \(what) (\(hint)allowed: \(allowed.joined(separator: ", ")))")
            } else {
                f.add(key: key, keyNode: k, value: v)
            }
        }
        for r in required where !f.has(r) {
            error(node, "\(what) is missing '\(r)'")
        }
        return f
    }

    /// Levenshtein distance, for "did you mean" hints.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }

    func kind(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            if s.style == .plain {
                if isNull(s) { return "null" }
                if Int(s.string) != nil { return "a number (\(s.string))" }
                if Double(s.string) != nil { return "a number (\(s.string))" }
                if ["true", "false"].contains(s.string) { return "a boolean" }
            }
            return "a string ('\(s.string)')"
        }
    }

    private func isNull(_ s: Node.Scalar) -> Bool {
        s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard case .sequence(let s) = node else {
            error(node, "\(what) must be a list, not \(kind(node))")
            return nil
        }
        return Array(s)
    }

    /// A non-empty string.
    func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let s) = node, !isNull(s) else {
            error(node, "\(what) must be a string, not \(kind(node))")
            return nil
        }
        guard !s.string.isEmpty else {
            error(node, "\(what) must not be empty")
            return nil
        }
        return s.string
    }

    /// An identifier: letters, digits, '-' and '_' (no '.', '*' or spaces: ids are joined as DEVICE.POINT).
    func identifier(_ node: Node, _ what: String) -> String? {
        guard let s = string(node, what) else { return nil }
        let ok = s.unicodeScalars.allSatisfy { c in
            (c.properties.isAlphabetic && c.isASCII) || ("0"..."9").contains(c) || c == "-" || c == "_"
        }
        guard ok else {
            error(node, "\(what) '\(s)' may contain only letters, digits, '-' and '_'")
            return nil
        }
        return s
    }

    func int(_ node: Node, _ what: String, in range: ClosedRange<Int>? = nil) -> Int? {
        guard case .scalar(let s) = node, s.style == .plain, let v = Int(s.string) else {
            error(node, "\(what) must be an integer, not \(kind(node))")
            return nil
        }
        if let range, !range.contains(v) {
            error(node, "\(what) \(v) is outside \(range.lowerBound)-\(range.upperBound)")
            return nil
        }
        return v
    }

    func double(_ node: Node, _ what: String) -> Double? {
        guard case .scalar(let s) = node, s.style == .plain, let v = Double(s.string), v.isFinite else {
            error(node, "\(what) must be a finite number, not \(kind(node))")
            return nil
        }
        return v
    }

    func bool(_ node: Node, _ what: String) -> Bool? {
        guard case .scalar(let s) = node, s.style == .plain, s.string == "true" || s.string == "false" else {
            error(node, "\(what) must be true or false, not \(kind(node))")
            return nil
        }
        return s.string == "true"
    }

    func stringList(_ node: Node, _ what: String) -> [(String, Node)] {
        guard let items = sequence(node, what) else { return [] }
        return items.compactMap { n in string(n, "an entry of \(what)").map { ($0, n) } }
    }
}
