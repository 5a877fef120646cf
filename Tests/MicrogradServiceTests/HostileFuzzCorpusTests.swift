import Foundation
import FuzzEntryPoints
import MicrogradGraph
import Testing

/// The committed fuzz seed corpora (Fuzz/corpus), replayed through the fuzz entry points in the normal build: each
/// input must decode/compile/evaluate without trapping and keep the contract the entry points check. The entry
/// points accept refusals (that is their job on random bytes), so the outcome of each seed is pinned here too.
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
        #expect(count == (try Self.seeds(target)).count)
    }

    /// Every seed of the evaluate corpus is a valid graph (a refused one would test nothing there), and the decoder
    /// corpus accepts exactly those and refuses the rest.
    @Test func graphSeedsDecodeExactlyWhenTheyAreMeantTo() throws {
        let evaluable = Set(try Self.seeds("evaluate").map(\.name))
        #expect(evaluable.count >= 15)
        for seed in try Self.seeds("evaluate") {
            #expect(throws: Never.self, "\(seed.name)") { try GraphRequestDecoder.decode(seed.bytes, limits: FuzzTargets.limits) }
        }
        var accepted: Set<String> = [], refused = 0
        for seed in try Self.seeds("decoder") {
            do {
                _ = try GraphRequestDecoder.decode(seed.bytes, limits: FuzzTargets.limits)
                accepted.insert(seed.name)
            } catch {
                refused += 1
            }
        }
        #expect(accepted == evaluable)
        #expect(refused >= 25, "the decoder corpus holds refusals too")
    }

    /// Which expression seeds compile (with the fuzzer's bound variables) is part of the corpus: pinned.
    @Test func expressionSeedsCompileExactlyWhenTheyAreMeantTo() throws {
        var compiled: [String] = []
        for seed in try Self.seeds("expression") {
            let source = String(decoding: seed.bytes, as: UTF8.self)
            if (try? ExpressionCompiler.compile(source, values: FuzzTargets.boundVariables, limits: FuzzTargets.limits)) != nil {
                compiled.append(seed.name)
            }
        }
        #expect(compiled == Self.compilingExpressionSeeds)
    }

    /// e00-e13 are well-formed expressions, e14-e31 syntax and arity errors, e32-e39 non-finite and edge values,
    /// e40-e43 and e49 statement programs, e44-e48 statement programs with name or syntax errors.
    static let compilingExpressionSeeds = (Array(0...13) + Array(32...43) + [49]).map { String(format: "e%02d.txt", $0) }

    static func seeds(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map { name in
            (name, Array(try Data(contentsOf: directory.appendingPathComponent(name))))
        }
    }
}
