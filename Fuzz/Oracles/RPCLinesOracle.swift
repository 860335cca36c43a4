#if !REDLINE_FUZZ_SINGLE_MODULE
import RedlineCore
import RedlineDaemon
#endif

/// `rpc-lines`: the daemon's line framing (`LineFraming`, the rules `LineDecoder` applies on the
/// sockets) and RPC.parse on arbitrary byte streams. scripts/fuzz.sh builds it as one module with
/// LineFraming.swift, RPC.swift and JSON.swift, for libFuzzer's coverage of all of them; no NIO
/// here. `RPCLinesThroughNIO` (SwiftPM builds: the replayer and FuzzRegressionTests) adds the
/// same frames through `LineDecoder` in NIO's `ByteToMessageHandler`, as on the sockets.
///
/// - every complete line gives exactly one frame, `.line` (without a final CR) when it is at or
///   under the limit without its terminator (LF or CRLF), `.tooLong(its bytes before the LF)` when
///   over; a last line without a newline is a line if at or under the limit, `.tooLong(its length)`
///   otherwise (an independent model of the framing);
/// - the same bytes in any chunking give the same frames (nothing stalls or merges lines), every
///   frame consumes bytes, and between reads at most `limit + 1` bytes are kept;
/// - RPC.parse on every line answers a request exactly when an independent check of the
///   JSON-RPC 2.0 rules says it is one, and an error answer with the right code otherwise.
public enum RPCLinesOracle {
    /// A frame as compared: the bytes of a line, or the length of a dropped one.
    enum Got: Equatable, CustomStringConvertible {
        case line([UInt8])
        case tooLong(Int)
        var description: String {
            switch self {
            case .line(let b): return "line(\(b.count) bytes)"
            case .tooLong(let n): return "tooLong(\(n))"
            }
        }
    }

