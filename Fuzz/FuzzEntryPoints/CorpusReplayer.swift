#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs every file of the given corpus directories (or files) through one fuzz entry point, so a normal
/// (non-fuzzer) build can check the committed corpus and replay a crash file found elsewhere.
public enum CorpusReplayer {
    /// Returns the number of inputs run. Subdirectories are not descended into; files are run in name order.
    @discardableResult
    public static func replay(_ paths: [String], through entry: (UnsafeBufferPointer<UInt8>) -> Void) throws -> Int {
        var count = 0
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ReplayError("no such file or directory: \(path)")
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                let bytes = try readFile(file)
                bytes.withUnsafeBufferPointer { entry($0) }
                count += 1
            }
        }
        return count
    }

    /// The file's bytes. Not `Data(contentsOf:)`: on this toolchain it leaks a 4 KiB buffer for every empty file
    /// (LeakSanitizer, swift test --sanitize=address), and the corpus holds empty inputs on purpose.
    static func readFile(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw ReplayError("cannot open \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { bytes += chunk[..<count] }
            if count < chunk.count {
                if ferror(file) != 0 { throw ReplayError("cannot read \(path)") }
                return bytes
            }
        }
    }

    /// The replayer executables' `main`: arguments are corpus paths; exit 0 once all ran.
    public static func main(name: String, entry: (UnsafeBufferPointer<UInt8>) -> Void) -> Never {
        let paths = Array(CommandLine.arguments.dropFirst()).filter { !$0.hasPrefix("-") }
        guard !paths.isEmpty else {
            FileHandle.standardError.write(Data("usage: \(name) CORPUS_DIR_OR_FILE...\n".utf8))
            exit(2)
        }
        do {
            let count = try replay(paths, through: entry)
            print("\(name): replayed \(count) inputs, no failure")
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(1)
        }
    }
}

public struct ReplayError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
