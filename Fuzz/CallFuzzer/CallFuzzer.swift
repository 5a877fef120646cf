import FuzzEntryPoints

// Built normally: a corpus replayer (`CallFuzzer DIR...`). Built with -DFUZZING -sanitize=fuzzer (scripts/fuzz):
// hands control to libFuzzer's driver. SwiftPM links executables with main aliased to this module's @main, so
// the driver is started from here rather than from libFuzzer's own main.
@main
enum CallFuzzer {
    static func main() {
        #if FUZZING
        runLibFuzzer { FuzzTargets.call($0) }
        #else
        CorpusReplayer.main(name: "CallFuzzer", entry: FuzzTargets.call)
        #endif
    }
}
