import Foundation
import RedlineConfig
import RedlineCore

/// The package root: the folder holding Package.swift, found from this file.
let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        url = url.deletingLastPathComponent()
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

func repoPath(_ relative: String) -> String { packageRoot.appendingPathComponent(relative).path }

let devicesDir = repoPath("Devices")
let demoSite = repoPath("Firmware-Configs/demo-datacenter.yaml")
let demoGPIOSite = repoPath("Firmware-Configs/demo-datacenter-gpio.yaml")

/// Loads a site and returns its diagnostics (empty when it loads).
func diagnostics(site file: String, devices: String = devicesDir) -> [ConfigDiagnostic] {
    do {
        _ = try SiteLoader.load(siteFile: file, devicesDir: devices)
        return []
    } catch {
        return error.diagnostics
    }
}

/// Writes text to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, name: String = "site.yaml") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redline-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}
