import FuzzEntryPoints

// Built normally: a corpus replayer (`EvaluateFuzzer DIR...`). Built with -DFUZZING -sanitize=fuzzer: libFuzzer's
// entry point only (libFuzzer supplies main). See scripts/fuzz.
#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.evaluate(UnsafeBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum EvaluateReplayer {
    static func main() {
        CorpusReplayer.main(name: "EvaluateFuzzer", entry: FuzzTargets.evaluate)
    }
}
#endif
