#if !REDLINE_FUZZ_SINGLE_MODULE
import RedlineCore
#endif

/// `modbus-replies`: ModbusReply.check (what ModbusBackend believes) against a reference checker
/// written here independently from the Modbus application protocol and TCP/RTU framing specs.
///
/// Never a success for a reply that does not answer the request, and the values of a success are
/// the reference's; conversely every correct answer is accepted, and an exception reply is reported
/// as that exception. Replies are either raw bytes or a correct answer with one byte changed,
/// RTU frames with their CRC.
public enum ModbusRepliesOracle {
    static let functions: [UInt8] = [1, 2, 3, 4, 5, 6, 15, 16]

    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        var r = InputReader(input)
        let b0 = r.byte()
        let tcp = b0 & 1 == 0
        let fc = functions[Int(b0 >> 1) % functions.count]
        let mode = r.byte()
        let unit = r.byte()
        let tid = r.byte() % 4 == 0 ? r.u16() : 0
        let address = r.u16()
        let arg = r.u16()
        let pos = Int(r.u16())
        let newByte = r.byte()
        let isBit = fc <= 2
        var request: [UInt8] = [fc, UInt8(address >> 8), UInt8(address & 0xFF)]
        switch fc {
        case 1, 2, 3, 4:
            // Mostly valid counts, sometimes any.
            let count = mode & 0x80 != 0 ? arg : 1 + arg % (isBit ? 2000 : 125)
            request += [UInt8(count >> 8), UInt8(count & 0xFF)]
        case 5:
            let v: UInt16 = mode & 0x80 != 0 ? arg : (arg & 1 == 0 ? 0 : 0xFF00)
            request += [UInt8(v >> 8), UInt8(v & 0xFF)]
        default:
            request += [UInt8(arg >> 8), UInt8(arg & 0xFF)]
        }
        let framing: ModbusReply.Framing = tcp ? .tcp(transactionID: tid) : .rtu
        var reply: [UInt8]
        if mode % 4 == 0 {
            reply = r.rest
        } else {
            reply = wrap(correctPDU(request: request, data: r.rest, exception: mode % 16 == 1), unit: unit, tcp: tcp, tid: tid)
            if mode % 4 == 3, !reply.isEmpty { reply[pos % reply.count] = newByte }
        }

        let got = ModbusReply.check(unit: unit, request: request, reply: reply, framing: framing)
        let want = reference(unit: unit, request: request, reply: reply, tcp: tcp, tid: tid)
        switch (got, want) {
        case let (.success(v), .answer(w)):
            guard v == w else { throw OracleFailure("values \(v), reference \(w): request \(request) reply \(reply)") }
        case (.success, _):
            throw OracleFailure("accepted a reply that does not answer the request (\(want)): request \(request) reply \(reply) tcp \(tcp)")
        case let (.failure(.exception(c)), .exception(w)):
            guard c == w else { throw OracleFailure("exception \(c), reference \(w)") }
        case (.failure(let e), .answer), (.failure(let e), .exception):
            throw OracleFailure("refused (\(e)) a correct reply (\(want)): request \(request) reply \(reply) tcp \(tcp)")
        case (.failure(.exception(let c)), .wrong):
            throw OracleFailure("reported exception \(c) for a wrong reply: request \(request) reply \(reply)")
        case (.failure(.malformed), .wrong):
            break
        }
    }

    enum Verdict: Equatable {
        case answer([UInt16])
        case exception(UInt8)
        case wrong
    }

    static func correctPDU(request: [UInt8], data: [UInt8], exception: Bool) -> [UInt8] {
        let fc = request[0]
        if exception { return [fc | 0x80, data.first ?? 2] }
        switch fc {
        case 1, 2, 3, 4:
            let count = Int(request[3]) * 256 + Int(request[4])
            // The byte count is one byte: a request asking for more gets a (wrong) capped answer.
            let n = min(255, fc <= 2 ? (count + 7) / 8 : count * 2)
            var d = Array(data.prefix(n))
            d += [UInt8](repeating: 0, count: max(0, n - d.count))
            return [fc, UInt8(truncatingIfNeeded: n)] + d
        case 15, 16: return Array(request.prefix(5))
        default: return request
        }
    }

    static func crc(_ bytes: [UInt8]) -> UInt16 {
        // Table-free bitwise CRC-16/MODBUS, written out again on purpose.
        var c: UInt32 = 0xFFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 {
                let lsb = c & 1
                c >>= 1
                if lsb == 1 { c ^= 0xA001 }
            }
        }
        return UInt16(c)
    }

    static func wrap(_ pdu: [UInt8], unit: UInt8, tcp: Bool, tid: UInt16) -> [UInt8] {
        if tcp {
            let len = pdu.count + 1
            return [UInt8(tid >> 8), UInt8(tid & 0xFF), 0, 0, UInt8(len >> 8), UInt8(len & 0xFF), unit] + pdu
        }
        let body = [unit] + pdu
        let c = crc(body)
        return body + [UInt8(c & 0xFF), UInt8(c >> 8)]
    }

    static func reference(unit: UInt8, request: [UInt8], reply: [UInt8], tcp: Bool, tid: UInt16) -> Verdict {
        var pdu: [UInt8]
        if tcp {
            guard reply.count >= 8 else { return .wrong }
            guard reply[0] == UInt8(tid >> 8), reply[1] == UInt8(tid & 0xFF), reply[2] == 0, reply[3] == 0 else { return .wrong }
            guard Int(reply[4]) * 256 + Int(reply[5]) == reply.count - 6, reply[6] == unit else { return .wrong }
            pdu = Array(reply[7...])
        } else {
            guard reply.count >= 4 else { return .wrong }
            let n = reply.count
            let c = crc(Array(reply[0..<(n - 2)]))
            guard reply[n - 2] == UInt8(c & 0xFF), reply[n - 1] == UInt8(c >> 8), reply[0] == unit else { return .wrong }
            pdu = Array(reply[1..<(n - 2)])
        }
        let fc = request[0]
        if pdu.count == 2, pdu[0] == fc + 0x80 { return .exception(pdu[1]) }
        guard pdu.first == fc else { return .wrong }
        switch fc {
        case 1, 2:
            let count = Int(request[3]) * 256 + Int(request[4])
            guard (1...2000).contains(count) else { return .wrong }
            let bytes = count / 8 + (count % 8 == 0 ? 0 : 1)
            guard pdu.count == 2 + bytes, Int(pdu[1]) == bytes else { return .wrong }
            return .answer((0..<count).map { i in (pdu[2 + i / 8] & (1 << (i % 8))) == 0 ? 0 : 1 })
        case 3, 4:
            let count = Int(request[3]) * 256 + Int(request[4])
            guard (1...125).contains(count), pdu.count == 2 + 2 * count, Int(pdu[1]) == 2 * count else { return .wrong }
            return .answer((0..<count).map { i in UInt16(pdu[2 + 2 * i]) * 256 + UInt16(pdu[3 + 2 * i]) })
        case 5, 6:
            return pdu == request ? .answer([]) : .wrong
        case 15, 16:
            return pdu.count == 5 && pdu == Array(request[0..<5]) ? .answer([]) : .wrong
        default:
            return .wrong
        }
    }
}
