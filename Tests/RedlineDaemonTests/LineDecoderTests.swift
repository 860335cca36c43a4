import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing
@testable import RedlineDaemon

/// The agent socket's framing, tested directly in the style of NIO's own decoders:
/// `ByteToMessageDecoderVerifier` feeds every input whole, byte by byte, in one buffer
/// with the others and in random order, and checks the frames each time.
@Suite("LineDecoder") struct LineDecoderTests {
    static func line(_ s: String) -> Frame { .line(ByteBuffer(string: s)) }

    @Test func linesInEveryChunking() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [
                ("{\"a\":1}\n", [Self.line("{\"a\":1}")]),
                ("b\r\n", [Self.line("b")]),
                ("\n", [Self.line("")]),
                ("one\ntwo\n", [Self.line("one"), Self.line("two")]),
            ],
            decoderFactory: { LineDecoder(maxLength: 16) })
    }

    @Test func aLineOverTheLimitIsReportedOnceWithItsLengthAndTheNextLineStillComes() throws {
        let long = String(repeating: "x", count: 40)
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [
                (long + "\n", [.tooLong(40)]),
                ("ok\n", [Self.line("ok")]),
            ],
            decoderFactory: { LineDecoder(maxLength: 16) })
    }

    @Test func aLineAtTheLimitIsNeverRefusedForSize() throws {
        let exact = String(repeating: "y", count: 16)
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [(exact + "\n", [Self.line(exact)])],
            decoderFactory: { LineDecoder(maxLength: 16) })
    }

    @Test func aLongLineArrivingInManyChunksIsScannedOnce() throws {
        // 64 KiB in 1 KiB pieces: the decoder keeps its place instead of rescanning from the start.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLength: 65_536)))
        let piece = String(repeating: "z", count: 1024)
        for _ in 0..<63 { try channel.writeInbound(ByteBuffer(string: piece)) }
        #expect(try channel.readInbound(as: Frame.self) == nil)
        try channel.writeInbound(ByteBuffer(string: piece + "\nnext\n"))
        let first = try channel.readInbound(as: Frame.self)
        #expect(first == Self.line(String(repeating: "z", count: 65_536)))
        #expect(try channel.readInbound(as: Frame.self) == Self.line("next"))
        _ = try channel.finish()
    }

    /// The frames a decoder gives for `chunks` fed one after the other, then the end of the stream.
    static func frames(_ chunks: [[UInt8]], maxLength: Int) throws -> [Frame] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLength: maxLength)))
        var out: [Frame] = []
        for c in chunks {
            try channel.writeInbound(ByteBuffer(bytes: c))
            while let f = try channel.readInbound(as: Frame.self) { out.append(f) }
        }
        _ = try channel.finish(acceptAlreadyClosed: false)
        while let f = try channel.readInbound(as: Frame.self) { out.append(f) }
        return out
    }

    /// Every way of cutting `bytes` into consecutive non-empty chunks (2^(n-1) of them).
    static func everySplit(_ bytes: [UInt8]) -> [[[UInt8]]] {
        guard bytes.count > 1 else { return [[bytes]] }
        return (0..<(1 << (bytes.count - 1))).map { cuts in
            var chunks: [[UInt8]] = [[bytes[0]]]
            for i in 1..<bytes.count {
                if cuts & (1 << (i - 1)) != 0 { chunks.append([bytes[i]]) } else { chunks[chunks.count - 1].append(bytes[i]) }
            }
            return chunks
        }
    }

    /// `ByteToMessageDecoderVerifier` tries the whole input, byte by byte and a few random
    /// orders; this tries every split of each input into chunks (a CR and its LF apart, a
    /// limit crossed in the middle of a chunk or exactly at its end, a final line without a
    /// newline at the end of the stream) and requires the same frames from each.
    @Test("every split of the input into chunks yields the same lines and the same too-long reports")
    func everySplitYieldsTheSameFrames() throws {
        let cases: [(input: String, max: Int, expected: [Frame])] = [
            ("ab\ncd\n", 4, [Self.line("ab"), Self.line("cd")]),
            ("a\r\nb", 4, [Self.line("a"), Self.line("b")]),
            ("\r\n\n\n", 4, [Self.line(""), Self.line(""), Self.line("")]),
            ("abcd\nxy", 4, [Self.line("abcd"), Self.line("xy")]),
            ("toolong\nok\n", 4, [.tooLong(7), Self.line("ok")]),
            ("abcde\nabcd\n", 4, [.tooLong(5), Self.line("abcd")]),
            ("123456789\n\nz", 4, [.tooLong(9), Self.line(""), Self.line("z")]),
            ("{\"a\":1}\r\n", 8, [Self.line("{\"a\":1}")]),
            // A line exactly at the limit ended by CRLF is a line: the CR is the terminator's.
            ("abcd\r\nz\n", 4, [Self.line("abcd"), Self.line("z")]),
            ("abcde\r\n", 4, [.tooLong(6)]),
            // A last line over the limit, without a newline, is reported, not dropped unsaid.
            ("ok\nabcde", 4, [Self.line("ok"), .tooLong(5)]),
            ("abcdefghij", 4, [.tooLong(10)]),
            ("abcd\r", 4, [.tooLong(5)]),
        ]
        for c in cases {
            let bytes = Array(c.input.utf8)
            for split in Self.everySplit(bytes) {
                let got = try Self.frames(split, maxLength: c.max)
                #expect(got == c.expected, "\(c.input.debugDescription) cut as \(split.map { String(decoding: $0, as: UTF8.self) })")
                if got != c.expected { break }
            }
        }
    }
}
