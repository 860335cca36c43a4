import NIOCore

/// One inbound frame: a complete line, or a line that exceeded the limit (already discarded).
package enum Frame: Sendable, Equatable {
    case line(ByteBuffer)
    case tooLong(Int)
}

/// The sockets' framing (`LineFraming`, which has the rules) on a connection's NIO buffer,
/// through `ByteToMessageHandler`: lines come out as slices of the buffer, without their terminator.
package struct LineDecoder: ByteToMessageDecoder {
    package typealias InboundOut = Frame
    private var framing: LineFraming

    package var maxLength: Int { framing.maxLength }

    package init(maxLength: Int) { framing = LineFraming(maxLength: maxLength) }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch framing.next(in: buffer.readableBytesView) {
        case .line(let length, let consumed):
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: consumed - length)
            context.fireChannelRead(wrapInboundOut(.line(line)))
            return .continue
        case .tooLong(let length, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            context.fireChannelRead(wrapInboundOut(.tooLong(length)))
            return .continue
        case .needMore(let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            return .needMoreData
        }
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        switch framing.last(remaining: buffer.readableBytes) {
        case .line(let length, _)?:
            context.fireChannelRead(wrapInboundOut(.line(buffer.readSlice(length: length)!)))
        case .tooLong(let length, _)?:
            context.fireChannelRead(wrapInboundOut(.tooLong(length)))
        case .needMore?, nil:
            break
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
