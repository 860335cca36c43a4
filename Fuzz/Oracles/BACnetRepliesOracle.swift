#if !REDLINE_FUZZ_SINGLE_MODULE
import RedlineCore
#endif

/// `bacnet-replies`: BACnetReply.check (what the BACnet/IP backend believes) never believes a
/// reply that does not answer the request, and believes every correct answer with its content.
///
/// Input: one byte of kind and mode, a request (ReadProperty, ReadPropertyMultiple,
/// WriteProperty or SubscribeCOV, from the bytes), then by mode: raw reply bytes; a correct
/// answer; a correct answer with one byte changed; or the correct answer to another request.
/// Checks, beyond "does not crash":
/// - a success's frame carries the request's invoke id and service (read from the bytes here,
///   not through the codec), as a Simple-ACK for a write or subscription and a Complex-ACK for
///   a read; a ReadProperty success echoes the object, property and index asked (decoded here
///   by an independent reader of the three context tags);
/// - a correct answer gives exactly its content (values, per-property results, or the typed
///   fault of an Error, Reject, Abort or segmented reply);
/// - the correct answer to another request is believed only when the two ask the same question
///   (same invoke id, service, and object/property/index for reads).
public enum BACnetRepliesOracle {
    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        var r = InputReader(input)
        let b0 = r.byte()
        let mode = (b0 >> 2) & 3
        let answerKind = b0 >> 4
        let a = request(&r, kind: b0 & 3)
        let reply: [UInt8]
        var expected: Result<BACnetReply.Answer, BACnetFault>?
        switch mode {
        case 0:
            reply = r.rest
        case 1, 2:
            let pos = Int(r.u16()), newByte = r.byte()
            let (resp, want) = answer(to: a, kind: answerKind, &r)
            var f = resp.encode()
            if mode == 2, !f.isEmpty, f[pos % f.count] != newByte {
                f[pos % f.count] = newByte
            } else if f.count <= BACnetCodec.maxFrame {
                expected = want
            }
            reply = f
        default:
            let b = request(&r, kind: r.byte() & 3)
            let (resp, want) = answer(to: b, kind: answerKind, &r)
            reply = resp.encode()
            if sameQuestion(a, b), reply.count <= BACnetCodec.maxFrame { expected = want }
        }

