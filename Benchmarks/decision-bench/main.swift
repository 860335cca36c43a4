// decision-bench: latency of Policy.decide on the demo site and on a generated
// site of 10,000 points, with a trivial dictionary lookup as the in-run baseline.
//
//   swift run -c release decision-bench [iterations]
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Histogram
import RedlineClient
import RedlineCore

@inline(__always) func nowNs() -> UInt64 { Monotonic.nanoseconds() }

struct Workload {
    let name: String
    let states: [PolicyState]
    let commands: [WriteCommand]
}

struct Result {
    let name: String
    var hist: Histogram<UInt64>
    var checksum: Int
    var p50: UInt64 { hist.valueAtPercentile(50) }
    var p99: UInt64 { hist.valueAtPercentile(99) }
    var p999: UInt64 { hist.valueAtPercentile(99.9) }
}


/// Times `body(i)` once per iteration (after a warm-up), recording nanoseconds.
func measure(_ name: String, iterations: Int, _ body: (Int) -> Int) -> Result {
    var sink = 0
    var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
    for i in 0..<min(iterations, 50_000) { sink &+= body(i) }
    for i in 0..<iterations {
        let t0 = nowNs()
        let r = body(i)
        let t1 = nowNs()
        sink &+= r
        h.record(t1 &- t0)
    }
    return Result(name: name, hist: h, checksum: sink)
}

func code(_ d: Decision) -> Int {
    switch d {
    case .allowed: return 1
    case .held: return 2
    case .unknownPoint: return 3
    case .denied(let r, _): return 4 + r.hashValue & 0xF
    }
}

func run(_ w: Workload, iterations: Int) -> (Result, [String: Int]) {
    let nc = w.commands.count, ns = w.states.count
    var outcomes: [String: Int] = [:]
    for (k, c) in w.commands.enumerated() {
        let d = Policy.decide(c, in: w.states[k % ns])
        let key: String
        switch d {
        case .allowed: key = "allowed"
        case .held: key = "held"
        case .unknownPoint: key = "unknown point"
        case .denied(let r, _): key = r.rawValue
        }
        outcomes[key, default: 0] += 1
    }
    let r = measure(w.name, iterations: iterations) { i in
        code(Policy.decide(w.commands[i % nc], in: w.states[(i / nc) % ns]))
    }
    return (r, outcomes)
}

func baseline(_ w: Workload, iterations: Int) -> Result {
    // A trivial lookup: point id -> index, the least any decision must do.
    var index: [String: Int] = [:]
    for (i, p) in w.states[0].site.points.enumerated() { index[p.id] = i }
    let ids = w.commands.map(\.point)
    return measure("baseline: [String: Int] lookup (\(w.name))", iterations: iterations) { i in
        index[ids[i % ids.count]] ?? -1
    }
}

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let workloads = [Sites.demoWorkload(), Sites.largeWorkload(zones: 400)]

func us(_ ns: UInt64) -> String {
    let v = Double(ns) / 1000
    let s = String(Int((v * 1000).rounded()))
    let pad = String(repeating: "0", count: max(0, 4 - s.count)) + s
    return String(pad.dropLast(3)) + "." + String(pad.suffix(3))
}

var sink = 0
print("decision-bench: \(iterations) timed decisions per workload (plus warm-up)")
for w in workloads {
    let points = w.states[0].site.points.count
    let zones = w.states[0].site.zones.count
    let (r, outcomes) = run(w, iterations: iterations)
    let b = baseline(w, iterations: iterations)
    sink &+= r.checksum &+ b.checksum
    print("")
    print("\(w.name): \(points) points, \(zones) zones, \(w.states[0].site.agents.count) agents, \(w.commands.count) commands x \(w.states.count) plant states")
    print("  outcomes: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    print("  decide    p50 \(us(r.p50)) us  p99 \(us(r.p99)) us  p99.9 \(us(r.p999)) us  max \(us(r.hist.max)) us")
    print("  baseline  p50 \(us(b.p50)) us  p99 \(us(b.p99)) us  (\(b.name))")
    let ratio50 = Double(r.p50) / Double(max(b.p50, 1)), ratio99 = Double(r.p99) / Double(max(b.p99, 1))
    print("  ratio to baseline: p50 x\(String(format1(ratio50)))  p99 x\(String(format1(ratio99)))")
}
print("")
print("targets: p99 <= 5 us (demo), <= 20 us (10k points)  [checksum \(sink & 0xFF)]")

func format1(_ v: Double) -> String {
    let t = (v * 10).rounded() / 10
    return String(t)
}
