import Foundation
import HTTPTesting
import MicrogradService
import Testing

/// Through the service's request-to-response function (no socket), except the body limit, which the HTTP layer enforces.
@Suite("POST /evaluate")
struct EvaluateRouteTests {
    @Test func theSeedGraphGivesMicrogradsValuesAndGradients() throws {
        try withServiceInProcess { service, _ in
            let response = try postJSON(service, "/evaluate", seedRequest)
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json")
            let object = try jsonObject(response)
            #expect(object["output"] as? String == "d")
            #expect(object["value"] as? Double == 4.0)
            let id = try #require(object["id"] as? String)
            #expect(id.count == 32 && response.header("X-Graph-Id") == id)
            let expected: [String: (Double, Double)] = [
                "a": (2, -3), "b": (-3, 2), "c": (10, 1), "e": (-6, 1), "d": (4, 1), "p": (16, 0),
            ]
            for (name, (data, grad)) in expected {
                let entry = try #require(node(name, in: object))
                #expect(entry["data"] as? Double == data, "\(name).data")
                #expect(entry["grad"] as? Double == grad, "\(name).grad")
            }
            let ids = (object["nodes"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == ["a", "b", "c", "e", "d", "p"])
            #expect(node("e", in: object)?["op"] as? String == "mul")
            #expect(node("e", in: object)?["inputs"] as? [String] == ["a", "b"])
            #expect(node("p", in: object)?["exponent"] as? Double == 2)
        }
    }

    @Test func theLectureNeuronAsAnExpression() throws {
        try withServiceInProcess { service, _ in
            let object = try jsonObject(try postJSON(service, "/evaluate", neuronRequest))
            let value = try #require(object["value"] as? Double)
            #expect(abs(value - 0.7071067811865476) < 1e-12)
            let grads: [String: Double] = ["x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5]
            for (name, grad) in grads {
                let got = try #require(node(name, in: object)?["grad"] as? Double)
                #expect(abs(got - grad) < 1e-9, "\(name).grad = \(got)")
            }
        }
    }

    @Test func theLecturesStatementProgram() throws {
        try withServiceInProcess { service, _ in
            let body = #"{"expression": "a = 2.0\nb = -3.0\nc = 10.0\ne = a*b\nd = e + c\nf = -2.0\nL = d * f"}"#
            let object = try jsonObject(try postJSON(service, "/evaluate", body))
            #expect(object["output"] as? String == "L")
            #expect(object["value"] as? Double == -8.0)
            let ids = (object["nodes"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == ["a", "b", "c", "e", "d", "f", "L"])
            let grads: [String: Double] = ["a": 6, "b": -4, "c": -2, "e": -2, "d": -2, "f": 4, "L": 1]
            for (name, grad) in grads {
                #expect(node(name, in: object)?["grad"] as? Double == grad, "\(name).grad")
            }
            #expect(node("d", in: object)?["inputs"] as? [String] == ["e", "c"])

            let other = try jsonObject(try postJSON(service, "/evaluate", #"{"expression": "a = 2\nb = a*a\nc = b + 1", "output": "b"}"#))
            #expect(other["output"] as? String == "b" && other["value"] as? Double == 4)
            #expect(node("a", in: other)?["grad"] as? Double == 4 && node("c", in: other)?["grad"] as? Double == 0)

            let dot = try postJSON(service, "/evaluate?format=dot", body)
            #expect(dot.status == 200 && dot.text.contains(#"label="{ L | data -8.0000 | grad 1.0000 }""#))
        }
    }

    @Test func statementProblemsCarryLineColumnAndEveryUnboundName() throws {
        try withServiceInProcess { service, _ in
            let unbound = try postJSON(service, "/evaluate", #"{"expression": "e = a*b\nd = e + c", "values": {"b": 1}}"#)
            #expect(unbound.status == 422 && unbound.header("Content-Type") == "application/problem+json")
            let problem = try jsonObject(unbound)
            #expect(problem["unbound"] as? [String] == ["a", "c"])
            #expect(problem["line"] as? Int == 1 && problem["column"] as? Int == 5)
            #expect(problem["pointer"] as? String == "/expression" && problem["type"] as? String == "/problems/invalid-expression")

            let syntax = try jsonObject(try postJSON(service, "/evaluate", #"{"expression": "e = a*b\nd = (e + "}"#))
            #expect(syntax["unbound"] == nil && syntax["line"] as? Int == 2 && syntax["column"] as? Int == 10)

            let oneLine = try jsonObject(try postJSON(service, "/evaluate", #"{"expression": "x + zz", "values": {"x": 1}}"#))
            #expect(oneLine["line"] == nil && oneLine["column"] as? Int == 5 && oneLine["unbound"] as? [String] == ["zz"])

            let conflict = try postJSON(service, "/evaluate", #"{"expression": "a = 2\nb = a*a", "values": {"a": 1}}"#)
            let conflictDetail = try jsonObject(conflict)["detail"] as? String
            #expect(conflict.status == 422 && conflictDetail?.contains("also given in") == true)

            let output = try postJSON(service, "/evaluate", #"{"expression": "a = 2\nb = a*a", "output": "zz"}"#)
            let outputPointer = try jsonObject(output)["pointer"] as? String
            #expect(output.status == 422 && outputPointer == "/output")
        }
    }

    @Test func theSameRequestGivesTheSameBytesButTheID() throws {
        try withServiceInProcess { service, _ in
            let first = try postJSON(service, "/evaluate", seedRequest)
            let second = try postJSON(service, "/evaluate", seedRequest)
            let strip = { (r: RawResponse) in r.text.replacingOccurrences(of: r.header("X-Graph-Id") ?? "-", with: "ID") }
            #expect(strip(first) == strip(second))
            #expect(first.header("X-Graph-Id") != second.header("X-Graph-Id"))
            for format in ["dot", "jgf"] {
                let a = try postJSON(service, "/evaluate?format=\(format)", seedRequest)
                let b = try postJSON(service, "/evaluate?format=\(format)", seedRequest)
                #expect(strip(a) == strip(b), "format \(format)")
            }
        }
    }

    @Test(arguments: [
        ("?format=dot", nil as String?, "text/vnd.graphviz; charset=utf-8", "rankdir=LR"),
        ("", "text/vnd.graphviz", "text/vnd.graphviz; charset=utf-8", "rankdir=LR"),
        ("?format=jgf", nil, "application/vnd.jgf+json", "\"edges\""),
        ("", "application/vnd.jgf+json", "application/vnd.jgf+json", "\"edges\""),
        ("?format=svg", nil, "image/svg+xml", "<svg"),
        ("", "image/svg+xml;q=0.9, text/html", "image/svg+xml", "<svg"),
        ("", "*/*", "application/json", "\"nodes\""),
        ("?format=json", "text/vnd.graphviz", "application/json", "\"nodes\""),
    ])
    func representationsByFormatOrAccept(query: String, accept: String?, contentType: String, marker: String) throws {
        try withServiceInProcess { service, _ in
            let headers = accept.map { [("Accept", $0)] } ?? []
            let response = try postJSON(service, "/evaluate" + query, seedRequest, headers: headers)
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == contentType)
            #expect(response.text.contains(marker))
        }
    }

    @Test func unacceptableRepresentationsAndContentTypes() throws {
        try withServiceInProcess { service, _ in
            let notAcceptable = try postJSON(service, "/evaluate", seedRequest, headers: [("Accept", "text/html")])
            #expect(notAcceptable.status == 406)
            #expect(notAcceptable.header("Content-Type") == "application/problem+json")
            #expect(try jsonObject(notAcceptable)["type"] as? String == "/problems/not-acceptable")

            let badFormat = try postJSON(service, "/evaluate?format=xml", seedRequest)
            #expect(badFormat.status == 400)

            let form = try send(service, "POST", "/evaluate", headers: [("Content-Type", "text/plain")], body: seedRequest)
            #expect(form.status == 415)
            #expect(try jsonObject(form)["type"] as? String == "/problems/unsupported-media-type")

            let charset = try send(
                service, "POST", "/evaluate", headers: [("Content-Type", "application/json; charset=utf-8")], body: seedRequest)
            #expect(charset.status == 200)
        }
    }

    @Test func badGraphsAreProblemsWithPointers() throws {
        try withServiceInProcess { service, _ in
            let malformed = try postJSON(service, "/evaluate", #"{"nodes": [{"id": "a", "value": 1}"#)
            #expect(malformed.status == 400)
            #expect(try jsonObject(malformed)["type"] as? String == "/problems/malformed-json")

            let unknownOp = try postJSON(
                service, "/evaluate", #"{"nodes": [{"id": "a", "value": 1}, {"id": "b", "op": "mull", "inputs": ["a", "a"]}]}"#)
            #expect(unknownOp.status == 422)
            let problem = try jsonObject(unknownOp)
            #expect(problem["type"] as? String == "/problems/invalid-graph")
            #expect(problem["pointer"] as? String == "/nodes/1/op")
            #expect(problem["status"] as? Int == 422)
            #expect((problem["detail"] as? String)?.isEmpty == false)

            let badExpression = try postJSON(service, "/evaluate", #"{"expression": "x +", "values": {"x": 1}}"#)
            #expect(badExpression.status == 422)
            #expect(try jsonObject(badExpression)["column"] as? Int == 4)
        }
    }

    @Test func theBodyLimitAnswersAProblem() throws {
        var configuration = ServiceConfiguration()
        configuration.server.maxBodyBytes = 64
        try withService(configuration) { port, _ in
            let response = try postJSON(port, "/evaluate", seedRequest)
            #expect(response.status == 413)
            #expect(response.header("Content-Type") == "application/problem+json")
            #expect(try jsonObject(response)["type"] as? String == "/problems/too-large")
        }
    }

    @Test func svgIsRefusedCleanlyWithoutDotOrOverTheCap() throws {
        var missingDot = ServiceConfiguration()
        missingDot.svg.dotPath = "/nonexistent/dot"
        try withServiceInProcess(missingDot) { service, _ in
            let response = try postJSON(service, "/evaluate?format=svg", seedRequest)
            #expect(response.status == 503)
            #expect(try jsonObject(response)["type"] as? String == "/problems/renderer-unavailable")
            #expect(try postJSON(service, "/evaluate", seedRequest).status == 200)
        }
        var small = ServiceConfiguration()
        small.svg.maxNodes = 3
        try withServiceInProcess(small) { service, _ in
            let response = try postJSON(service, "/evaluate?format=svg", seedRequest)
            #expect(response.status == 422)
            #expect(try jsonObject(response)["type"] as? String == "/problems/render-limit")
        }
    }
}
