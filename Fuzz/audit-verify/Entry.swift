// Fuzz target `audit-verify`: see Fuzz/Oracles/AuditOracle.swift for what it checks, scripts/fuzz.sh to run it.
import RedlineFuzzOracles

#if REDLINE_LIBFUZZER
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzHarness.fuzz(data, size, AuditOracle.check)
}
#else
/// Without libFuzzer: replays the files and folders given as arguments through the same oracle.
@main enum Replay {
    static func main() { FuzzHarness.replayMain(AuditOracle.check) }
}
#endif
