import FuzzEntryPoints

// Built normally: a corpus replayer (`EvaluateFuzzer DIR...`). Built with -DFUZZING -sanitize=fuzzer (scripts/fuzz):
// hands control to libFuzzer's driver. SwiftPM links executables with main aliased to this module's @main, so
// the driver is started from here rather than from libFuzzer's own main.
@main
enum EvaluateFuzzer {
    static func main() {
        #if FUZZING
        runLibFuzzer { FuzzTargets.evaluate($0) }
        #else
        CorpusReplayer.main(name: "EvaluateFuzzer", entry: FuzzTargets.evaluate)
        #endif
    }
}
