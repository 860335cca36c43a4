// Fuzz target `rpc-lines`: see Fuzz/Oracles/RPCLinesOracle.swift for what it checks, scripts/fuzz.sh to run it.
// scripts/fuzz.sh compiles this target as one module with the code it fuzzes
// (REDLINE_FUZZ_SINGLE_MODULE), so that libFuzzer sees the coverage of all of it; NIO is not
// in that build. The SwiftPM build (a replayer) checks the frames through NIO's LineDecoder too.
#if !REDLINE_FUZZ_SINGLE_MODULE
import RedlineFuzzOracles
#endif

#if REDLINE_LIBFUZZER
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzHarness.fuzz(data, size, RPCLinesOracle.check)
}
#else
/// Without libFuzzer: replays the files and folders given as arguments through the same oracle
/// and the NIO decoder.
@main enum Replay {
    static func main() { FuzzHarness.replayMain(RPCLinesThroughNIO.check) }
}
#endif
