// No imports: scripts/fuzz.sh compiles this file into the `rpc-lines` fuzz target with RPC.swift
// and RedlineCore's JSON.swift as one module, so libFuzzer sees the coverage of all of it.

/// The agent protocol's line framing on bytes alone (the rules; `LineDecoder` applies them to a
/// connection's NIO buffer, the `rpc-lines` fuzz target to an array).
///
/// Splits the byte stream at `\n`. A line's length is its bytes without the terminator
/// (`\n` or `\r\n`): a line at or under `maxLength` is never refused for size. A longer line
/// is dropped up to its newline and reported once as `.tooLong(n)`, `n` its bytes before the
/// `\n`, so one bad client line never stalls or grows the daemon: between reads at most
/// `maxLength + 1` bytes are kept. A last line without a newline at the end of the stream is a
/// line too, or `.tooLong` if over the limit: never dropped unsaid.
///
/// The caller keeps the bytes received and not yet consumed, in order, and asks `next(in:)` about
/// them until it answers `.needMore`; it drops the bytes each step says are consumed.
package struct LineFraming: Sendable {
    /// What the bytes at the start of the buffer are.
    package enum Step: Sendable, Equatable {
        /// A line: its first `length` bytes, without the terminator; `consumed` is the line and its terminator.
        case line(length: Int, consumed: Int)
        /// A line over the limit, `length` its bytes before the `\n`, reported once; `consumed` is
        /// what is left of it in the buffer (all of it, or the part after what was discarded) and the `\n`.
        case tooLong(length: Int, consumed: Int)
        /// No complete line yet: drop `consumed` bytes (all of them while a line already over the
        /// limit is being discarded, otherwise none) and wait for more.
        case needMore(consumed: Int)
    }

    package let maxLength: Int
    private var discarding = false
    private var discarded = 0
    /// Bytes at the start of the buffer already searched for a newline: a long line
    /// arriving in many chunks is scanned once, not once per chunk.
    private var scanned = 0

    package init(maxLength: Int) { self.maxLength = maxLength }

    /// The next step for the buffered bytes (`buffered.startIndex` is the first byte not consumed).
    package mutating func next<Bytes: BidirectionalCollection<UInt8>>(in buffered: Bytes) -> Step where Bytes.Index == Int {
        let from = buffered.startIndex + min(scanned, buffered.count)
        if let nl = buffered[from...].firstIndex(of: 0x0A) {
            scanned = 0
            let len = nl - buffered.startIndex
            let content = len > 0 && buffered[nl - 1] == 0x0D ? len - 1 : len
            if discarding {
                let total = discarded + len
                discarding = false
                discarded = 0
                return .tooLong(length: total, consumed: len + 1)
            }
            if content > maxLength { return .tooLong(length: len, consumed: len + 1) }
            return .line(length: content, consumed: len + 1)
        }
        // One byte beyond the limit may still be the CR of a line exactly at it.
        if discarding || buffered.count > maxLength + 1 {
            discarded += buffered.count
            discarding = true
            scanned = 0
            return .needMore(consumed: buffered.count)
        }
        scanned = buffered.count
        return .needMore(consumed: 0)
    }

    /// At the end of the stream, with `remaining` bytes left after `next(in:)` asked for more:
    /// the last frame, if any (a final line without a newline is still a request, or a line too
    /// long to be one). The remaining bytes are consumed, and framing starts afresh.
    package mutating func last(remaining: Int) -> Step? {
        defer {
            discarding = false
            discarded = 0
            scanned = 0
        }
        if discarding { return .tooLong(length: discarded + remaining, consumed: remaining) }
        if remaining > maxLength { return .tooLong(length: remaining, consumed: remaining) }
        if remaining > 0 { return .line(length: remaining, consumed: remaining) }
        return nil
    }
}
