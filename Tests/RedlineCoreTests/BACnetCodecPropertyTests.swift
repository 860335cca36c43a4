import Testing
import PropertyBased
@testable import RedlineCore

/// Random BACnet requests, replies and values from one seed (SplitMix64, so `.fixedSeed`
/// reproduces a failure).
struct BACnetCase: CustomStringConvertible {
    var seed: UInt64
    var request: BACnetConfirmedRequest
    /// The answer a correct server gives to `request`.
    var answer: BACnetResponse

    static let gen = Generator<BACnetCase, Shrink.None<BACnetCase>>(run: { rng in BACnetCase(seed: rng.next()) })

    var description: String { "seed \(seed): \(request) -> \(answer)" }

    static func value(_ r: inout SplitMix64) -> BACnetValue {
        switch Int.random(in: 0..<10, using: &r) {
        case 0: return .null
        case 1: return .boolean(Bool.random(using: &r))
        case 2:
            let bits = UInt64(Int.random(in: 0...64, using: &r))
            return .unsigned(bits == 64 ? UInt64.random(in: 0...UInt64.max, using: &r) : UInt64.random(in: 0...(UInt64(1) << bits), using: &r))
        case 3: return .signed([Int64.min, Int64.max, -1, 0, 127, -128, 128, -129, 32767, -32769][Int.random(in: 0..<10, using: &r)]
                              &+ (Bool.random(using: &r) ? 0 : Int64.random(in: -1000...1000, using: &r)))
        case 4:
            var f: Float
            repeat { f = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &r)) } while f.isNaN
            return .real(Bool.random(using: &r) ? f : Float(Int.random(in: -400...400, using: &r)) / 2)
        case 5:
            var d: Double
            repeat { d = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &r)) } while d.isNaN
            return .double(d)
        case 6: return .enumerated(UInt32.random(in: 0...UInt32.max, using: &r) >> UInt32.random(in: 0...31, using: &r))
        case 7: return .bitString((0..<Int.random(in: 0...20, using: &r)).map { _ in Bool.random(using: &r) })
        case 8:
            let chars = Array("aZ09 -_.°é€😀")
            return .characterString(String((0..<Int.random(in: 0...300, using: &r)).map { _ in chars[Int.random(in: 0..<chars.count, using: &r)] }))
        default: return .objectId(type: UInt16.random(in: 0...1023, using: &r), instance: UInt32.random(in: 0...0x3F_FFFF, using: &r))
        }
    }

    static func object(_ r: inout SplitMix64) -> BACnetObjectId {
        let types = BACnetObjectType.allCases
        return BACnetObjectId(type: types[Int.random(in: 0..<types.count, using: &r)],
                              instance: Bool.random(using: &r) ? UInt32.random(in: 0...20, using: &r) : UInt32.random(in: 0...0x3F_FFFF, using: &r))
    }

    static func property(_ r: inout SplitMix64) -> BACnetPropertyId {
        let ps = BACnetPropertyId.allCases
        return ps[Int.random(in: 0..<ps.count, using: &r)]
    }

    static func index(_ r: inout SplitMix64) -> UInt32? {
        switch Int.random(in: 0..<4, using: &r) {
        case 0: return UInt32.random(in: 0...16, using: &r)
        case 1: return UInt32.random(in: 0...UInt32.max, using: &r)
        default: return nil
        }
    }

    static func address(_ r: inout SplitMix64) -> BACnetPointAddress {
        BACnetPointAddress(object: object(&r), property: property(&r), arrayIndex: index(&r))
    }

    static func values(_ r: inout SplitMix64) -> [BACnetValue] {
        (0..<(Int.random(in: 0..<5, using: &r) == 0 ? Int.random(in: 0...16, using: &r) : 1)).map { _ in value(&r) }
    }

    static func error(_ r: inout SplitMix64) -> BACnetError {
        BACnetError(errorClass: UInt32.random(in: 0...7, using: &r), errorCode: UInt32.random(in: 0...UInt32.max, using: &r) >> UInt32.random(in: 0...31, using: &r))
    }

    init(seed: UInt64) {
        self.seed = seed
        var r = SplitMix64(state: seed)
        let id = UInt8.random(in: 0...255, using: &r)
        let req: BACnetRequest
        switch Int.random(in: 0..<4, using: &r) {
        case 0: req = .readProperty(Self.address(&r))
        case 1:
            req = .readPropertyMultiple((0..<Int.random(in: 1...4, using: &r)).map { _ in
                BACnetReadAccessSpec(object: Self.object(&r), properties: (0..<Int.random(in: 1...5, using: &r)).map { _ in
                    BACnetPropertyRef(Self.property(&r), arrayIndex: Self.index(&r))
                })
            })
        case 2: req = .writeProperty(Self.address(&r), value: Self.value(&r), priority: Bool.random(using: &r) ? BACnetPriority(Int.random(in: 1...16, using: &r)) : nil)
        default:
            let cancel = Bool.random(using: &r)
            req = .subscribeCOV(processId: UInt32.random(in: 0...UInt32.max, using: &r), object: Self.object(&r),
                                confirmed: cancel ? nil : Bool.random(using: &r), lifetimeSeconds: cancel ? nil : UInt32.random(in: 0...86400, using: &r))
        }
        request = BACnetConfirmedRequest(invokeId: id, req)
        // A correct server's answer: mostly the positive one, sometimes an Error, Reject or Abort.
        switch Int.random(in: 0..<8, using: &r) {
        case 0: answer = .error(invokeId: id, service: req.service, Self.error(&r))
        case 1: answer = .reject(invokeId: id, reason: UInt8.random(in: 0...9, using: &r))
        case 2: answer = .abort(invokeId: id, reason: UInt8.random(in: 0...11, using: &r), server: Bool.random(using: &r))
        default:
            switch req {
            case .readProperty(let a): answer = .readPropertyAck(invokeId: id, address: a, values: Self.values(&r))
            case .readPropertyMultiple(let specs):
                answer = .readPropertyMultipleAck(invokeId: id, results: specs.map { s in
                    BACnetReadAccessResult(object: s.object, results: s.properties.map { p in
                        (p, Int.random(in: 0..<4, using: &r) == 0 ? .failure(.error(Self.error(&r))) : .success(Self.values(&r)))
                    })
                })
            case .writeProperty, .subscribeCOV: answer = .simpleAck(invokeId: id, service: req.service)
            }
        }
    }

    /// What `BACnetReply.check` must give for `answer`, from the answer alone.
    var expected: Result<BACnetReply.Answer, BACnetFault> {
        switch answer {
        case .simpleAck: return .success(.acknowledged)
        case .readPropertyAck(_, _, let v): return .success(.values(v))
        case .readPropertyMultipleAck(_, let results):
            return .success(.results(results.flatMap { res in
                res.results.map { BACnetPropertyResult(address: BACnetPointAddress(object: res.object, property: $0.ref.property, arrayIndex: $0.ref.arrayIndex), result: $0.value) }
            }))
        case .error(_, _, let e): return .failure(.error(e))
        case .reject(_, let reason): return .failure(.reject(reason: reason))
        case .abort(_, let reason, let s): return .failure(.abort(reason: reason, server: s))
        case .segmentedAck: return .failure(.segmented)
        }
    }
}

