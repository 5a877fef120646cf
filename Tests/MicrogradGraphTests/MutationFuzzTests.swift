import Micrograd
import Testing
@testable import MicrogradGraph

/// Bounded random mutations of valid requests: the decoder must answer every one with a spec or a
/// client-error Problem (never a crash), and whatever it accepts must evaluate and encode.
@Suite struct MutationFuzzTests {
    static let seeds: [String] = [
        seedRequest,
        #"{"nodes":[{"id":"x","value":"NaN"},{"id":"y","op":"**","inputs":["x",2.5e-3]},{"id":"z","op":"-","inputs":["y"]}],"output":"z"}"#,
        #"{"expression":"tanh(x*w + b) ** 2","values":{"x":1,"w":-0.5,"b":"Infinity"}}"#,
        #"{"nodes":[{"id":"\u00e9\ud834\udd1e","value":1,"label":"\"q\""},{"id":"s","op":"sigmoid","inputs":["é𝄞"]}],"extra":[{},[],null,true]}"#,
    ]

    @Test func mutatedRequestsNeverCrash() {
        var rng = SplitMix64(seed: 4)
        let interesting: [UInt8] = Array(#"{}[]",:-+.eE0123456789\u"#.utf8) + [0x00, 0x80, 0xC3, 0xED, 0xF4, 0xFF]
        var accepted = 0, rejected = 0
        let tape = Tape()
        for round in 0..<20_000 {
            var bytes = Array(Self.seeds[round % Self.seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                guard !bytes.isEmpty else { break }
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch rng.next() % 5 {
                case 0: bytes[at] = interesting.randomElement(using: &rng)!
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(interesting.randomElement(using: &rng)!, at: at)
                case 3: bytes.removeSubrange(at...)                                   // truncation
                default: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 8)], at: at)  // duplication
                }
            }
            do {
                let spec = try GraphRequestDecoder.decode(bytes, limits: GraphLimits(maxNodes: 64))
                let g = GraphEvaluator.evaluate(spec, on: tape)
                #expect(!GraphEncoder.json(g, graphID: "f").isEmpty)
                #expect(!GraphEncoder.dot(g).isEmpty)
                accepted += 1
            } catch {
                #expect(!error.detail.isEmpty, "\(error)")
                #expect(error.pointer != nil || error.column != nil, "\(error)")
                rejected += 1
            }
        }
        #expect(accepted > 100 && rejected > 100)
    }
}
