import Foundation
import Micrograd
import MicrogradGraph
import Testing

/// openapi.yaml and the page's script spell the ops by hand; they must say what the engine's `Op` says.
@Suite("Ops in the spec and the page")
struct OpVocabularyTests {
    func file(_ path: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    /// The items of the first `enum: [...]` after `marker`, quotes removed.
    func enumAfter(_ marker: String, in text: String) throws -> [String] {
        let start = try #require(text.range(of: marker)).upperBound
        let open = try #require(text.range(of: "enum: [", range: start..<text.endIndex)).upperBound
        let close = try #require(text.range(of: "]", range: open..<text.endIndex)).lowerBound
        return text[open..<close].split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        }
    }

    @Test func openAPIListsEveryOpNameAndSymbol() throws {
        let spec = try file("openapi.yaml")
        #expect(try enumAfter("    OpName:", in: spec) == OpVocabulary.names + OpVocabulary.symbols)
        #expect(try enumAfter("    EvaluatedNode:", in: spec) == OpVocabulary.names)
        let expression = try #require(spec.range(of: "    ExpressionRequest:"))
        let description = spec[expression.upperBound...].prefix(600)
        for function in OpVocabulary.functions {
            #expect(description.contains(function.arity == 1 ? function.name : "\(function.name)(a, b)"), "\(function.name)")
        }
    }

    /// The page recomputes values and explains gradients op by op, and draws each op with micrograd's symbol.
    @Test func thePageKnowsEveryOp() throws {
        let script = try file("web/app.js")
        let start = try #require(script.range(of: "const SYMBOLS = {")).upperBound
        let end = try #require(script.range(of: "}", range: start..<script.endIndex)).lowerBound
        var symbols: [String: String] = [:]
        for pair in script[start..<end].split(separator: ",") {
            let parts = pair.split(separator: ":").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \n\"")) }
            if parts.count == 2 { symbols[parts[0]] = parts[1] }
        }
        var expected: [String: String] = [:]
        for op in Op.allCases where op != .leaf { expected[op.name] = op.symbol }
        #expect(symbols == expected)
        for name in OpVocabulary.names {
            #expect(script.components(separatedBy: "case \"\(name)\":").count - 1 >= 2, "\(name): forward and backward cases")
        }
    }

    @Test func theDecoderAndCompilerAcceptEveryOp() throws {
        for name in OpVocabulary.names + OpVocabulary.symbols {
            let inputs = name == "pow" || name == "**" ? #"["a"],"exponent":2"# : name == "neg" || OpVocabulary.functions
                .contains(where: { $0.name == name && $0.arity == 1 }) ? #"["a"]"# : #"["a","a"]"#
            let body = #"{"nodes":[{"id":"a","value":0.5},{"id":"b","op":"\#(name)","inputs":\#(inputs)}]}"#
            #expect(throws: Never.self, "\(name)") { try GraphRequestDecoder.decode(Array(body.utf8), limits: GraphLimits()) }
        }
        for function in OpVocabulary.functions {
            let call = function.arity == 1 ? "\(function.name)(x)" : "\(function.name)(x, 2)"
            #expect(throws: Never.self, "\(call)") {
                try ExpressionCompiler.compile(call, values: [("x", 0.5)], limits: GraphLimits())
            }
        }
    }
}
