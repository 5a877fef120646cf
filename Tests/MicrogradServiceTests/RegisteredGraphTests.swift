import Foundation
import HTTPServer
import Micrograd
import MicrogradGraph
import MicrogradService
import Testing

/// `/graphs`: registration, content addressing, single and batch evaluation, and every error rule of issue 13.
@Suite struct RegisteredGraphTests {
    static let neuron = #"{"expression": "tanh(x1*w1 + x2*w2 + b)", "values": {"x1": 2, "w1": -3, "x2": 0, "w2": 1, "b": 6.881373587019543}}"#

    static func call(_ service: GraphService, _ method: String, _ path: String, _ body: String = "",
                     query: [(String, String)] = [], headers: [(String, String)] = [("Content-Type", "application/json")])
        -> HTTPResponse
    {
        service.respond(to: HTTPRequest(method: method, path: path, query: query.map { (name: $0.0, value: $0.1) },
                                        headers: headers.map { (name: $0.0, value: $0.1) }, body: Array(body.utf8)))
    }

    static func object(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    static func register(_ service: GraphService, _ body: String = neuron) throws -> String {
        let response = call(service, "POST", "/graphs", body)
        #expect([200, 201].contains(response.status))
        return try #require(try object(response)["graph"] as? String)
    }

    @Test func registrationIsContentAddressed() throws {
        let service = GraphService()
        let first = Self.call(service, "POST", "/graphs", Self.neuron)
        #expect(first.status == 201)
        let body = try Self.object(first)
        let gid = try #require(body["graph"] as? String)
        #expect(first.header("Location") == "/graphs/\(gid)")
        #expect(body["output"] as? String == "#5")
        #expect(body["inputs"] as? [String] == ["x1", "w1", "x2", "w2", "b"])
        #expect(body["nodes"] as? Int == 10)
        let again = Self.call(service, "POST", "/graphs", Self.neuron)
        #expect(again.status == 200)
        #expect(again.body == first.body)
        // The same graph listed in another order: the same gid. Another value: another gid.
        let a = #"{"nodes":[{"id":"x","value":2},{"id":"y","value":3},{"id":"p","op":"mul","inputs":["x","y"]}],"output":"p"}"#
        let b = #"{"nodes":[{"id":"p","op":"mul","inputs":["x","y"]},{"id":"y","value":3},{"id":"x","value":2}],"output":"p"}"#
        let c = #"{"nodes":[{"id":"x","value":2},{"id":"y","value":4},{"id":"p","op":"mul","inputs":["x","y"]}],"output":"p"}"#
        let ga = try Self.register(service, a), gb = try Self.register(service, b), gc = try Self.register(service, c)
        #expect(ga == gb)
        #expect(ga != gc)
        #expect(ga != gid)
        // Constants are not inputs.
        let constants = Self.call(service, "POST", "/graphs", #"{"expression": "2 * x + 1", "values": {"x": 3}}"#)
        #expect(try Self.object(constants)["inputs"] as? [String] == ["x"])
        // Arrays are for evaluations, not registrations.
        let arrays = Self.call(service, "POST", "/graphs", #"{"expression": "2 * x", "values": {"x": [1, 2]}}"#)
        #expect(arrays.status == 422)
        #expect(try Self.object(arrays)["pointer"] as? String == "/values")
    }

    @Test func getAndDelete() throws {
        let service = GraphService()
        let gid = try Self.register(service)
        let shown = Self.call(service, "GET", "/graphs/\(gid)")
        #expect(shown.status == 200)
        let evaluated = Self.call(service, "POST", "/evaluate", Self.neuron)
        var expected = try Self.object(evaluated)
        expected["id"] = gid
        let got = try Self.object(shown)
        #expect(NSDictionary(dictionary: got) == NSDictionary(dictionary: expected))
        #expect(Self.call(service, "GET", "/graphs/\(gid)", query: [("format", "dot")]).header("Content-Type")?.hasPrefix("text/vnd.graphviz") == true)
        #expect(Self.call(service, "DELETE", "/graphs/\(gid)").status == 204)
        #expect(Self.call(service, "GET", "/graphs/\(gid)").status == 404)
        #expect(Self.call(service, "DELETE", "/graphs/\(gid)").status == 404)
        #expect(Self.call(service, "POST", "/graphs/\(gid)/evaluate", "{}").status == 404)
        let wrong = Self.call(service, "PUT", "/graphs/\(gid)")
        #expect(wrong.status == 405)
        #expect(wrong.header("Allow") == "DELETE, GET, HEAD")
    }

    @Test func singleEvaluationIsPostEvaluateWithThoseValues() throws {
        let service = GraphService()
        let gid = try Self.register(service)
        let single = Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": 1.5, "b": "NaN"}}"#)
        #expect(single.status == 200)
        let direct = Self.call(service, "POST", "/evaluate",
                               #"{"expression": "tanh(x1*w1 + x2*w2 + b)", "values": {"x1": 1.5, "w1": -3, "x2": 0, "w2": 1, "b": "NaN"}}"#)
        var a = try Self.object(single), b = try Self.object(direct)
        let id = try #require(a["id"] as? String)
        a["id"] = nil; b["id"] = nil
        #expect(NSDictionary(dictionary: a) == NSDictionary(dictionary: b))
        // Stored like any evaluation; the registered graph did not change.
        #expect(Self.call(service, "GET", "/graph.json", query: [("id", id)]).status == 200)
        #expect(try Self.object(Self.call(service, "GET", "/graphs/\(gid)"))["value"] as? Double == 0.7071067811865476)
        #expect(Self.call(service, "POST", "/graphs/\(gid)/evaluate", "").status == 200)
    }

    /// Re-evaluations are answered through a kept skeleton of the graph's JSON: each answer must be the bytes the
    /// ordinary encoder writes for that evaluation (as stored under its id), first use, kept, and after a delete
    /// and registering again.
    @Test func reEvaluationAnswersAreTheOrdinaryEncodersBytes() throws {
        let service = GraphService()
        var gid = try Self.register(service)
        for (k, values) in [#"{"values": {"x1": 1.5}}"#, #"{"values": {"x1": 1.5}}"#, "", #"{"values": {"w1": "NaN", "x2": -0.0}}"#,
                            #"{"values": {"x1": 2}}"#].enumerated() {
            if k == 4 {
                #expect(Self.call(service, "DELETE", "/graphs/\(gid)").status == 204)
                gid = try Self.register(service)
            }
            let answer = Self.call(service, "POST", "/graphs/\(gid)/evaluate", values)
            #expect(answer.status == 200)
            let id = try #require(answer.header("X-Graph-Id"))
            let stored = try #require(service.store.evaluation(id: id).value)
            let same = answer.body == GraphEncoder.json(stored.graph, graphID: id)
            #expect(same, "\(values)")
        }
        let shown = Self.call(service, "GET", "/graphs/\(gid)")
        let evaluated = Self.call(service, "POST", "/graphs/\(gid)/evaluate", "")
        let id = try #require(evaluated.header("X-Graph-Id"))
        let same = shown.body == Array(#"{"id":"\#(gid)""#.utf8) + evaluated.body.dropFirst(#"{"id":"\#(id)""#.utf8.count)
        #expect(same)
    }

    @Test func batchRowsAreSingleEvaluationsBitForBit() throws {
        let service = GraphService()
        let gid = try Self.register(service)
        let x1: [Double] = [2, -1.5, 0, 1e308, -0.0, 3.25]
        let w1: [Double] = [-3, 0.5, 2, 2, 1, -0.125]
        let body = #"{"values": {"x1": \#(x1), "w1": \#(w1), "b": 0.25}, "gradients": ["w1", "x1", "x2"]}"#
        let batch = Self.call(service, "POST", "/graphs/\(gid)/evaluate", body)
        #expect(batch.status == 200)
        let answer = try Self.object(batch)
        #expect(answer["graph"] as? String == gid)
        #expect(answer["rows"] as? Int == x1.count)
        let values = try #require(answer["value"] as? [Any])
        let gradients = try #require(answer["gradients"] as? [String: [Any]])
        #expect(Array(gradients.keys).sorted() == ["w1", "x1", "x2"])
        #expect(String(decoding: batch.body, as: UTF8.self).contains(#""gradients":{"w1":"#))
        for r in x1.indices {
            let single = try Self.object(Self.call(
                service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": \#(x1[r]), "w1": \#(w1[r]), "b": 0.25}}"#))
            // Bit for bit: the same shortest round-trip text, so the same number out of the JSON parser.
            #expect("\(values[r])" == "\(single["value"]!)")
            let nodes = try #require(single["nodes"] as? [[String: Any]])
            for id in ["w1", "x1", "x2"] {
                let grad = nodes.first { $0["id"] as? String == id }?["grad"]
                #expect("\(gradients[id]![r])" == "\(grad!)", "row \(r) \(id)")
            }
        }
        // Without "gradients": those of the leaves named in values, in that order.
        let implicit = try Self.object(Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"b": [1, 2], "x2": 3}}"#))
        #expect((implicit["gradients"] as? [String: Any]).map { Array($0.keys).sorted() } == ["b", "x2"])
        let none = try Self.object(Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"b": [1, 2]}, "gradients": []}"#))
        #expect((none["gradients"] as? [String: Any])?.isEmpty == true)
    }

    @Test func reduceSumGivesOneNumberPerGradient() throws {
        let service = GraphService()
        let gid = try Self.register(service)
        let rows = (0..<300).map { Double($0) / 100 - 1.5 }
        let perRow = try Self.object(Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": \#(rows)}}"#))
        let summed = try Self.object(Self.call(service, "POST", "/graphs/\(gid)/evaluate",
                                               #"{"values": {"x1": \#(rows)}, "reduce": "sum"}"#))
        #expect((summed["value"] as? [Double])?.count == 300)
        let total = try #require((summed["gradients"] as? [String: Any])?["x1"] as? Double)
        let columns = try #require((perRow["gradients"] as? [String: [Double]])?["x1"])
        #expect(abs(total - columns.reduce(0, +)) <= 1e-12 * abs(total))
    }

    @Test(arguments: [
        (#"{"values": {"zz": [1]}}"#, 422, "/values/zz"),
        (##"{"values": {"#1": [1]}}"##, 422, "/values/#1"),
        (#"{"values": {"x1": [1], "w1": [1, 2]}}"#, 422, "/values/w1"),
        (#"{"values": {"x1": []}}"#, 422, "/values/x1"),
        (#"{"values": {"x1": [1, "two"]}}"#, 400, "/values/x1/1"),
        (#"{"values": {"x1": true}}"#, 400, "/values/x1"),
        (#"{"values": [1]}"#, 400, "/values"),
        (#"{"values": {"x1": [1]}, "gradients": ["x1", "nope"]}"#, 422, "/gradients/1"),
        (#"{"values": {"x1": [1]}, "gradients": [3]}"#, 400, "/gradients/0"),
        (#"{"values": {"x1": [1]}, "reduce": "mean"}"#, 422, "/reduce"),
        (#"{"values": {"x1": [1]}, "reduce": 1}"#, 400, "/reduce"),
        (#"{"values": {"x1": [1]}, "extra": 1}"#, 400, "/extra"),
        (#"{"values": {"x1": [1], "x1": [2]}}"#, 400, "/values/x1"),
        (#"{"values": {"x1": [1]"#, 400, ""),
    ])
    func badCallsArePreciseProblems(body: String, status: Int, pointer: String) throws {
        let service = GraphService()
        let gid = try Self.register(service)
        let response = Self.call(service, "POST", "/graphs/\(gid)/evaluate", body)
        #expect(response.status == status, "\(String(decoding: response.body, as: UTF8.self))")
        #expect(response.header("Content-Type") == "application/problem+json")
        if !pointer.isEmpty { #expect(try Self.object(response)["pointer"] as? String == pointer) }
    }

    @Test func batchesAreJSONAndCapped() throws {
        var configuration = ServiceConfiguration()
        configuration.graphLimits.maxBatchCells = 100
        let service = GraphService(configuration: configuration)
        let gid = try Self.register(service)
        let dot = Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": [1]}}"#, query: [("format", "dot")])
        #expect(dot.status == 406)
        #expect(Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": \#([Double](repeating: 1, count: 10))}}"#).status == 200)
        let over = Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": \#([Double](repeating: 1, count: 11))}}"#)
        #expect(over.status == 413)
        // The answer is bounded too: one row, a gradient asked for 200 times.
        let repeated = "[" + Array(repeating: "\"x1\"", count: 200).joined(separator: ",") + "]"
        let wide = Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": [1]}, "gradients": \#(repeated)}"#)
        #expect(wide.status == 413)
    }

    @Test func metricsLabelThePatternNotTheGid() throws {
        let service = GraphService()
        let gid = try Self.register(service)
        _ = Self.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": [1]}}"#)
        _ = Self.call(service, "GET", "/graphs/\(gid)")
        let text = String(decoding: service.metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"route="/graphs/{gid}/evaluate""#))
        #expect(text.contains(#"route="/graphs/{gid}""#))
        #expect(!text.contains(gid))
    }

    @Test func fullRegistryIs507() throws {
        var configuration = ServiceConfiguration()
        configuration.store.maxRegisteredGraphs = 1
        let service = GraphService(configuration: configuration)
        _ = try Self.register(service)
        let refused = Self.call(service, "POST", "/graphs", #"{"expression": "x * 2", "values": {"x": 1}}"#)
        #expect(refused.status == 507)
    }
}

/// `POST /evaluate` in the expression form with arrays: a batch over a graph that is not registered.
@Suite struct ExpressionBatchTests {
    @Test func expressionFormBatchesAnswerColumnsWithoutAGraphID() throws {
        let service = GraphService()
        let body = #"{"expression": "tanh(x1*w1 + x2*w2 + b)", "values": {"x1": [2, 1], "w1": -3, "x2": 0, "w2": 1, "b": 6.881373587019543}, "gradients": ["x1"]}"#
        let response = RegisteredGraphTests.call(service, "POST", "/evaluate", body)
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self)
            == ##"{"rows":2,"output":"#5","value":[0.7071067811865476,0.9991497883076876],"gradients":{"x1":[-1.4999999999999996,-0.005099101574109088]}}"##)
        let gid = try RegisteredGraphTests.register(service)
        let registered = RegisteredGraphTests.call(service, "POST", "/graphs/\(gid)/evaluate", #"{"values": {"x1": [2, 1]}, "gradients": ["x1"]}"#)
        // The same answer as the registered graph's, "graph" aside.
        #expect(registered.body == Array(#"{"graph":"\#(gid)","#.utf8) + response.body.dropFirst())
        let summed = RegisteredGraphTests.call(service, "POST", "/evaluate",
                                               #"{"expression": "x * x", "values": {"x": [1, 2, 3]}, "reduce": "sum"}"#)
        #expect(String(decoding: summed.body, as: UTF8.self) == ##"{"rows":3,"output":"#1","value":[1.0,4.0,9.0],"gradients":{"x":12.0}}"##)
        #expect(RegisteredGraphTests.call(service, "POST", "/evaluate", #"{"expression": "x", "values": {"x": [1]}}"#,
                                          query: [("format", "dot")]).status == 406)
        #expect(RegisteredGraphTests.call(service, "POST", "/evaluate", #"{"expression": "x", "values": {"x": []}}"#).status == 422)
        #expect(RegisteredGraphTests.call(service, "POST", "/evaluate", #"{"expression": "x + y", "values": {"x": [1]}}"#).status == 422)
        // Statements and "output" (the learner's form) batch too.
        let statements = RegisteredGraphTests.call(service, "POST", "/evaluate",
                                                   #"{"expression": "y = x * 2; z = y + 1", "values": {"x": [1, 2]}, "output": "y"}"#)
        #expect(String(decoding: statements.body, as: UTF8.self) == #"{"rows":2,"output":"y","value":[2.0,4.0],"gradients":{"x":[2.0,2.0]}}"#)
        // "gradients" or "reduce" without arrays: a one-row batch.
        let oneRow = RegisteredGraphTests.call(service, "POST", "/evaluate", #"{"expression": "x * 3", "values": {"x": 2}, "gradients": ["x"]}"#)
        #expect(String(decoding: oneRow.body, as: UTF8.self) == ##"{"rows":1,"output":"#2","value":[6.0],"gradients":{"x":[3.0]}}"##)
        // Without arrays, the ordinary answer.
        #expect(RegisteredGraphTests.call(service, "POST", "/evaluate", #"{"expression": "x", "values": {"x": 1}}"#).header("X-Graph-Id") != nil)
    }
}
