import Testing
@testable import RedlineCore

@Suite("Strict JSON") struct JSONTests {
    func parse(_ s: String) throws(JSONError) -> JSON { try JSON.parse(s) }
    func rejects(_ bytes: [UInt8]) -> Bool { (try? JSON.parse(bytes)) == nil }

    @Test func roundTrip() throws {
        let text = #"{"jsonrpc":"2.0","id":7,"method":"points.write","params":{"id":"sra-door.lock","value":1,"reason":"l\u00e9gitime \"ok\"\n","tags":[true,false,null,-0.25,1e-7,12345678901234567890]}}"#
        let v = try parse(text)
        #expect(v["method"]?.stringValue == "points.write")
        #expect(v["params"]?["value"]?.numberValue == 1)
        #expect(v["params"]?["reason"]?.stringValue == "légitime \"ok\"\n")
        let again = try JSON.parse(v.encoded())
        #expect(again == v)
        #expect(try JSON.parse(v.canonical) == JSON.parse(again.canonical))
        #expect(again.canonical == v.canonical)
        // Written order is kept by the plain encoding.
        #expect(v.encoded().hasPrefix(#"{"jsonrpc":"2.0","id":7,"method""#))
    }

    @Test func canonicalKeyOrder() throws {
        let v = try parse(#"{ "b" : 1, "a" : {"z":[1, 2], "y": "x"}, "B": null, "é": 0, "aa": true }"#)
        #expect(v.canonical == #"{"B":null,"a":{"y":"x","z":[1,2]},"aa":true,"b":1,"é":0}"#)
        #expect(JSON.object([("b", 1), ("a", 2)]).canonical == JSON.object([("a", 2), ("b", 1)]).canonical)
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#, #"{"a":1,"b":{"c":1,"c":1}}"#, #"{"\u0061":1,"a":2}"#,
    ])
    func duplicateKeysRejected(text: String) {
        #expect(throws: JSONError.self) { try JSON.parse(text) }
    }

    @Test func invalidUTF8Rejected() {
        let bad: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xE2, 0x82, 0x22],
            [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0x80, 0x22],
        ]
        for b in bad { #expect(rejects(b), "\(b)") }
        do {
            _ = try JSON.parse([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFE, 0x22, 0x7D])
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.message == "invalid UTF-8")
            #expect(error.offset == 6)
        }
        #expect(!rejects(Array("\"é€😀\"".utf8)))
    }

    @Test func depthLimit() {
        let ok = String(repeating: "[", count: JSON.maxDepth) + String(repeating: "]", count: JSON.maxDepth)
        #expect((try? JSON.parse(ok)) != nil)
        let deep = String(repeating: "[", count: JSON.maxDepth + 1) + String(repeating: "]", count: JSON.maxDepth + 1)
        #expect(throws: JSONError.self) { try JSON.parse(deep) }
        let objs = String(repeating: #"{"a":"#, count: 100_000)
        #expect(throws: JSONError.self) { try JSON.parse(objs) }
    }

    @Test func numbers() throws {
        let good: [(String, Double)] = [("0", 0), ("-0", 0), ("1", 1), ("-12.5", -12.5), ("1e3", 1000), ("1E+3", 1000),
                                        ("2.5e-3", 0.0025), ("22.5", 22.5), ("0.1", 0.1), ("1.7976931348623157e308", .greatestFiniteMagnitude)]
        for (t, v) in good { #expect(try parse(t).numberValue == v, "\(t)") }
        for t in ["01", "+1", ".5", "1.", "1e", "1e+", "-", "--1", "0x10", "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1 2"] {
            #expect(throws: JSONError.self, "\(t)") { try JSON.parse(t) }
        }
        // Shortest round-tripping encodings, integral values without ".0".
        for v in [0.1, 22.5, -0.25, 1e-7, .leastNonzeroMagnitude, 1e300, 123456789012345, 1e15, 20.9, 0.04] {
            let e = JSON.number(v).encoded()
            #expect(try parse(e).numberValue == v, "\(v) -> \(e)")
        }
        #expect(JSON.number(1).encoded() == "1")
        #expect(JSON.number(-3).encoded() == "-3")
        #expect(JSON.number(.nan).encoded() == "null")
    }

    @Test func escapesAndSurrogates() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#).stringValue == "\"\\/\u{8}\u{c}\n\r\t")
        #expect(try parse(#""\u00e9\u20AC""#).stringValue == "é€")
        #expect(try parse(#""\ud83d\ude00""#).stringValue == "😀")
        #expect(try parse(#""\u0000""#).stringValue == "\u{0}")
        for t in [#""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\u12""#, #""\x""#, #""\u12G4""#,
                  "\"a\u{1}b\"", "\"tab\there\"", #""unterminated"#, #""\"#] {
            #expect(throws: JSONError.self, "\(t)") { try JSON.parse(t) }
        }
        // Control characters are escaped on output and survive a round trip.
        let s = JSON.string("a\u{0}\u{1f}\"\\\n\t😀é")
        let e = s.encoded()
        #expect(!e.unicodeScalars.contains { $0.value < 0x20 })
        #expect(try JSON.parse(e) == s)
    }

    @Test func structureErrors() {
        for t in ["", " ", "{", "[1,]", "[1 2]", #"{"a" 1}"#, #"{"a":1,}"#, "{1:2}", "tru", "nul", "[1]x", "{}{}",
                  #"{"a":1"#, "\u{FEFF}{}"] {
            #expect(throws: JSONError.self, "\(t)") { try JSON.parse(t) }
        }
        #expect((try? JSON.parse(" \t\r\n{} \n")) == JSON.object([]))
    }
}
