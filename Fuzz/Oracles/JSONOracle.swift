import Foundation
#if !REDLINE_FUZZ_SINGLE_MODULE
import RedlineCore
#endif

/// `json`: RedlineCore's strict parser and canonical encoder.
///
/// - parse, encode, re-parse is the identity (strings compared byte for byte, not by
///   Unicode equivalence), and encoding the re-parsed value gives the same bytes;
/// - the canonical form is a fixed point (parse then canonical gives it back);
/// - values equal under `==` hash equally (Hashable contract), including Unicode-equivalent strings;
/// - an object with a duplicate key is always refused: built from the input with the key written
///   two ways (plain and `\u`-escaped), and by adding a repeated key to any object the input parses to.
public enum JSONOracle {
    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        var parsed: JSON?
        do { parsed = try JSON.parse(input) } catch { parsed = nil }
        if let v = parsed { try roundTrip(v) }
        try duplicateFromBytes(input, value: parsed)
        if let v = parsed { try duplicateInParsed(v) }
    }

    static func roundTrip(_ v: JSON) throws(OracleFailure) {
        let e = v.encoded()
        let v2: JSON
        do { v2 = try JSON.parse(Array(e.utf8)) } catch { throw OracleFailure("encoding does not parse: \(error): \(e)") }
        guard identical(v, v2) else { throw OracleFailure("parse(encode(v)) differs from v: \(e)") }
        guard v2.encoded() == e else { throw OracleFailure("encode(parse(encode(v))) differs: \(e) vs \(v2.encoded())") }
        let c = v.canonical
        let c2: JSON
        do { c2 = try JSON.parse(Array(c.utf8)) } catch { throw OracleFailure("canonical form does not parse: \(error): \(c)") }
        guard c2.canonical == c else { throw OracleFailure("canonical form is not a fixed point: \(c) vs \(c2.canonical)") }
        guard v2.canonical == c else { throw OracleFailure("canonical form changed by a round trip") }
        guard v == v2, v.hashValue == v2.hashValue else { throw OracleFailure("equal values hash differently: \(e)") }
        let nfd = decomposed(v)
        if nfd == v, nfd.hashValue != v.hashValue {
            throw OracleFailure("Unicode-equivalent values are == but hash differently: \(e)")
        }
    }

    /// Structural identity: strings by their UTF-8 bytes, numbers by value.
    static func identical(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return Array(x.utf8) == Array(y.utf8)
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { Array($0.0.utf8) == Array($1.0.utf8) && identical($0.1, $1.1) }
        default: return false
        }
    }

    static func decomposed(_ v: JSON) -> JSON {
        switch v {
        case .string(let s): return .string(s.decomposedStringWithCanonicalMapping)
        case .array(let a): return .array(a.map(decomposed))
        case .object(let kv): return .object(kv.map { ($0.0.decomposedStringWithCanonicalMapping, decomposed($0.1)) })
        default: return v
        }
    }

    /// A JSON string literal written independently of RedlineCore's encoder; `escapeAll` writes every
    /// scalar as `\uXXXX` (surrogate pairs above the BMP).
    static func literal(_ s: String, escapeAll: Bool) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            if escapeAll || u.value < 0x20 || u == "\"" || u == "\\" {
                if u.value >= 0x10000 {
                    let v = u.value - 0x10000
                    out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                } else {
                    out += hex4(u.value)
                }
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    static func hex4(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - h.count)) + h
    }

    static func duplicateFromBytes(_ input: [UInt8], value: JSON?) throws(OracleFailure) {
        var r = InputReader(input)
        let depth = Int(r.byte() % 8)
        let keyLen = Int(r.byte() % 16)
        let key = String(decoding: r.take(keyLen), as: UTF8.self)
        let member = value?.encoded() ?? "null"
        let other = key == "x" ? "\"y\":0" : "\"x\":0"
        let text = String(repeating: "[", count: depth)
            + "{" + literal(key, escapeAll: false) + ":" + member + "," + other + "," + literal(key, escapeAll: true) + ":1}"
            + String(repeating: "]", count: depth)
        try mustRefuseDuplicate(text)
    }

    static func mustRefuseDuplicate(_ text: String) throws(OracleFailure) {
        do {
            _ = try JSON.parse(Array(text.utf8))
            throw OracleFailure("an object with a duplicate key was accepted: \(text)")
        } catch let e as OracleFailure {
            throw e
        } catch {
            // Refused; deep values may be refused for their depth first, which is a refusal too.
        }
    }

    /// Adds a repeated key to the first object of `v` (depth first) and checks the encoding is refused.
    static func duplicateInParsed(_ v: JSON) throws(OracleFailure) {
        func inject(_ v: JSON) -> JSON? {
            switch v {
            case .object(let kv):
                if let first = kv.first { return .object(kv + [(first.0, .null)]) }
                for (i, m) in kv.enumerated() {
                    if let w = inject(m.1) { var c = kv; c[i].1 = w; return .object(c) }
                }
                return nil
            case .array(let a):
                for (i, m) in a.enumerated() {
                    if let w = inject(m) { var c = a; c[i] = w; return .array(c) }
                }
                return nil
            default: return nil
            }
        }
        guard let dup = inject(v) else { return }
        try mustRefuseDuplicate(dup.encoded())
    }
}
