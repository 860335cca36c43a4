/// A JSON value with a strict parser and a canonical encoder.
///
/// Strict on purpose: invalid UTF-8, duplicate object keys, trailing bytes and
/// nesting deeper than `maxDepth` are errors. The canonical encoding (sorted
/// keys, no spaces, shortest round-tripping numbers) is what audit hashes cover.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    /// Keys in the order they were written.
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public func hash(into h: inout Hasher) { h.combine(encoded()) }

    public subscript(key: String) -> JSON? {
        if case .object(let kv) = self { return kv.first { $0.0 == key }?.1 }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var numberValue: Double? { if case .number(let n) = self { return n } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: [(String, JSON)]? { if case .object(let o) = self { return o } else { return nil } }
    public var isNull: Bool { self == .null }

    /// Builds an object, dropping `nil` members.
    public static func obj(_ members: [(String, JSON?)]) -> JSON {
        .object(members.compactMap { k, v in v.map { (k, $0) } })
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral v: String) { self = .string(v) }
    public init(integerLiteral v: Int) { self = .number(Double(v)) }
    public init(floatLiteral v: Double) { self = .number(v) }
    public init(booleanLiteral v: Bool) { self = .bool(v) }
    public init(arrayLiteral v: JSON...) { self = .array(v) }
    public init(dictionaryLiteral v: (String, JSON)...) { self = .object(v) }
    public init(nilLiteral: ()) { self = .null }
}

public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

// MARK: - Parsing

extension JSON {
    public static let maxDepth = 64

    /// Parses exactly one JSON value from UTF-8 bytes (surrounding white space allowed).
    public static func parse<C: Collection>(_ bytes: C) throws(JSONError) -> JSON where C.Element == UInt8 {
        let buf = Array(bytes)
        guard String(validating: buf, as: UTF8.self) != nil else {
            throw JSONError(message: "invalid UTF-8", offset: firstInvalidUTF8(buf))
        }
        var p = Parser(b: buf)
        p.ws()
        let v = try p.value(depth: 0)
        p.ws()
        guard p.i == buf.count else { throw JSONError(message: "unexpected data after the value", offset: p.i) }
        return v
    }

    public static func parse(_ text: String) throws(JSONError) -> JSON { try parse(Array(text.utf8)) }

    /// Offset of the first byte that breaks UTF-8 (a simple linear check).
    private static func firstInvalidUTF8(_ b: [UInt8]) -> Int {
        var i = 0
        while i < b.count {
            let c = b[i]
            let n: Int
            switch c {
            case 0x00...0x7F: n = 0
            case 0xC2...0xDF: n = 1
            case 0xE0...0xEF: n = 2
            case 0xF0...0xF4: n = 3
            default: return i
            }
            guard i + n < b.count else { return i }
            for k in 1...max(n, 1) where n > 0 {
                if b[i + k] & 0xC0 != 0x80 { return i }
            }
            i += n + 1
        }
        return i
    }

    private struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func ws() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }
        func fail(_ m: String) -> JSONError { JSONError(message: m, offset: i) }

        mutating func value(depth: Int) throws(JSONError) -> JSON {
            guard depth < JSON.maxDepth else { throw fail("nesting deeper than \(JSON.maxDepth)") }
            guard i < b.count else { throw fail("unexpected end of input") }
            switch b[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try lit("true"); return .bool(true)
            case UInt8(ascii: "f"): try lit("false"); return .bool(false)
            case UInt8(ascii: "n"): try lit("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw fail("unexpected character")
            }
        }

        mutating func lit(_ s: String) throws(JSONError) {
            for c in s.utf8 {
                guard i < b.count, b[i] == c else { throw fail("invalid literal") }
                i += 1
            }
        }

        mutating func object(depth: Int) throws(JSONError) -> JSON {
            i += 1
            var kv: [(String, JSON)] = []
            var seen = Set<String>()
            ws()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
            while true {
                ws()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyAt = i
                let k = try string()
                guard seen.insert(k).inserted else { throw JSONError(message: "duplicate key \"\(k)\"", offset: keyAt) }
                ws()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                ws()
                kv.append((k, try value(depth: depth + 1)))
                ws()
                guard i < b.count else { throw fail("unexpected end of input") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
                throw fail("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws(JSONError) -> JSON {
            i += 1
            var out: [JSON] = []
            ws()
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
            while true {
                ws()
                out.append(try value(depth: depth + 1))
                ws()
                guard i < b.count else { throw fail("unexpected end of input") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func hex4() throws(JSONError) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - 48)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - 87)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - 55)
                default: throw fail("bad \\u escape")
                }
                v = v * 16 + d
                i += 1
            }
            return v
        }

        mutating func string() throws(JSONError) -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c < 0x20 { throw fail("control character in string") }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                i += 1
                guard i < b.count else { throw fail("unterminated escape") }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var cp = try hex4()
                    if (0xD800..<0xDC00).contains(cp) {
                        guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { throw fail("lone surrogate") }
                        i += 2
                        let lo = try hex4()
                        guard (0xDC00..<0xE000).contains(lo) else { throw fail("bad surrogate pair") }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(cp) {
                        throw fail("lone surrogate")
                    }
                    guard let scalar = Unicode.Scalar(cp) else { throw fail("bad code point") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw fail("bad escape")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        mutating func number() throws(JSONError) -> Double {
            let start = i
            if b[i] == UInt8(ascii: "-") { i += 1 }
            func digits(_ p: inout Parser) -> Int {
                let s = p.i
                while p.i < p.b.count, (48...57).contains(p.b[p.i]) { p.i += 1 }
                return p.i - s
            }
            guard i < b.count else { throw fail("bad number") }
            if b[i] == UInt8(ascii: "0") { i += 1 } else if digits(&self) == 0 { throw fail("bad number") }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                if digits(&self) == 0 { throw fail("bad number") }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                if digits(&self) == 0 { throw fail("bad number") }
            }
            guard let d = Double(String(decoding: b[start..<i], as: UTF8.self)), d.isFinite else {
                throw JSONError(message: "number out of range", offset: start)
            }
            return d
        }
    }
}

// MARK: - Encoding

extension JSON {
    /// Compact encoding; keys in written order, or sorted when `canonical`.
    public func encoded(canonical: Bool = false) -> String {
        var s = ""
        write(to: &s, canonical: canonical)
        return s
    }

    /// Canonical encoding: sorted keys, no white space. Hashes are computed over this.
    public var canonical: String { encoded(canonical: true) }

    private func write(to s: inout String, canonical: Bool) {
        switch self {
        case .null: s += "null"
        case .bool(let b): s += b ? "true" : "false"
        case .number(let n): s += JSON.format(n)
        case .string(let str): JSON.quote(str, into: &s)
        case .array(let a):
            s += "["
            for (k, v) in a.enumerated() {
                if k > 0 { s += "," }
                v.write(to: &s, canonical: canonical)
            }
            s += "]"
        case .object(let kv):
            s += "{"
            let members = canonical ? kv.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) } : kv
            for (k, (key, v)) in members.enumerated() {
                if k > 0 { s += "," }
                JSON.quote(key, into: &s)
                s += ":"
                v.write(to: &s, canonical: canonical)
            }
            s += "}"
        }
    }

    static func format(_ n: Double) -> String {
        guard n.isFinite else { return "null" }
        if n == n.rounded(), abs(n) < 1e15 { return String(Int64(n)) }
        return String(n)
    }

    static func quote(_ str: String, into s: inout String) {
        s += "\""
        for u in str.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                s += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: s.unicodeScalars.append(u)
            }
        }
        s += "\""
    }
}
