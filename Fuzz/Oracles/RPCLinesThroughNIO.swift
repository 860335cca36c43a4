import NIOCore
import NIOEmbedded
import RedlineDaemon

/// `rpc-lines` in SwiftPM builds (the replayer `fuzz-rpc-lines` and FuzzRegressionTests): the
/// libFuzzer oracle `RPCLinesOracle.check`, and the same chunkings through `LineDecoder` in NIO's
/// `ByteToMessageHandler` in an `EmbeddedChannel`, as on the sockets, against the same model.
public enum RPCLinesThroughNIO {
    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        try RPCLinesOracle.check(input)
        let (maxLength, stream, chunkings) = RPCLinesOracle.cases(input)
        let expected = RPCLinesOracle.model(stream, maxLength: maxLength)
        for chunks in chunkings {
            let got = try decode(chunks, maxLength: maxLength)
            guard got == expected else {
                throw OracleFailure("LineDecoder: frames \(got) for chunks \(chunks.map(\.count)), model says \(expected) (limit \(maxLength))")
            }
        }
    }

    static func decode(_ chunks: [[UInt8]], maxLength: Int) throws(OracleFailure) -> [RPCLinesOracle.Got] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLength: maxLength)))
        var out: [RPCLinesOracle.Got] = []
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
}
