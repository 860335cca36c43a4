import RedlineConfig
import RedlineCore
import RedlineIO

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

    /// No agent's account (its primary group, or membership in the group database) is in a
    /// group the site admits to the operator socket.
    static func checkOperatorSeparation(_ site: Site, accounts: AccountDatabase = .system) throws(StartupError) {
        let problems = OperatorSeparation.violations(site: site, accounts: accounts)
        guard problems.isEmpty else {
            throw StartupError(message: "refusing a site whose agents are operators:\n" + problems.joined(separator: "\n"), exitCode: 78)
        }
    }

    /// GPIO lines resolved against the real chips: every name resolves to one line, and no
    /// line is bound twice (by offset or by name, across buses on one chip).
    static func checkGPIOLines(_ site: Site) throws(StartupError) {
        let problems = GPIOBackend.startupProblems(buses: site.buses, points: site.points)
        guard problems.isEmpty else {
            throw StartupError(message: "refusing GPIO line bindings:\n" + problems.joined(separator: "\n"), exitCode: 78)
        }
    }
}