    /// The limit, and the stream cut into chunks three ways (whole, and two random chunkings),
    /// from a fuzz input.
    static func cases(_ input: [UInt8]) -> (maxLength: Int, stream: [UInt8], chunkings: [[[UInt8]]]) {
        var r = InputReader(input)
        // Small limits reach the too-long paths; 0 sometimes picks the daemon's real limit.
        let pick = r.byte()
        let maxLength = pick == 0 ? RPC.maxLine : Int(pick % 64)
        let seed = UInt64(r.byte()) << 8 | UInt64(r.byte())
        let stream = r.rest
        var chunkings = [[stream]]
        var rng = SplitMix(seed: seed ^ fnv1a(stream))
        for _ in 0..<2 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = 1 + rng.below(rng.below(4) == 0 ? 3 : 2 * maxLength + 4)
                chunks.append(Array(stream[i..<min(stream.count, i + n)]))
                i += n
            }
            chunkings.append(chunks)
        }
        return (maxLength, stream, chunkings)
    }

    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        let (maxLength, stream, chunkings) = cases(input)
        let expected = model(stream, maxLength: maxLength)
        for chunks in chunkings {
            let got = try frames(chunks, maxLength: maxLength)
            guard got == expected else {
                throw OracleFailure("frames \(got) for chunks \(chunks.map(\.count)), model says \(expected) (limit \(maxLength))")
            }
        }
        for case .line(let l) in expected { try checkParse(l) }
    }

    /// `LineFraming` over `chunks` fed one after the other, then the end of the stream, the way
    /// `ByteToMessageHandler` drives `LineDecoder`: the bytes received and not consumed are kept
    /// in order, and asked about until the framing wants more.
    static func frames(_ chunks: [[UInt8]], maxLength: Int) throws(OracleFailure) -> [Got] {
        var framing = LineFraming(maxLength: maxLength)
        var buffer: [UInt8] = []
        var start = 0
        var out: [Got] = []
        func consume(_ n: Int, atLeast: Int) throws(OracleFailure) {
            guard n >= atLeast, n <= buffer.count - start else {
                throw OracleFailure("a step consumed \(n) of \(buffer.count - start) buffered bytes (limit \(maxLength))")
            }
            start += n
        }
        for c in chunks {
            buffer.removeFirst(start)
            start = 0
            buffer.append(contentsOf: c)
            reading: while true {
                let step = framing.next(in: buffer[start...])
                switch step {
                case .line(let length, let consumed):
                    guard length <= consumed else { throw OracleFailure("\(step): longer than what it consumes") }
                    out.append(.line(Array(buffer[start..<start + length])))
                    try consume(consumed, atLeast: 1)
                case .tooLong(let length, let consumed):
                    out.append(.tooLong(length))
                    try consume(consumed, atLeast: 1)
                case .needMore(let consumed):
                    try consume(consumed, atLeast: 0)
                    break reading
                }
            }
            guard buffer.count - start <= maxLength + 1 else {
                throw OracleFailure("\(buffer.count - start) bytes kept between reads (limit \(maxLength))")
            }
        }
        let remaining = buffer.count - start
        switch framing.last(remaining: remaining) {
        case .line(let length, let consumed)?:
            guard length <= consumed, consumed == remaining else { throw OracleFailure("last line \(length)/\(consumed) of \(remaining)") }
            out.append(.line(Array(buffer[start..<start + length])))
        case .tooLong(let length, _)?:
            out.append(.tooLong(length))
        case .needMore?:
            throw OracleFailure("the end of the stream asked for more bytes")
        case nil:
            break
        }
        return out
    }

    /// The framing, written from the specification rather than the decoder.
    static func model(_ stream: [UInt8], maxLength: Int) -> [Got] {
        var out: [Got] = []
        var start = 0
        for (i, b) in stream.enumerated() where b == 0x0A {
            let len = i - start
            let content = len > 0 && stream[i - 1] == 0x0D ? len - 1 : len
            if content > maxLength {
                out.append(.tooLong(len))
            } else {
                var line = Array(stream[start..<i])
                if line.last == 0x0D { line.removeLast() }
                out.append(.line(line))
            }
            start = i + 1
        }
        let tail = stream.count - start
        if tail > 0 { out.append(tail <= maxLength ? .line(Array(stream[start...])) : .tooLong(tail)) }
        return out
    }

    /// RPC.parse against an independent reading of JSON-RPC 2.0 as the daemon accepts it.
    static func checkParse(_ line: [UInt8]) throws(OracleFailure) {
        let result = RPC.parse(line: line)
        let value: JSON?
        do { value = try JSON.parse(line) } catch { value = nil }
        guard let value else {
            guard case .failure(let e) = result, e.error.code == .parse, e.id == .null else {
                throw OracleFailure("a line that is not JSON was not a parse error: \(result)")
            }
            return
        }
        guard case .object(let kv) = value else {
            guard case .failure(let e) = result, e.error.code == .invalidRequest, e.id == .null else {
                throw OracleFailure("a non-object was not an invalid request: \(result)")
            }
            return
        }
        func member(_ k: String) -> JSON? { kv.first { $0.0 == k }?.1 }
        let idOK: Bool
        switch member("id") {
        case nil, .null?, .string?, .number?: idOK = true
        default: idOK = false
        }
        var paramsOK = true
        if let p = member("params") {
            switch p {
            case .object, .array: break
            default: paramsOK = false
            }
        }
        var versionOK = false
        if case .string(let s)? = member("jsonrpc"), Array(s.utf8) == Array("2.0".utf8) { versionOK = true }
        var method: String?
        if case .string(let m)? = member("method") { method = m }
        let valid = idOK && versionOK && method != nil && paramsOK
        switch result {
        case .success(let req):
            guard valid else { throw OracleFailure("accepted an invalid request: \(value.encoded())") }
            guard req.method == method, req.isNotification == (member("id") == nil), req.id == (member("id") ?? .null) else {
                throw OracleFailure("request fields differ from the line: \(value.encoded())")
            }
        case .failure(let e):
            guard !valid else { throw OracleFailure("refused a valid request (\(e.error.message)): \(value.encoded())") }
            guard e.error.code == .invalidRequest else { throw OracleFailure("wrong error code \(e.error.code) for \(value.encoded())") }
        }
    }
}
