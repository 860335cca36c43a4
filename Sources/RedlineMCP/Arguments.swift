import MCP

/// Checked access to a tool call's arguments; every mistake is an `invalidParams` error.
struct Args {
    let tool: String
    let a: [String: Value]

    init(tool: String, _ a: [String: Value]) {
        self.tool = tool
        self.a = a
    }

    func only(_ names: Set<String>) throws {
        if let extra = a.keys.sorted().first(where: { !names.contains($0) }) {
            throw MCPError.invalidParams("\(tool): unknown argument '\(extra)'")
        }
    }

    func string(_ k: String) throws -> String {
        guard let v = a[k] else { throw MCPError.invalidParams("\(tool): missing argument '\(k)' (a string)") }
        guard let s = v.stringValue, !s.isEmpty else { throw MCPError.invalidParams("\(tool): '\(k)' must be a non-empty string") }
        return s
    }

    func optionalString(_ k: String) throws -> String? {
        guard let v = a[k], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw MCPError.invalidParams("\(tool): '\(k)' must be a string") }
        return s
    }

    func number(_ k: String) throws -> Double {
        guard let v = a[k] else { throw MCPError.invalidParams("\(tool): missing argument '\(k)' (a number)") }
        switch v {
        case .int(let i): return Double(i)
        case .double(let d) where d.isFinite: return d
        default: throw MCPError.invalidParams("\(tool): '\(k)' must be a finite JSON number, not \(v)")
        }
    }

    func strings(_ k: String) throws -> [String] {
        guard let v = a[k] else { throw MCPError.invalidParams("\(tool): missing argument '\(k)' (an array of strings)") }
        guard let arr = v.arrayValue, !arr.isEmpty else { throw MCPError.invalidParams("\(tool): '\(k)' must be a non-empty array of strings") }
        return try arr.map { x in
            guard let s = x.stringValue else { throw MCPError.invalidParams("\(tool): '\(k)' must hold only strings") }
            return s
        }
    }
}
