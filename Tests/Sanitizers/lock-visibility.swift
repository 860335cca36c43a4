// A correct program: every access to the model is under one RedlineSync.Lock. scripts/sanitizers.sh
// builds it twice with ThreadSanitizer, beside Sources/RedlineSync/Lock.swift:
//   without -DREDLINE_TSAN, Lock is Synchronization.Mutex, which locks with futexes TSan does not
//     see on Linux, so TSan reports a race here that is not one (the control: TSan is working, and
//     still blind to Mutex);
//   with -DREDLINE_TSAN, Lock is a pthread mutex and TSan must report nothing (the check that the
//     sanitizer build's lock is one TSan sees).
import Foundation
struct Model { var a: [Double] = Array(repeating: 0, count: 100); mutating func step() { for i in a.indices { a[i] += 1 } } }
final class Box: Sendable {
    private let m = Lock(Model())
    func with<T: Sendable>(_ body: (inout Model) -> T) -> T { m.withLock { body(&$0) } }
}
let b = Box()
let g = DispatchGroup()
for _ in 0..<4 {
    let t = Thread { for _ in 0..<2000 { b.with { $0.step() } }; g.leave() }
    g.enter(); t.start()
}
g.wait()
print(b.with { $0.a[0] })