@Suite("BACnet codec: properties")
struct BACnetCodecPropertyTests {
    @Test func requestsRoundTripThroughAServerParse() async {
        await propertyCheck(count: 3000, input: BACnetCase.gen) { c in
            let frame = c.request.encode()
            guard frame.count <= BACnetCodec.maxFrame else { return }
            #expect(BACnetCodec.parseRequest(frame) == .request(c.request), "\(c)")
        }
    }

    @Test func everyEncodedRequestIsAWhitelistedUnsegmentedConfirmedRequest() async {
        await propertyCheck(count: 3000, input: BACnetCase.gen) { c in
            let f = c.request.encode()
            #expect(f[0] == 0x81 && f[1] == 0x0a && Int(f[2]) << 8 | Int(f[3]) == f.count)
            #expect(f[4] == 0x01 && f[5] == 0x04)
            #expect(f[6] == 0x00, "confirmed request, no SEG, no MOR, SA = 0 (no segmented reply accepted)")
            #expect(f[8] == c.request.invokeId)
            #expect([5, 12, 14, 15].contains(f[9]), "service \(f[9])")
        }
    }

    @Test func aCorrectAnswerChecksToItsContent() async {
        await propertyCheck(count: 3000, input: BACnetCase.gen) { c in
            let frame = c.answer.encode()
            guard frame.count <= BACnetCodec.maxFrame else { return }
            #expect(BACnetCodec.parseResponse(frame) == .success(c.answer), "\(c)")
            #expect(BACnetReply.check(request: c.request, reply: frame) == c.expected, "\(c)")
        }
    }

