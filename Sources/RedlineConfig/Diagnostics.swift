/// One configuration error, pointing at the offending YAML node.
public struct ConfigDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column (in Unicode scalars, as libyaml counts).
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `FILE:LINE:COLUMN: message`
    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Every error found in a configuration (never just the first).
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension Array where Element == ConfigDiagnostic {
    /// Sorted by file, line and column; duplicates removed; order of discovery kept for ties.
    func ordered() -> [ConfigDiagnostic] {
        var seen = Set<ConfigDiagnostic>()
        let unique = filter { seen.insert($0).inserted }
        return unique.enumerated().sorted { a, b in
            if a.element.file != b.element.file { return a.element.file < b.element.file }
            if a.element.line != b.element.line { return a.element.line < b.element.line }
            if a.element.column != b.element.column { return a.element.column < b.element.column }
            return a.offset < b.offset
        }.map(\.element)
    }
}
