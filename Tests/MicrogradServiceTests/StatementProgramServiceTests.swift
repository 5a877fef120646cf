import Foundation
import MicrogradService
import Testing

/// The lecture's statement program through `/graphs`: registered once, evaluated again with new leaf values.
@Suite struct StatementProgramServiceTests {
    static let lecture = #"{"expression": "a = 2.0\nb = -3.0\nc = 10.0\ne = a*b\nd = e + c\nf = -2.0\nL = d * f"}"#

    @Test func aProgramRegistersWithItsNamedLeavesAsInputs() throws {
        let service = GraphService()
        let registered = RegisteredGraphTests.call(service, "POST", "/graphs", Self.lecture)
        #expect(registered.status == 201)
        let body = try RegisteredGraphTests.object(registered)
        let gid = try #require(body["graph"] as? String)
        #expect(body["output"] as? String == "L")
        #expect(body["inputs"] as? [String] == ["a", "b", "c", "f"])
        #expect(body["nodes"] as? Int == 7)

        // One step of gradient descent on a (a.grad = 6), as the page's Step does: a = 2 - 0.01 * 6.
        let step = RegisteredGraphTests.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"a": 1.94}}"#)
        #expect(step.status == 200)
        let evaluated = try RegisteredGraphTests.object(step)
        #expect(evaluated["output"] as? String == "L")
        let value = try #require(evaluated["value"] as? Double)
        #expect(abs(value - (1.94 * -3 + 10) * -2) < 1e-12 && value < -8)
    }

    @Test func aProgramThatDoesNotCompileIsNotRegistered() throws {
        let service = GraphService()
        let twice = RegisteredGraphTests.call(service, "POST", "/graphs", #"{"expression": "a = 1\na = 2"}"#)
        #expect(twice.status == 422)
        let problem = try RegisteredGraphTests.object(twice)
        #expect(problem["line"] as? Int == 2 && problem["column"] as? Int == 1 && problem["pointer"] as? String == "/expression")
        let unbound = RegisteredGraphTests.call(service, "POST", "/graphs", #"{"expression": "y = p*q"}"#)
        #expect(try RegisteredGraphTests.object(unbound)["unbound"] as? [String] == ["p", "q"])
    }
}
