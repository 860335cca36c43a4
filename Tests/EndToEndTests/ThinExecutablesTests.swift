import Foundation
import RedlineTestSupport
import Testing

/// The `redlinectl` shipped on a controller carries no HIL runner or fuzzer; `redline-hil` does.
/// Checked on the built binaries themselves: a Swift module's symbols and type metadata carry its
/// mangled name (`10RedlineHIL` for RedlineHIL), so a binary that links the module contains it.
@Suite("Thin executables: redlinectl without RedlineHIL, redline-hil with it")
struct ThinExecutablesTests {
    static func binary(_ name: String) throws -> (path: String, bytes: Data) {
        let path = try #require(TestPaths.executable(name), "\(name) is not built (run `swift build` first)")
        return (path, try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped))
    }

    static func run(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    @Test("redlinectl links MCP but not RedlineHIL; redline-hil links RedlineHIL")
    func linkedModules() throws {
        let ctl = try Self.binary("redlinectl")
        let hil = try Self.binary("redline-hil")
        let hilModule = Data("10RedlineHIL".utf8)
        #expect(ctl.bytes.range(of: hilModule) == nil, "\(ctl.path) links RedlineHIL (the scenario runner and the fuzzer)")
        #expect(hil.bytes.range(of: hilModule) != nil, "\(hil.path) does not contain RedlineHIL: the check itself is broken")
        #expect(ctl.bytes.range(of: Data("3MCP6Server".utf8)) != nil, "\(ctl.path) lost the MCP server agents need on the controller")
        #expect(ctl.bytes.range(of: Data("10RedlineMCP".utf8)) != nil, "\(ctl.path) does not serve MCP through the RedlineMCP library")
    }

    @Test("the daemon has no HTTP in it: redlined and redlinectl do not link Hummingbird; redline-console does")
    func noHTTPInTheDaemon() throws {
        let hb = Data("11Hummingbird".utf8)
        for name in ["redlined", "redlinectl"] {
            let b = try Self.binary(name)
            #expect(b.bytes.range(of: hb) == nil, "\(b.path) links Hummingbird")
        }
        let console = try Self.binary("redline-console")
        #expect(console.bytes.range(of: hb) != nil, "\(console.path) does not contain Hummingbird: the check itself is broken")
        #expect(console.bytes.range(of: Data("14RedlineConsole".utf8)) != nil)
    }

    @Test("redlinectl has no hil command and says where it went; redline-hil --help teaches run, fuzz and --guided")
    func helpTexts() throws {
        let ctl = try Self.binary("redlinectl").path
        let hil = try Self.binary("redline-hil").path

        let top = try Self.run(ctl, ["--help"])
        #expect(top.status == 0)
        #expect(top.output.contains("redline-hil"), "redlinectl --help should point to redline-hil:\n\(top.output)")
        #expect(!top.output.contains("\n  hil "), "redlinectl --help still lists hil:\n\(top.output)")
        let gone = try Self.run(ctl, ["hil", "run", "x.yaml"])
        #expect(gone.status != 0, "redlinectl hil run must fail now:\n\(gone.output)")

        let help = try Self.run(hil, ["--help"])
        #expect(help.status == 0)
        for needle in ["run", "fuzz", "setpriv", "SO_PEERCRED"] {
            #expect(help.output.contains(needle), "`\(needle)` missing from redline-hil --help:\n\(help.output)")
        }
        let runHelp = try Self.run(hil, ["run", "--help"])
        #expect(runHelp.status == 0)
        for needle in ["--sim-control", "--guided", "--junit", "--report", "Exit status"] {
            #expect(runHelp.output.contains(needle), "`\(needle)` missing from redline-hil run --help:\n\(runHelp.output)")
        }
        let fuzzHelp = try Self.run(hil, ["fuzz", "--help"])
        #expect(fuzzHelp.status == 0)
        #expect(fuzzHelp.output.contains("--seed"))
    }
}
