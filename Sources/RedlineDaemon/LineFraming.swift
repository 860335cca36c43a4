import NIOCore

/// One inbound frame: a complete line, or a line that exceeded the limit (already discarded).
package enum Frame: Sendable, Equatable {
    case line(ByteBuffer)
    case tooLong(Int)
}

/// Splits the byte stream at `\n`. A line longer than `maxLength` is dropped
/// up to its newline and reported once as `.tooLong`, so one bad client line
/// never stalls or grows the daemon.
package struct LineDecoder: ByteToMessageDecoder {
    package typealias InboundOut = Frame
    package let maxLength: Int
    private var discarding = false
    private var discarded = 0
    /// Bytes at the start of the buffer already searched for a newline: a long line
    /// arriving in many chunks is scanned once, not once per chunk.
    private var scanned = 0

    package init(maxLength: Int) { self.maxLength = maxLength }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        let from = view.startIndex + min(scanned, view.count)
        if let nl = view[from...].firstIndex(of: 0x0A) {
            scanned = 0
            let len = nl - view.startIndex
            if discarding {
                buffer.moveReaderIndex(forwardBy: len + 1)
                context.fireChannelRead(wrapInboundOut(.tooLong(discarded + len)))
                discarding = false
                discarded = 0
                return .continue
            }
            if len > maxLength {
                buffer.moveReaderIndex(forwardBy: len + 1)
                context.fireChannelRead(wrapInboundOut(.tooLong(len)))
                return .continue
            }
            var line = buffer.readSlice(length: len)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0D {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            context.fireChannelRead(wrapInboundOut(.line(line)))
            return .continue
        }
        if discarding || buffer.readableBytes > maxLength {
            discarded += buffer.readableBytes
            discarding = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            scanned = 0
        } else {
            scanned = buffer.readableBytes
        }
        return .needMoreData
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A final line without a newline is still a request.
        if buffer.readableBytes > 0, !discarding {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(wrapInboundOut(.line(line)))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        scanned = 0
        return .needMoreData
    }
}
