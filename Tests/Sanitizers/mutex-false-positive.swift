// A correct program that ThreadSanitizer reports on Linux: every access to the model is under
// one Synchronization.Mutex, which locks with futexes that TSan does not see (tsan.supp).
//   swiftc -sanitize=thread -swift-version 5 mutex-false-positive.swift -o m && ./m
import Foundation
import Synchronization
struct Model { var a: [Double] = Array(repeating: 0, count: 100); mutating func step() { for i in a.indices { a[i] += 1 } } }
final class Box: Sendable {
    private let m = Mutex(Model())
    func with<T>(_ body: (inout Model) throws -> T) rethrows -> T { try m.withLock { try body(&$0) } }
}
let b = Box()
let g = DispatchGroup()
for _ in 0..<4 {
    let t = Thread { for _ in 0..<2000 { b.with { $0.step() } }; g.leave() }
    g.enter(); t.start()
}
g.wait()
print(b.with { $0.a[0] })