    @Test func theAnswerToAnotherRequestNeverChecksAsSuccess() async {
        await propertyCheck(count: 3000, input: BACnetCase.gen, BACnetCase.gen) { a, b in
            let frame = b.answer.encode()
            guard frame.count <= BACnetCodec.maxFrame else { return }
            let result = BACnetReply.check(request: a.request, reply: frame)
            guard case .success(let got) = result else { return }
            // Believed only if b's answer really answers a's request: the same invoke id, the
            // same service, and an echo of what a asked.
            #expect(a.request.invokeId == b.request.invokeId, "\(a) / \(b)")
            #expect(a.request.request.service == b.request.request.service, "\(a) / \(b)")
            switch (a.request.request, b.answer) {
            case (.readProperty(let x), .readPropertyAck(_, let y, _)): #expect(x == y)
            case (.readPropertyMultiple(let specs), .readPropertyMultipleAck(_, let results)):
                #expect(specs.map(\.object) == results.map(\.object))
                #expect(specs.map(\.properties) == results.map { $0.results.map { $0.ref } })
            case (.writeProperty, .simpleAck(_, let s)), (.subscribeCOV, .simpleAck(_, let s)): #expect(s == a.request.request.service)
            default: Issue.record("believed \(got) for \(a) from \(b)")
            }
        }
    }

    @Test func valuesRoundTrip() async {
        await propertyCheck(count: 5000, input: BACnetCase.gen) { c in
            var r = SplitMix64(state: c.seed)
            let v = BACnetCase.value(&r)
            var w = BACnetWriter()
            w.application(v)
            var rd = BACnetReader(w.bytes[...])
            let back = try? rd.application()
            #expect(back == v, "\(v) -> \(w.bytes)")
            #expect(rd.atEnd)
        }
    }

    @Test func flippingAnyByteOfAGoldenReplyNeverYieldsABeliefAboutAnotherQuestion() {
        // Exhaustive over each golden reply: every byte, every value.
        let cases: [(BACnetConfirmedRequest, [UInt8])] = [
            (BACnetGolden.readProperty.0, BACnetGolden.readAck21_5),
            (BACnetGolden.write21_5at9.0, BACnetGolden.writeAck),
        ]
        for (req, reply) in cases {
            for i in reply.indices {
                for b in 0...255 where UInt8(b) != reply[i] {
                    var f = reply
                    f[i] = UInt8(b)
                    guard case .success(let answer) = BACnetReply.check(request: req, reply: f) else { continue }
                    // Only the NPDU control's priority and expecting-reply bits (byte 5) and the
                    // value (its tag and four bytes, 17-21 of the RP ack) may change and still be
                    // believed: never the invoke id, the service, the object or the property.
                    #expect(i == 5 || (reply.count > 9 && (17...21).contains(i)), "byte \(i) = \(b): \(answer)")
                    if i == 5 { #expect(b & ~0x07 == 0) }
                }
            }
        }
    }
}
