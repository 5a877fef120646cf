import FuzzEntryPoints

// Built normally: a corpus replayer (`ExpressionFuzzer DIR...`). Built with -DFUZZING -sanitize=fuzzer: libFuzzer's
// entry point only (libFuzzer supplies main). See scripts/fuzz.
#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.compile(UnsafeBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum ExpressionReplayer {
    static func main() {
        CorpusReplayer.main(name: "ExpressionFuzzer", entry: FuzzTargets.compile)
    }
}
#endif
