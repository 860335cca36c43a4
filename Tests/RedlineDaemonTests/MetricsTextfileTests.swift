import Foundation
@testable import RedlineDaemon
import RedlineTestSupport
import Testing

/// The textfile's replacement (`MetricsTextfile.replace`): whole or not at all, readable by node_exporter.
@Suite("Metrics textfile replacement")
struct MetricsTextfileTests {
    func mode(_ path: String) throws -> Int {
        try #require((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
    }

    @Test("the file is replaced whole through PATH.tmp, mode 0644 even over a stale 0600 temporary file of a crash")
    func replacesWhole() throws {
        let dir = TempDir(prefix: "rlmtf")
        let path = dir.file("redline.prom")
        #expect(MetricsTextfile.replace(path, with: Array("redline_ready 1.0\n".utf8)) == nil)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "redline_ready 1.0\n")
        // A crash between open and rename left PATH.tmp behind, created under the unit's umask 0077.
        _ = try dir.write("redline.prom.tmp", "half a fi")
        chmod(path + ".tmp", 0o600)
        #expect(MetricsTextfile.replace(path, with: Array("redline_ready 0.0\n".utf8)) == nil)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "redline_ready 0.0\n")
        #expect(try mode(path) == 0o644, "node_exporter runs as another user")
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    @Test("a failure says why and leaves the last good file and no temporary file")
    func failures() throws {
        let missing = MetricsTextfile.replace("/nonexistent-redline-dir/redline.prom", with: Array("x 1\n".utf8))
        #expect(missing?.contains("cannot open /nonexistent-redline-dir/redline.prom.tmp") == true, "\(missing ?? "nil")")
        let dir = TempDir(prefix: "rlmtf")
        // PATH is a non-empty folder: the rename fails, and the temporary file is removed.
        let path = dir.file("busy")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        _ = try dir.write("busy/keep", "kept")
        let renamed = MetricsTextfile.replace(path, with: Array("x 1\n".utf8))
        #expect(renamed?.contains("cannot rename") == true, "\(renamed ?? "nil")")
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        #expect(try String(contentsOfFile: path + "/keep", encoding: .utf8) == "kept")
    }
}
