/// The checks a Modbus reply must pass before a value in it is believed, as a pure function of
/// the request and the reply bytes (so that they can be fuzzed and tested without a bus).
///
/// A reply frame is the MBAP header and the PDU for Modbus TCP, or unit, PDU and CRC for RTU.
/// It answers a request only if: the framing is right (TCP: the transaction id sent, protocol 0,
/// a length that counts exactly the bytes that follow; RTU: a CRC-16 that matches), it comes from
/// the unit asked, it carries the function code asked (or that code + 0x80 with one exception
/// byte), and its PDU is the answer to that request: for a read, a byte count of exactly the
/// data asked for and exactly that many bytes; for a single write, an exact echo of the request;
/// for a multiple write, an echo of its address and quantity.
public enum ModbusReply {
    public enum Framing: Sendable, Hashable {
        /// Modbus TCP with the transaction id the request carried.
        case tcp(transactionID: UInt16)
        /// Modbus RTU; the last two bytes are the CRC (low byte first).
        case rtu
    }

    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The device answered with a Modbus exception.
        case exception(code: UInt8)
        /// The reply does not answer the request.
        case malformed(String)

        public var description: String {
            switch self {
            case .exception(let c): return "exception \(c)"
            case .malformed(let why): return why
            }
        }
    }

    /// The function codes checked here (the ones RedlineIO may send).
    public static let readFunctions: Set<UInt8> = [1, 2, 3, 4]
    public static let writeFunctions: Set<UInt8> = [5, 6, 15, 16]

    /// Checks a whole reply frame against the request PDU sent to `unit`; for a read, the values
    /// (bits as 0/1, registers as words); for a write, no values.
    public static func check(unit: UInt8, request: [UInt8], reply: [UInt8], framing: Framing) -> Result<[UInt16], Failure> {
        guard let fc = request.first else { return .failure(.malformed("empty request")) }
        switch pdu(of: reply, unit: unit, function: fc, framing: framing) {
        case .failure(let e): return .failure(e)
        case .success(let rsp): return values(request: request, response: rsp)
        }
    }

    /// The response PDU of a reply frame, once the framing, the unit and the function code are
    /// right; an exception reply (function + 0x80, one code byte) is `.exception`.
    public static func pdu(of frame: [UInt8], unit: UInt8, function: UInt8, framing: Framing) -> Result<[UInt8], Failure> {
        let body: ArraySlice<UInt8>
        switch framing {
        case .tcp(let tid):
            guard frame.count >= 8 else { return .failure(.malformed("short frame")) }
            let gotTid = UInt16(frame[0]) << 8 | UInt16(frame[1])
            let protocolID = UInt16(frame[2]) << 8 | UInt16(frame[3])
            let length = Int(frame[4]) << 8 | Int(frame[5])
            guard gotTid == tid, protocolID == 0 else { return .failure(.malformed("bad MBAP header")) }
            guard length == frame.count - 6 else { return .failure(.malformed("MBAP length \(length) for \(frame.count - 6) bytes")) }
            guard frame[6] == unit else { return .failure(.malformed("response from unit \(frame[6]), expected \(unit)")) }
            body = frame[7...]
        case .rtu:
            guard frame.count >= 4 else { return .failure(.malformed("short frame")) }
            let crc = UInt16(frame[frame.count - 2]) | UInt16(frame[frame.count - 1]) << 8
            guard crc16(frame.dropLast(2)) == crc else { return .failure(.malformed("bad CRC")) }
            guard frame[0] == unit else { return .failure(.malformed("response from unit \(frame[0]), expected \(unit)")) }
            body = frame[1..<(frame.count - 2)]
        }
        let rsp = Array(body)
        if rsp[0] == function | 0x80 {
            guard rsp.count == 2 else { return .failure(.malformed("bad exception frame")) }
            return .failure(.exception(code: rsp[1]))
        }
        guard rsp[0] == function else { return .failure(.malformed("function code \(rsp[0]), expected \(function)")) }
        return .success(rsp)
    }

    /// Checks a response PDU (function code first) against the request PDU it should answer.
    public static func values(request: [UInt8], response rsp: [UInt8]) -> Result<[UInt16], Failure> {
        guard request.count >= 5, let fc = request.first else { return .failure(.malformed("short request")) }
        guard rsp.first == fc else { return .failure(.malformed("function code \(rsp.first.map(String.init) ?? "none"), expected \(fc)")) }
        if readFunctions.contains(fc) {
            let count = Int(request[3]) << 8 | Int(request[4])
            let isBit = fc <= 2
            guard count >= 1, count <= (isBit ? 2000 : 125) else { return .failure(.malformed("request count \(count) out of range")) }
            let expected = isBit ? (count + 7) / 8 : count * 2
            guard rsp.count >= 2, Int(rsp[1]) == expected, rsp.count == 2 + expected else {
                return .failure(.malformed("byte count \(rsp.count >= 2 ? Int(rsp[1]) : -1), expected \(expected)"))
            }
            var out = [UInt16](repeating: 0, count: count)
            if isBit {
                for i in 0..<count { out[i] = UInt16((rsp[2 + i / 8] >> UInt8(i % 8)) & 1) }
            } else {
                for i in 0..<count { out[i] = UInt16(rsp[2 + 2 * i]) << 8 | UInt16(rsp[3 + 2 * i]) }
            }
            return .success(out)
        }
        if fc == 5 || fc == 6 {
            // Single writes echo the request exactly.
            guard rsp == request else { return .failure(.malformed("write response does not echo the request")) }
            return .success([])
        }
        if fc == 15 || fc == 16 {
            guard rsp.count == 5, rsp[...] == request[..<5] else {
                return .failure(.malformed("write response does not echo the address and quantity"))
            }
            return .success([])
        }
        return .failure(.malformed("function code \(fc) not permitted"))
    }

    /// Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF); sent low byte first.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for b in bytes {
            crc ^= UInt16(b)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return crc
    }
}