        let got = BACnetReply.check(request: a, reply: reply)
        if let expected {
            guard got == expected else { throw OracleFailure("correct answer: got \(got), expected \(expected): \(a) reply \(reply)") }
        }
        guard case .success(let answer) = got else { return }
        // Independent of the codec: the frame's header bytes.
        guard reply.count >= 9, reply[0] == 0x81, reply[1] == 0x0a, Int(reply[2]) << 8 | Int(reply[3]) == reply.count,
              reply[4] == 1, reply[5] & 0xF8 == 0 else {
            throw OracleFailure("believed a frame with a bad BVLL/NPDU header: \(reply)")
        }
        guard reply[7] == a.invokeId else { throw OracleFailure("believed invoke id \(reply[7]) for \(a.invokeId): \(reply)") }
        guard reply[8] == a.request.service.rawValue else { throw OracleFailure("believed service \(reply[8]) for \(a): \(reply)") }
        switch (a.request, answer) {
        case (.writeProperty, .acknowledged), (.subscribeCOV, .acknowledged):
            guard reply[6] == 0x20, reply.count == 9 else { throw OracleFailure("believed a non-Simple-ACK for \(a): \(reply)") }
        case (.readProperty(let asked), .values):
            guard reply[6] == 0x30 else { throw OracleFailure("believed a non-Complex-ACK for \(a): \(reply)") }
            guard let echo = referenceEcho(Array(reply[9...])) else { throw OracleFailure("believed an ack without a readable echo: \(reply)") }
            guard echo.type == asked.object.type.rawValue, echo.instance == asked.object.instance,
                  echo.property == UInt64(asked.property.rawValue), echo.index == asked.arrayIndex.map(UInt64.init) else {
                throw OracleFailure("believed an ack for \(echo) to \(asked): \(reply)")
            }
        case (.readPropertyMultiple(let specs), .results(let results)):
            guard reply[6] == 0x30 else { throw OracleFailure("believed a non-Complex-ACK for \(a): \(reply)") }
            let asked = specs.flatMap(\.addresses)
            guard results.map(\.address) == asked else { throw OracleFailure("believed results for \(results.map(\.address)) to \(asked)") }
        default:
            throw OracleFailure("believed \(answer) for \(a): \(reply)")
        }
    }

    static func object(_ r: inout InputReader) -> BACnetObjectId {
        let t = BACnetObjectType(rawValue: UInt16(r.byte())) ?? .analogValue
        let hi = r.byte()
        let instance = hi == 0xFF ? UInt32(r.u16()) << 6 | UInt32(r.byte() & 0x3F) : UInt32(r.u16())
        return BACnetObjectId(type: t, instance: instance)
    }

    static func property(_ r: inout InputReader) -> BACnetPropertyId {
        BACnetPropertyId(rawValue: UInt32(r.u16())) ?? .presentValue
    }

    static func index(_ r: inout InputReader) -> UInt32? {
        let b = r.byte()
        switch b {
        case 0: return nil
        case 0xFF: return UInt32(r.u16()) << 16 | UInt32(r.u16())
        default: return UInt32(b - 1)
        }
    }

    static func value(_ r: inout InputReader) -> BACnetValue {
        let k = r.byte()
        switch k % 10 {
        case 0: return .null
        case 1: return .boolean(k & 0x80 != 0)
        case 2: return .unsigned(UInt64(r.u16()) << UInt64(k >> 4))
        case 3: return .signed(Int64(Int16(bitPattern: r.u16())) << Int64(k >> 4))
        case 4:
            let f = Float(bitPattern: UInt32(r.u16()) << 16 | UInt32(r.u16()))
            return .real(f.isNaN ? 0 : f)
        case 5:
            let d = Double(bitPattern: UInt64(r.u16()) << 48 | UInt64(r.u16()) << 32 | UInt64(r.u16()) << 16 | UInt64(r.u16()))
            return .double(d.isNaN ? 0 : d)
        case 6: return .enumerated(UInt32(r.u16()) << UInt32(k >> 4))
        case 7: return .bitString((0..<Int(k >> 4)).map { _ in r.byte() & 1 == 1 })
        case 8: return .characterString(String(decoding: r.take(Int(k >> 3)).map { 0x20 + $0 % 0x5F }, as: UTF8.self))
        default: return .objectId(type: r.u16() & 0x3FF, instance: UInt32(r.u16()))
        }
    }

    static func request(_ r: inout InputReader, kind: UInt8) -> BACnetConfirmedRequest {
        let id = r.byte()
        let req: BACnetRequest
        switch kind {
        case 0:
            req = .readProperty(BACnetPointAddress(object: object(&r), property: property(&r), arrayIndex: index(&r)))
        case 1:
            let n = 1 + Int(r.byte() % 3)
            req = .readPropertyMultiple((0..<n).map { _ in
                let o = object(&r)
                let m = 1 + Int(r.byte() % 3)
                return BACnetReadAccessSpec(object: o, properties: (0..<m).map { _ in BACnetPropertyRef(property(&r), arrayIndex: index(&r)) })
            })
        case 2:
            let a = BACnetPointAddress(object: object(&r), property: property(&r), arrayIndex: index(&r))
            req = .writeProperty(a, value: value(&r), priority: BACnetPriority(Int(r.byte() % 17)))
        default:
            let pid = UInt32(r.u16())
            let o = object(&r)
            let c = r.byte()
            req = .subscribeCOV(processId: pid, object: o, confirmed: c == 0 ? nil : c & 1 == 1, lifetimeSeconds: c == 0 ? nil : UInt32(r.u16()))
        }
        return BACnetConfirmedRequest(invokeId: id, req)
    }

    /// A correct server's answer to `q` of the given kind, and what the check must make of it.
    static func answer(to q: BACnetConfirmedRequest, kind: UInt8, _ r: inout InputReader) -> (BACnetResponse, Result<BACnetReply.Answer, BACnetFault>) {
        let id = q.invokeId
        switch kind {
        case 10:
            let e = BACnetError(errorClass: UInt32(r.byte() % 8), errorCode: UInt32(r.u16()))
            return (.error(invokeId: id, service: q.request.service, e), .failure(.error(e)))
        case 11:
            let reason = r.byte()
            return (.reject(invokeId: id, reason: reason), .failure(.reject(reason: reason)))
        case 12:
            let reason = r.byte(), server = r.byte() & 1 == 1
            return (.abort(invokeId: id, reason: reason, server: server), .failure(.abort(reason: reason, server: server)))
        case 13:
            return (.segmentedAck(invokeId: id), .failure(.segmented))
        default:
            switch q.request {
            case .readProperty(let a):
                let vs = (0..<(kind == 9 ? Int(r.byte() % 17) : 1)).map { _ in value(&r) }
                return (.readPropertyAck(invokeId: id, address: a, values: vs), .success(.values(vs)))
            case .readPropertyMultiple(let specs):
                var flat: [BACnetPropertyResult] = []
                let results = specs.map { s in
                    BACnetReadAccessResult(object: s.object, results: s.properties.map { p in
                        let v: Result<[BACnetValue], BACnetFault> = r.byte() % 4 == 0
                            ? .failure(.error(BACnetError(errorClass: 2, errorCode: UInt32(r.byte()))))
                            : .success([value(&r)])
                        flat.append(BACnetPropertyResult(address: BACnetPointAddress(object: s.object, property: p.property, arrayIndex: p.arrayIndex), result: v))
                        return (p, v)
                    })
                }
                return (.readPropertyMultipleAck(invokeId: id, results: results), .success(.results(flat)))
            case .writeProperty, .subscribeCOV:
                return (.simpleAck(invokeId: id, service: q.request.service), .success(.acknowledged))
            }
        }
    }

    /// Whether an answer to `b` answers `a` too.
    static func sameQuestion(_ a: BACnetConfirmedRequest, _ b: BACnetConfirmedRequest) -> Bool {
        guard a.invokeId == b.invokeId, a.request.service == b.request.service else { return false }
        switch (a.request, b.request) {
        case (.readProperty(let x), .readProperty(let y)): return x == y
        case (.readPropertyMultiple(let x), .readPropertyMultiple(let y)):
            return x.map(\.object) == y.map(\.object) && x.map(\.properties) == y.map(\.properties)
        default: return true  // acks of writes and subscriptions name only the service
        }
    }

    struct Echo: CustomStringConvertible {
        var type: UInt16, instance: UInt32, property: UInt64, index: UInt64?
        var description: String { "type \(type) instance \(instance) property \(property) index \(index.map(String.init) ?? "none")" }
    }

    /// Reads context tags 0 (object id), 1 (property) and optional 2 (index) at the start of a
    /// ReadProperty-ACK, written from clause 20.2 without the codec's reader.
    static func referenceEcho(_ b: [UInt8]) -> Echo? {
        var i = 0
        func tagged(_ n: UInt8) -> [UInt8]? {
            guard i < b.count, b[i] >> 4 == n, b[i] & 0x08 != 0 else { return nil }
            var len = Int(b[i] & 0x07)
            i += 1
            if len == 5 {
                guard i < b.count, b[i] <= 253 else { return nil }
                len = Int(b[i])
                i += 1
            }
            guard len <= 8, i + len <= b.count else { return nil }
            defer { i += len }
            return Array(b[i..<(i + len)])
        }
        func number(_ bytes: [UInt8]) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
        guard let o = tagged(0), o.count == 4, let p = tagged(1), !p.isEmpty else { return nil }
        let v = UInt32(number(o))
        var index: UInt64?
        if i < b.count, b[i] >> 4 == 2, b[i] & 0x08 != 0, b[i] & 0x07 < 6 {
            guard let x = tagged(2), !x.isEmpty else { return nil }
            index = number(x)
        }
        return Echo(type: UInt16(v >> 22), instance: v & 0x3F_FFFF, property: number(p), index: index)
    }
}
