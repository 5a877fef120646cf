import Micrograd
import Testing
@testable import MicrogradGraph

@Suite struct GraphEvaluatorTests {
    @Test func seedRequestGivesTheDocumentedValues() throws {
        let g = try evaluate(seedRequest)
        let s = g.spec
        #expect(g.outputValue == 4)
        #expect(g.data[index(s, "e")] == -6)
        #expect(g.data[index(s, "p")] == 16)
        #expect(g.grad[index(s, "a")] == -3)
        #expect(g.grad[index(s, "b")] == 2)
        #expect(g.grad[index(s, "c")] == 1)
        #expect(g.grad[index(s, "e")] == 1)
        #expect(g.grad[index(s, "d")] == 1)
        #expect(g.grad[index(s, "p")] == 0)  // not an ancestor of the output
    }

    @Test func reusedNodeAccumulates() throws {
        let g = try evaluate(#"{"nodes":[{"id":"a","value":3},{"id":"b","op":"add","inputs":["a","a"]}]}"#)
        #expect(g.data == [3, 6])
        #expect(g.grad == [2, 1])
    }

    @Test func powWithTwoInputsAndConstants() throws {
        let g = try evaluate(#"{"nodes":[{"id":"x","value":2},{"id":"y","op":"pow","inputs":["x",3]},{"id":"z","op":"mul","inputs":[0.5,"y"]}]}"#)
        let s = g.spec
        #expect(g.outputValue == 4)
        #expect(g.grad[index(s, "x")] == 6)                       // 0.5 * 3 * x^2
        #expect(abs(g.grad[s.ids.firstIndex(of: "#1")!] - 4 * 0.6931471805599453) < 1e-12)  // 0.5 * x^3 * ln x
    }

    @Test func tapeIsReusedAcrossRequests() throws {
        let tape = Tape()
        let first = GraphEvaluator.evaluate(try decode(seedRequest), on: tape)
        _ = GraphEvaluator.evaluate(try decode(#"{"nodes":[{"id":"q","value":9}]}"#), on: tape)
        let again = GraphEvaluator.evaluate(try decode(seedRequest), on: tape)
        #expect(first.data == again.data)
        #expect(first.grad == again.grad)
        #expect(tape.count == 6)
    }

    @Test func nonFiniteValuesFlow() throws {
        let g = try evaluate(#"{"nodes":[{"id":"a","value":"Infinity"},{"id":"b","value":0},{"id":"c","op":"mul","inputs":["a","b"]}]}"#)
        #expect(g.outputValue.isNaN)
    }
}
