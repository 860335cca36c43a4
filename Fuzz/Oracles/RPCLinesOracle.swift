import NIOCore
import NIOEmbedded
import RedlineCore
import RedlineDaemon

/// `rpc-lines`: the daemon's LineDecoder (through NIO's ByteToMessageHandler, as on the sockets)
/// and RPC.parse on arbitrary byte streams.
///
/// - every complete line gives exactly one frame, `.line` (without a final CR) when it is at or
///   under the limit without its terminator (LF or CRLF), `.tooLong(its bytes before the LF)` when
///   over; a last line without a newline is a line if at or under the limit, `.tooLong(its length)`
///   otherwise (an independent model of the framing);
/// - the same bytes in any chunking give the same frames (nothing stalls or merges lines);
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

    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        var r = InputReader(input)
        // Small limits reach the too-long paths; 0 sometimes picks the daemon's real limit.
        let pick = r.byte()
        let maxLength = pick == 0 ? RPC.maxLine : Int(pick % 64)
        let seed = UInt64(r.byte()) << 8 | UInt64(r.byte())
        let stream = r.rest

        let expected = model(stream, maxLength: maxLength)
        let whole = try decode([stream], maxLength: maxLength)
        guard whole == expected else {
            throw OracleFailure("frames \(whole) for one write, model says \(expected) (limit \(maxLength))")
        }
        var rng = SplitMix(seed: seed ^ fnv1a(stream))
        for _ in 0..<2 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = 1 + rng.below(rng.below(4) == 0 ? 3 : 2 * maxLength + 4)
                chunks.append(Array(stream[i..<min(stream.count, i + n)]))
                i += n
            }
            let got = try decode(chunks, maxLength: maxLength)
            guard got == expected else {
                throw OracleFailure("frames \(got) for chunks \(chunks.map(\.count)), model says \(expected) (limit \(maxLength))")
            }
        }
        for case .line(let l) in expected { try checkParse(l) }
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

    static func decode(_ chunks: [[UInt8]], maxLength: Int) throws(OracleFailure) -> [Got] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLength: maxLength)))
        var out: [Got] = []
        func drain() throws(OracleFailure) {
            while true {
                let f: Frame?
                do { f = try channel.readInbound(as: Frame.self) } catch { throw OracleFailure("readInbound: \(error)") }
                guard let f else { return }
                switch f {
                case .line(let b): out.append(.line(Array(b.readableBytesView)))
                case .tooLong(let n): out.append(.tooLong(n))
                }
            }
        }
        for c in chunks {
            var buf = channel.allocator.buffer(capacity: c.count)
            buf.writeBytes(c)
            do { try channel.writeInbound(buf) } catch { throw OracleFailure("writeInbound: \(error)") }
            try drain()
        }
        do { _ = try channel.finish() } catch { throw OracleFailure("finish: \(error)") }
        try drain()
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
