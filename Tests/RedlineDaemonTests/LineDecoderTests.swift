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
}
