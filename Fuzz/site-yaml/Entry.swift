// Fuzz target `site-yaml`: see Fuzz/Oracles/SiteOracle.swift for what it checks, scripts/fuzz.sh to run it.
import RedlineFuzzOracles

#if REDLINE_LIBFUZZER
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzHarness.fuzz(data, size, SiteOracle.check)
}
#else
/// Without libFuzzer: replays the files and folders given as arguments through the same oracle,
/// and compares its verdict with the whole `SiteLoader.load`.
@main enum Replay {
    static func main() { FuzzHarness.replayMain(SiteOracle.checkWithLoader) }
}
#endif
