import RedlineConfig
import RedlineCore

/// Start-up refusals beyond a valid site (all exit 78, EX_CONFIG): checks of the world the
/// site is deployed in, which `redlinectl check` on another machine cannot make.
extension RedlineDaemon {
    /// Every file the site was loaded from (the site file and every profile file of the devices
    /// folder, whatever its name) and every folder holding one: owned by root or redlined's
    /// user, writable by nobody else.
    static func checkConfigFiles(_ loaded: LoadedSite) throws(StartupError) {
        let problems = ConfigFileCheck.problems(loaded)
        guard problems.isEmpty else {
            throw StartupError(message: "refusing an unprotected configuration:\n" + problems.map(\.message).joined(separator: "\n"), exitCode: 78)
        }
    }
}
