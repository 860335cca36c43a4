// Fuzz target `bacnet-replies`: see Fuzz/Oracles/BACnetRepliesOracle.swift for what it checks, scripts/fuzz.sh to run it.
// scripts/fuzz.sh compiles this target as one module with the code it fuzzes
// (REDLINE_FUZZ_SINGLE_MODULE), so that libFuzzer sees the coverage of all of it.
#if !REDLINE_FUZZ_SINGLE_MODULE
import RedlineFuzzOracles
#endif

#if REDLINE_LIBFUZZER
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzHarness.fuzz(data, size, BACnetRepliesOracle.check)
}
#else
/// Without libFuzzer: replays the files and folders given as arguments through the same oracle.
@main enum Replay {
    static func main() { FuzzHarness.replayMain(BACnetRepliesOracle.check) }
}
#endif
