import FuzzEntryPoints

// Built normally: a corpus replayer (`ExpressionFuzzer DIR...`). Built with -DFUZZING -sanitize=fuzzer (scripts/fuzz):
// hands control to libFuzzer's driver. SwiftPM links executables with main aliased to this module's @main, so
// the driver is started from here rather than from libFuzzer's own main.
@main
enum ExpressionFuzzer {
    static func main() {
        #if FUZZING
        runLibFuzzer { FuzzTargets.compile($0) }
        #else
        CorpusReplayer.main(name: "ExpressionFuzzer", entry: FuzzTargets.compile)
        #endif
    }
}
