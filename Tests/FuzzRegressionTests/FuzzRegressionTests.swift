import Foundation
import RedlineFuzzOracles
import Testing

/// Replays every input under Tests/FuzzRegressions/<target>/ (minimized crashes and oracle
/// failures found by scripts/fuzz.sh) and the target's seeds through the fuzz target's own
/// oracle, so a fixed bug stays fixed without libFuzzer.
@Suite("Fuzz regressions") struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test("every regression input passes its oracle", arguments: FuzzTargets.all.map(\.name))
    func regressions(target: String) throws {
        let oracle = try #require(FuzzTargets.oracle(named: target))
        let files = FuzzHarness.files(at: Self.root + "/Tests/FuzzRegressions/" + target)
        for f in files {
            let data = try #require(FileManager.default.contents(atPath: f), "cannot read \(f)")
            #expect(throws: Never.self, "\(f)") { try oracle(Array(data)) }
        }
    }

    @Test("the seeds of every target pass its oracle", arguments: FuzzTargets.all.map(\.name))
    func seeds(target: String) throws {
        let oracle = try #require(FuzzTargets.oracle(named: target))
        for f in FuzzSeeds.files(target: target, root: Self.root) {
            let data = try #require(FileManager.default.contents(atPath: f), "cannot read \(f)")
            #expect(throws: Never.self, "\(f)") { try oracle(Array(data)) }
        }
    }
}
