import Foundation
import FuzzEntryPoints
import Testing

/// The committed fuzz seed corpora (Fuzz/corpus), replayed through the fuzz entry points in the normal build: each
/// input must decode/compile/evaluate without trapping and keep the contract the entry points check.
@Suite("Fuzz corpora replay")
struct HostileFuzzCorpusTests {
    static let corpus = repositoryRoot.appendingPathComponent("Fuzz/corpus")

    @Test(arguments: ["decoder", "expression", "evaluate", "call"])
    func replaysTheCommittedCorpus(_ target: String) throws {
        let entry: (UnsafeBufferPointer<UInt8>) -> Void =
            switch target {
            case "decoder": FuzzTargets.decode
            case "expression": FuzzTargets.compile
            case "call": FuzzTargets.call
            default: FuzzTargets.evaluate
            }
        let count = try CorpusReplayer.replay([Self.corpus.appendingPathComponent(target).path], through: entry)
        #expect(count >= 10, "the \(target) corpus should hold its seeds")
    }
}
