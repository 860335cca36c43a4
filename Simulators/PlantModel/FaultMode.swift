/// Device faults, one list for every plant that simulates them: redline-sim's devices
/// (`device.fault {device, mode}`) and the in-memory plant of the in-process tests
/// (`RedlineTesting.MemoryPlant`, which answers each with the error the real Modbus backend reports).
public enum FaultMode: String, CaseIterable, Sendable {
    /// The device is gone: its TCP listener is closed (connections refused); on RTU it never answers.
    case offline
    /// Requests are received and never answered.
    case timeout
    /// Every request is answered with exception code 4 (server device failure).
    case exception
    /// Answers are malformed frames (wrong byte count or echo on TCP, bad CRC on RTU).
    case garbage
    /// Answers carry another unit id.
    case wrongUnit = "wrong-unit"
    /// Answers come after a delay: `delay-ms` if given (`device.fault {device, mode: "slow", delayMs: N}`),
    /// else min(50 ms, half the bus's response timeout). Inside the timeout the device is still "good".
    case slow
    /// Normal operation.
    case none
}
