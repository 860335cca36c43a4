#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An oracle found an input the code under test gets wrong.
public struct OracleFailure: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One fuzz oracle: throws on a wrong answer; a crash of the code under test is a crash.
public typealias Oracle = @Sendable ([UInt8]) throws(OracleFailure) -> Void

/// The two ways a fuzz target runs: under libFuzzer, or replaying files and folders.
public enum FuzzHarness {
    /// The body of `LLVMFuzzerTestOneInput`: an oracle failure aborts, so libFuzzer keeps the input.
    public static func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int, _ oracle: Oracle) -> Int32 {
        let bytes = Array(UnsafeBufferPointer(start: data, count: size))
        do { try oracle(bytes) } catch {
            printError("ORACLE FAILURE: \(error.description)")
            abort()
        }
        return 0
    }

    /// Every regular file at `path`, or in it (recursively) when it is a folder, sorted.
    public static func files(at path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return [] }
        guard isDir.boolValue else { return [path] }
        guard let e = FileManager.default.enumerator(atPath: path) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            let full = path + "/" + rel
            var d: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &d), !d.boolValue,
               !rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { out.append(full) }
        }
        return out.sorted()
    }

    /// Replays every file given (files or folders) through `oracle`; the exit status of a replay run.
    public static func replay(_ paths: some Sequence<String>, _ oracle: Oracle) -> Int32 {
        var n = 0
        var failed = 0
        for path in paths {
            for f in files(at: path) {
                guard let data = FileManager.default.contents(atPath: f) else {
                    printError("\(f): cannot read")
                    failed += 1
                    continue
                }
                n += 1
                do { try oracle(Array(data)) } catch {
                    printError("\(f): ORACLE FAILURE: \(error.description)")
                    failed += 1
                }
            }
        }
        print("replayed \(n) inputs, \(failed) failed")
        return failed == 0 ? 0 : 1
    }

    /// `main` of a fuzz target built without libFuzzer.
    public static func replayMain(_ oracle: Oracle) -> Never {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.isEmpty {
            printError("usage: \(CommandLine.arguments[0]) FILE_OR_FOLDER...")
            exit(2)
        }
        exit(replay(args, oracle))
    }
}

/// A small deterministic generator driven by the fuzz input (so a crash input replays exactly).
public struct InputReader {
    let bytes: [UInt8]
    var i = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var isAtEnd: Bool { i >= bytes.count }
    public var rest: [UInt8] { i < bytes.count ? Array(bytes[i...]) : [] }
    public mutating func byte() -> UInt8 {
        guard i < bytes.count else { return 0 }
        defer { i += 1 }
        return bytes[i]
    }
    public mutating func u16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }
    public mutating func take(_ n: Int) -> [UInt8] {
        let end = min(bytes.count, i + max(0, n))
        defer { i = end }
        return i < end ? Array(bytes[i..<end]) : []
    }
}

/// splitmix64, for chunk sizes and mutation positions seeded by the input.
public struct SplitMix {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

/// FNV-1a, to seed a generator from bytes.
public func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

/// One line on standard error.
func printError(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
