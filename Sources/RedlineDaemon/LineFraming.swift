import NIOCore

/// One inbound frame: a complete line, or a line that exceeded the limit (already discarded).
package enum Frame: Sendable, Equatable {
    case line(ByteBuffer)
    case tooLong(Int)
}

/// Splits the byte stream at `\n`. A line's length is its bytes without the terminator
/// (`\n` or `\r\n`): a line at or under `maxLength` is never refused for size. A longer line
/// is dropped up to its newline and reported once as `.tooLong(n)`, `n` its bytes before the
/// `\n`, so one bad client line never stalls or grows the daemon. A last line without a newline
/// at the end of the stream is a line too, or `.tooLong` if over the limit: never dropped unsaid.
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
            let content = len > 0 && view[nl - 1] == 0x0D ? len - 1 : len
            if discarding {
                buffer.moveReaderIndex(forwardBy: len + 1)
                context.fireChannelRead(wrapInboundOut(.tooLong(discarded + len)))
                discarding = false
                discarded = 0
                return .continue
            }
            if content > maxLength {
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
        // One byte beyond the limit may still be the CR of a line exactly at it.
        if discarding || buffer.readableBytes > maxLength + 1 {
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
        // A final line without a newline is still a request, or a line too long to be one.
        if discarding {
            context.fireChannelRead(wrapInboundOut(.tooLong(discarded + buffer.readableBytes)))
        } else if buffer.readableBytes > maxLength {
            context.fireChannelRead(wrapInboundOut(.tooLong(buffer.readableBytes)))
        } else if buffer.readableBytes > 0 {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(wrapInboundOut(.line(line)))
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        discarding = false
        discarded = 0
        scanned = 0
        return .needMoreData
    }
}
