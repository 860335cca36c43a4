import ArgumentParser
import Foundation
import RedlineConfig
import RedlineCore

/// `redlinectl check FILE [--devices DIR] [--matrix [--json]]`
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a site configuration, or print its cause-and-effect matrix.",
        discussion: """
            Without --matrix, prints `ok: SITE (N points, M agents)` or every error as \
            FILE:LINE:COLUMN: message, and exits non-zero on errors.
            With --matrix, prints which agent may do what to each life-safety point and which \
            red line stops it, derived by evaluating the real policy on calm and dangerous plants.
            For each serial (Modbus RTU) bus, prints the time one scan takes on the line and how \
            it was computed; a site whose line cannot sustain its scan interval is an error.
            """
    )

    @OptionGroup var siteArgs: SiteArguments

    @Flag(name: .long, help: "Print the cause-and-effect matrix.")
    var matrix = false

    @Flag(name: .long, help: "With --matrix: print JSON instead of text.")
    var json = false

    func run() throws {
        let site = try siteArgs.load()
        if matrix {
            let m = CauseEffectMatrix(site: site)
            print(json ? m.json().encoded() : m.text(), terminator: json ? "\n" : "")
        } else {
            if json { throw ValidationError("--json applies only with --matrix") }
            print("ok: \(site.name) (\(site.points.count) points, \(site.agents.count) agents)")
            for bus in site.buses {
                guard case .modbusRTU(let s) = bus.kind else { continue }
                let budget = SerialScanBudget(baud: s.baud, points: site.points.filter { $0.bus == bus.id })
                print("scan budget of bus '\(bus.id)': \(SerialScanBudget.ms(budget.totalMs)) ms of the \(site.timing.scanIntervalMs) ms scan interval (\(budget.explanation))")
            }
        }
    }
}
