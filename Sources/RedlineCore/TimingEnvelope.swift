/// How long one scan of a serial (Modbus RTU) line takes at best, from its baud rate and the
/// reads the scanner makes on it (`ModbusReadPlan`, the backend's own plan).
///
///     time = (request bytes + response bytes) x 11 bits / baud
///          + transactions x (2 x t3.5 + turnaround)
///
/// where every read is one transaction (one request frame of 8 bytes and one response frame of
/// 5 + data bytes), t3.5 is the 3.5-character silent interval before each frame (1.75 ms above
/// 19200 baud, as the Modbus serial-line specification fixes it), and the turnaround is a
/// compiled-in allowance for the device to answer (`Limits.serialTurnaroundMs`). A line whose
/// scan takes longer than the scan interval cannot keep its readings fresh. Writes, their
/// read-backs and retries come on top of this, so it is a lower bound.
public struct SerialScanBudget: Sendable, Hashable {
    public var baud: Int
    public var transactions: Int
    public var requestBytes: Int
    public var responseBytes: Int
    /// One character: 11 bits at the baud rate (ms).
    public var characterMs: Double
    /// One silent interval between frames (ms).
    public var gapMs: Double
    public var turnaroundMs: Double
    /// The whole scan (ms).
    public var totalMs: Double

    /// The budget of reading `points` (the points of one bus) over a line at `baud`.
    public init(baud: Int, points: [Point]) {
        let reads = ModbusReadPlan.plan(points).reads
        self.baud = baud
        transactions = reads.count
        requestBytes = reads.reduce(0) { $0 + $1.rtuRequestBytes }
        responseBytes = reads.reduce(0) { $0 + $1.rtuResponseBytes }
        let b = Double(Swift.max(1, baud))
        characterMs = Limits.serialBitsPerCharacter / b * 1000
        gapMs = baud > 19200 ? Limits.serialInterFrameFixedMs : Limits.serialInterFrameCharacters * characterMs
        turnaroundMs = Limits.serialTurnaroundMs
        totalMs = Double(requestBytes + responseBytes) * characterMs + Double(transactions) * (2 * gapMs + turnaroundMs)
    }

    /// Whether a scan fits in `scanIntervalMs`.
    public func fits(scanIntervalMs: Int64) -> Bool { totalMs <= Double(scanIntervalMs) }

    /// How the figure was computed, in one sentence.
    public var explanation: String {
        let gap = baud > 19200 ? "\(Self.ms(gapMs)) ms (fixed above 19200 baud)" : "3.5 characters = \(Self.ms(gapMs)) ms"
        return "\(transactions) read transaction\(transactions == 1 ? "" : "s") per scan, "
            + "\(requestBytes) request + \(responseBytes) response bytes x \(fmt(Limits.serialBitsPerCharacter)) bits per character "
            + "/ \(baud) baud = \(Self.ms(Double(requestBytes + responseBytes) * characterMs)) ms, "
            + "plus per transaction 2 inter-frame gaps of \(gap) and \(Self.ms(turnaroundMs)) ms turnaround: \(Self.ms(totalMs)) ms in all"
    }

    /// Milliseconds with at most 2 decimals.
    public static func ms(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return fmt(r)
    }
}
