#if FUZZING
#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): parses libFuzzer's flags from argv and calls the
/// callback once per input. `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t))`.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// The entry point libFuzzer calls; set once before the driver starts, read only on the driver's thread.
nonisolated(unsafe) fileprivate var currentTarget: ((UnsafeBufferPointer<UInt8>) -> Void)?

/// Runs libFuzzer over `target` with this process's arguments, then exits with its status.
public func runLibFuzzer(_ target: @escaping (UnsafeBufferPointer<UInt8>) -> Void) -> Never {
    currentTarget = target
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in llvmFuzzerTestOneInput(data, size) }
    exit(status)
}

/// libFuzzer's runtime archive references this symbol whatever the entry point; it dispatches to the same target.
@_cdecl("LLVMFuzzerTestOneInput")
public func llvmFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    currentTarget?(UnsafeBufferPointer(start: data, count: size))
    return 0
}
#endif
