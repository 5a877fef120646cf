import Foundation
import HTTPServer
import HTTPTesting
import MicrogradGraph
import MicrogradService
import Testing

// The corpus of bad requests (issue 7), each against a real server: the expected status and problem type, and
// proof that the server still answers a good request afterwards. Big inputs (100,000-deep nesting, a 100,000-long
// cycle, a 10 MB expression, a 1,000,000-node chain) are here once each.

/// One hostile body and what the service must answer.
struct HostileBody: CustomTestStringConvertible, Sendable {
    let name: String
    let body: [UInt8]
    let status: Int
    /// The problem type, or nil for a 200.
    let type: String?
    /// The RFC 6901 pointer the problem must carry, when it is worth pinning.
    var pointer: String? = nil
    /// For a 200: exact pieces of the answer (values and gradients) it must contain.
    var fragments: [String] = []

    init(_ name: String, _ body: String, _ status: Int, _ type: String?, pointer: String? = nil, fragments: [String] = []) {
        self.init(name, Array(body.utf8), status, type, pointer: pointer)
        self.fragments = fragments
    }

    init(_ name: String, _ body: [UInt8], _ status: Int, _ type: String?, pointer: String? = nil) {
        self.name = name; self.body = body; self.status = status; self.type = type; self.pointer = pointer
    }

    var testDescription: String { name }
}

private let malformed = "/problems/malformed-json"
private let invalidRequest = "/problems/invalid-request"
private let invalidGraph = "/problems/invalid-graph"
private let invalidExpression = "/problems/invalid-expression"
private let tooLarge = "/problems/too-large"

private func leaf(_ id: String, _ value: String = "1") -> String { #"{"id":"\#(id)","value":\#(value)}"# }
private func graph(_ nodes: String...) -> String { #"{"nodes":["# + nodes.joined(separator: ",") + "]}" }
private func nested(_ depth: Int, open: String = "[", close: String = "]", inner: String = "") -> String {
    String(repeating: open, count: depth) + inner + String(repeating: close, count: depth)
}

/// Malformed JSON: 400 malformed-json.
let malformedBodies: [HostileBody] = [
    HostileBody("empty body", "", 400, malformed, pointer: ""),
    HostileBody("truncated JSON", String(seedRequest.prefix(60)), 400, malformed),
    HostileBody("truncated after a value", #"{"nodes":[{"id":"a","value":1}"#, 400, malformed),
    HostileBody("100,000 unclosed arrays", #"{"nodes":"# + String(repeating: "[", count: 100_000), 400, malformed),
    HostileBody("leading zero", graph(leaf("a", "01")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("no digit after the point", graph(leaf("a", "1.")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("no digit before the point", graph(leaf("a", ".5")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("plus sign", graph(leaf("a", "+1")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("bare NaN", graph(leaf("a", "NaN")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("bare Infinity", graph(leaf("a", "-Infinity")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("hex number", graph(leaf("a", "0x10")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("exponent without digits", graph(leaf("a", "1e")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("lone minus", graph(leaf("a", "-")), 400, malformed, pointer: "/nodes/0/value"),
    HostileBody("non-UTF-8 bytes in a string", Array(#"{"nodes":[{"id":""#.utf8) + [0xFF, 0xFE] + Array(#"","value":1}]}"#.utf8),
                400, malformed, pointer: "/nodes/0/id"),
    HostileBody("overlong UTF-8 encoding", Array(#"{"nodes":[{"id":""#.utf8) + [0xC0, 0xAF] + Array(#"","value":1}]}"#.utf8),
                400, malformed, pointer: "/nodes/0/id"),
    HostileBody("non-UTF-8 byte after the value", Array(graph(leaf("a")).utf8) + [0xFF], 400, malformed, pointer: ""),
    HostileBody("unpaired surrogate escape", graph(leaf(#"\ud800"#)), 400, malformed, pointer: "/nodes/0/id"),
    HostileBody("raw NUL in a string", Array(#"{"nodes":[{"id":"a"#.utf8) + [0] + Array(#"","value":1}]}"#.utf8),
                400, malformed, pointer: "/nodes/0/id"),
    HostileBody("byte order mark", "\u{FEFF}" + graph(leaf("a")), 400, malformed, pointer: ""),
    HostileBody("content after the value", graph(leaf("a")) + " x", 400, malformed, pointer: ""),
    HostileBody("two documents", graph(leaf("a")) + "{}", 400, malformed, pointer: ""),
]

/// Well-formed JSON of the wrong shape: 400 invalid-request. A wrong type in every field.
let wronglyShapedBodies: [HostileBody] = [
    HostileBody("body is an array", "[]", 400, invalidRequest, pointer: ""),
    HostileBody("body is a string", #""x""#, 400, invalidRequest, pointer: ""),
    HostileBody("neither nodes nor expression", "{}", 400, invalidRequest, pointer: ""),
    HostileBody("nodes and expression", #"{"expression":"x","values":{"x":1},"nodes":[]}"#, 400, invalidRequest),
    HostileBody("nodes is a string", #"{"nodes":"abc"}"#, 400, invalidRequest, pointer: "/nodes"),
    HostileBody("a node is a number", #"{"nodes":[1]}"#, 400, invalidRequest, pointer: "/nodes/0"),
    HostileBody("id is a number", #"{"nodes":[{"id":1,"value":2}]}"#, 400, invalidRequest, pointer: "/nodes/0/id"),
    HostileBody("node without id", #"{"nodes":[{"value":1}]}"#, 400, invalidRequest, pointer: "/nodes/0"),
    HostileBody("value is a string", graph(leaf("a", #""two""#)), 400, invalidRequest, pointer: "/nodes/0/value"),
    HostileBody("value is null", graph(leaf("a", "null")), 400, invalidRequest, pointer: "/nodes/0/value"),
    HostileBody("value is a bool", graph(leaf("a", "true")), 400, invalidRequest, pointer: "/nodes/0/value"),
    HostileBody("value is an object", graph(leaf("a", "{}")), 400, invalidRequest, pointer: "/nodes/0/value"),
    HostileBody("op is a number", graph(leaf("a"), #"{"id":"b","op":7,"inputs":["a"]}"#), 400, invalidRequest,
                pointer: "/nodes/1/op"),
    HostileBody("inputs is an object", graph(leaf("a"), #"{"id":"b","op":"neg","inputs":{"a":1}}"#), 400, invalidRequest,
                pointer: "/nodes/1/inputs"),
    HostileBody("an input is a bool", graph(leaf("a"), #"{"id":"b","op":"neg","inputs":[true]}"#), 400, invalidRequest,
                pointer: "/nodes/1/inputs/0"),
    HostileBody("an input is null", graph(leaf("a"), #"{"id":"b","op":"neg","inputs":[null]}"#), 400, invalidRequest,
                pointer: "/nodes/1/inputs/0"),
    HostileBody("exponent is a string", graph(leaf("a"), #"{"id":"b","op":"pow","inputs":["a"],"exponent":"2"}"#),
                400, invalidRequest, pointer: "/nodes/1/exponent"),
    HostileBody("label is a number", #"{"nodes":[{"id":"a","value":1,"label":5}]}"#, 400, invalidRequest,
                pointer: "/nodes/0/label"),
    HostileBody("output is a number", #"{"nodes":[{"id":"a","value":1}],"output":0}"#, 400, invalidRequest,
                pointer: "/output"),
    HostileBody("expression is a number", #"{"expression":5,"values":{}}"#, 400, invalidRequest, pointer: "/expression"),
    HostileBody("values is an array", #"{"expression":"x","values":[1]}"#, 400, invalidRequest, pointer: "/values"),
    HostileBody("a variable's value is a string", #"{"expression":"x","values":{"x":"one"}}"#, 400, invalidRequest,
                pointer: "/values/x"),
    HostileBody("100,000-deep nested arrays as the body", nested(100_000), 400, invalidRequest, pointer: ""),
    HostileBody("100,000-deep nested arrays as nodes", #"{"nodes":"# + nested(100_000) + "}", 400, invalidRequest,
                pointer: "/nodes/0"),
    HostileBody("100,000-deep nested objects, no nodes", #"{"x":"# + nested(100_000, open: #"{"a":"#, close: "}", inner: "1") + "}",
                400, invalidRequest, pointer: "/x"),
    HostileBody("1e400", graph(leaf("a", "1e400")), 400, invalidRequest, pointer: "/nodes/0/value"),
    HostileBody("-1e400", graph(leaf("a", "-1e400")), 400, invalidRequest, pointer: "/nodes/0/value"),
    HostileBody("a 100,000-digit number", graph(leaf("a", String(repeating: "9", count: 100_000))), 400, invalidRequest,
                pointer: "/nodes/0/value"),
    HostileBody("1e400 as an exponent", graph(leaf("a"), #"{"id":"b","op":"pow","inputs":["a"],"exponent":1e400}"#),
                400, invalidRequest, pointer: "/nodes/1/exponent"),
    HostileBody("1e400 as an input literal", graph(leaf("a"), #"{"id":"b","op":"add","inputs":["a",1e400]}"#),
                400, invalidRequest, pointer: "/nodes/1/inputs/1"),
    HostileBody("1e400 as a variable", #"{"expression":"x","values":{"x":1e400}}"#, 400, invalidRequest,
                pointer: "/values/x"),
    HostileBody("duplicate key nodes", #"{"nodes":[{"id":"a","value":1}],"nodes":[{"id":"b","value":2}]}"#,
                400, invalidRequest, pointer: "/nodes"),
    HostileBody("duplicate key id", #"{"nodes":[{"id":"a","id":"b","value":1}]}"#, 400, invalidRequest,
                pointer: "/nodes/0/id"),
    HostileBody("duplicate key value", #"{"nodes":[{"id":"a","value":1,"value":2}]}"#, 400, invalidRequest,
                pointer: "/nodes/0/value"),
    HostileBody("duplicate variable", #"{"expression":"x","values":{"x":1,"x":2}}"#, 400, invalidRequest,
                pointer: "/values/x"),
]

/// Well-formed requests whose graph cannot be evaluated: 422.
let unevaluableBodies: [HostileBody] = [
    HostileBody("self-loop", graph(#"{"id":"a","op":"neg","inputs":["a"]}"#), 422, invalidGraph, pointer: "/nodes/0/inputs/0"),
    HostileBody("three-node cycle beside a leaf",
                graph(#"{"id":"a","op":"neg","inputs":["c"]}"#, #"{"id":"b","op":"neg","inputs":["a"]}"#,
                      #"{"id":"c","op":"neg","inputs":["b"]}"#, leaf("x")), 422, invalidGraph),
    HostileBody("100,000-long cycle",
                #"{"nodes":["# + (0..<100_000).map { #"{"id":"n\#($0)","op":"neg","inputs":["n\#(($0 + 1) % 100_000)"]}"# }
                    .joined(separator: ",") + "]}", 422, invalidGraph),
    HostileBody("duplicate id", graph(leaf("a"), leaf("a", "2")), 422, invalidGraph, pointer: "/nodes/1/id"),
    HostileBody("unknown input id", graph(#"{"id":"a","op":"exp","inputs":["zz"]}"#), 422, invalidGraph,
                pointer: "/nodes/0/inputs/0"),
    HostileBody("unknown output id", #"{"nodes":[{"id":"a","value":1}],"output":"zz"}"#, 422, invalidGraph,
                pointer: "/output"),
    HostileBody("add with one input", graph(leaf("a"), #"{"id":"b","op":"add","inputs":["a"]}"#), 422, invalidGraph,
                pointer: "/nodes/1/inputs"),
    HostileBody("add with three inputs", graph(leaf("a"), #"{"id":"b","op":"add","inputs":["a","a","a"]}"#), 422,
                invalidGraph, pointer: "/nodes/1/inputs"),
    HostileBody("exp with two inputs", graph(leaf("a"), #"{"id":"b","op":"exp","inputs":["a","a"]}"#), 422, invalidGraph,
                pointer: "/nodes/1/inputs"),
    HostileBody("neg with no inputs", graph(leaf("a"), #"{"id":"b","op":"neg","inputs":[]}"#), 422, invalidGraph,
                pointer: "/nodes/1/inputs"),
    HostileBody("pow with two inputs and an exponent",
                graph(leaf("a"), #"{"id":"b","op":"pow","inputs":["a","a"],"exponent":2}"#), 422, invalidGraph,
                pointer: "/nodes/1/inputs"),
    HostileBody("op without inputs", graph(leaf("a"), #"{"id":"b","op":"neg"}"#), 422, invalidGraph),
    HostileBody("unknown op", graph(leaf("a"), #"{"id":"b","op":"sqrt","inputs":["a"]}"#), 422, invalidGraph,
                pointer: "/nodes/1/op"),
    HostileBody("a value and an op", graph(leaf("a"), #"{"id":"b","value":1,"op":"neg","inputs":["a"]}"#), 422,
                invalidGraph, pointer: "/nodes/1/value"),
    HostileBody("neither value nor op", #"{"nodes":[{"id":"a"}]}"#, 422, invalidGraph),
    HostileBody("no nodes", #"{"nodes":[]}"#, 422, invalidGraph, pointer: "/nodes"),
    HostileBody("unbound variable", #"{"expression":"q + 1","values":{}}"#, 422, invalidExpression, pointer: "/expression"),
    HostileBody("100,000 unclosed parentheses",
                #"{"expression":""# + String(repeating: "(", count: 100_000) + #"x","values":{"x":3}}"#, 422,
                invalidExpression, pointer: "/expression"),
    HostileBody("an id over the id limit", graph(leaf(String(repeating: "a", count: 2000))), 422, invalidGraph,
                pointer: "/nodes/0/id"),
    HostileBody("a 10 MB expression",
                #"{"expression":""# + String(repeating: "x+", count: 5 << 20) + #"x","values":{"x":1}}"#, 413, tooLarge,
                pointer: "/expression"),
]

/// Hostile-looking but valid: must evaluate (200), iteratively.
let survivableBodies: [HostileBody] = [
    HostileBody("100,000 nested parentheses",
                #"{"expression":""# + nested(100_000, open: "(", close: ")", inner: "x") + #"","values":{"x":3}}"#, 200, nil,
                fragments: [#""value":3.0,"#, #"{"id":"x","label":"x","data":3.0,"grad":1.0}"#]),
    // An even number of negations: x itself, d/dx = 1; the first minus applied is -x with gradient -1.
    HostileBody("100,000 unary minuses", #"{"expression":""# + String(repeating: "-", count: 100_000) + #"x","values":{"x":3}}"#,
                200, nil, fragments: [##""output":"#100000","value":3.0,"##, ##"{"id":"x","label":"x","data":3.0,"grad":1.0}"##,
                                      ##"{"id":"#1","op":"neg","inputs":["x"],"data":-3.0,"grad":-1.0}"##]),
    HostileBody("100,000-deep arrays under an unknown member (read iteratively, then refused)",
                #"{"x":"# + nested(100_000) + #","nodes":[{"id":"a","value":1}]}"#, 400, invalidRequest, pointer: "/x"),
    HostileBody("overflow to Infinity (micrograd's OverflowError)",
                #"{"expression":"exp(1000) + tanh(1000) + tanh(-1e308)","values":{}}"#, 200, nil,
                fragments: [##""value":"Infinity","##, ##"{"id":"#2","op":"exp","inputs":["#1"],"data":"Infinity","grad":1.0}"##,
                            ##"{"id":"#1","constant":true,"data":1000.0,"grad":"Infinity"}"##,
                            ##"{"id":"#4","op":"tanh","inputs":["#3"],"data":1.0,"grad":1.0}"##,
                            ##"{"id":"#7","op":"tanh","inputs":["#6"],"data":-1.0,"grad":1.0}"##]),
    HostileBody("underflow to zero", graph(leaf("a", "1e-400")), 200, nil,
                fragments: [#""value":0.0,"nodes":[{"id":"a","data":0.0,"grad":1.0}]}"#]),
]

@Suite("Hostile input: every bad request is a problem, and the server keeps serving")
struct HostileInputTests {
    @Test(arguments: malformedBodies + wronglyShapedBodies + unevaluableBodies + survivableBodies)
    func hostileBody(_ hostile: HostileBody) throws {
        try withService { port, _ in
            // A generous bound: under ThreadSanitizer the 5 MB cases take seconds.
            let response = try TestConnection(port: port, timeoutSeconds: 120).request(
                "POST", "/evaluate", headers: [("Content-Type", "application/json")], body: hostile.body)
            if let type = hostile.type {
                try expectProblem(response, status: hostile.status, type: type, pointer: hostile.pointer)
            } else {
                #expect(response.status == 200, "\(response.text.prefix(300))")
                _ = try jsonObject(response)  // and the answer is valid JSON
                for fragment in hostile.fragments {
                    #expect(response.text.contains(fragment), "missing \(fragment) in \(response.text.prefix(300))")
                }
            }
            try expectStillServing(port)
        }
    }

    @Test func aHundredThousandDeepNestingEvaluatesTheInnerVariable() throws {
        try withService { port, _ in
            let body = #"{"expression":""# + nested(100_000, open: "(", close: ")", inner: "x") + #"","values":{"x":3}}"#
            let object = try jsonObject(try postJSON(port, "/evaluate", body))
            #expect(object["value"] as? Double == 3)
            #expect(node("x", in: object)?["grad"] as? Double == 1)
        }
    }

    @Test func overflowGivesInfinityNotAnError() throws {
        try withService { port, _ in
            let object = try jsonObject(try postJSON(port, "/evaluate", #"{"expression":"exp(x)","values":{"x":1000}}"#))
            #expect(object["value"] as? String == "Infinity")
            #expect(node("x", in: object)?["grad"] as? String == "Infinity")
        }
    }

    /// micrograd's recursive topological sort fails past depth ~1000; native ports segfault near 105k.
    /// Here a 1,000,000-node chain in the graph form is sorted, evaluated, differentiated and encoded.
    @Test func aMillionNodeChainEvaluates() throws {
        let n = 1_000_000
        var body = #"{"nodes":[{"id":"n0","value":1.5}"#
        body.reserveCapacity(50 * n)
        for i in 1..<n { body += #",{"id":"n\#(i)","op":"neg","inputs":["n\#(i - 1)"]}"# }
        body += "]}"
        try withService { port, _ in
            let response = try TestConnection(port: port, timeoutSeconds: 120).request(
                "POST", "/evaluate", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
            #expect(response.status == 200)
            // Parsing 70 MB with Foundation would dominate the test: check the head and the tail of the bytes.
            let head = String(decoding: response.body.prefix(400), as: UTF8.self)
            #expect(head.contains(#""output":"n999999","value":-1.5,"#), "\(head)")
            // 999,999 negations: d output / d n0 = (-1)^999999 = -1.
            #expect(head.contains(#"{"id":"n0","data":1.5,"grad":-1.0}"#), "\(head)")
            let tail = String(decoding: response.body.suffix(200), as: UTF8.self)
            #expect(tail.hasSuffix(#"{"id":"n999999","op":"neg","inputs":["n999998"],"data":-1.5,"grad":1.0}]}"#), "\(tail)")
            try expectStillServing(port)
        }
    }

    @Test func theNodeCapIsExactAndCountsLiteralConstants() throws {
        var configuration = ServiceConfiguration()
        configuration.graphLimits.maxNodes = 1000
        func chain(_ count: Int, literalAtEnd: Bool = false) -> String {
            var nodes = [leaf("n0")]
            for i in 1..<count { nodes.append(#"{"id":"n\#(i)","op":"neg","inputs":["n\#(i - 1)"]}"#) }
            if literalAtEnd { nodes[count - 1] = #"{"id":"n\#(count - 1)","op":"add","inputs":["n\#(count - 2)",2]}"# }
            return #"{"nodes":["# + nodes.joined(separator: ",") + "]}"
        }
        try withService(configuration) { port, _ in
            #expect(try postJSON(port, "/evaluate", chain(1000)).status == 200)
            try expectProblem(try postJSON(port, "/evaluate", chain(1001)), status: 422, type: invalidGraph)
            // 1000 listed nodes plus the constant leaf the literal 2 becomes: one over.
            try expectProblem(try postJSON(port, "/evaluate", chain(1000, literalAtEnd: true)), status: 422, type: invalidGraph)
            let overExpression = #"{"expression":""# + String(repeating: "-", count: 1000) + #"x","values":{"x":1}}"#
            try expectProblem(try postJSON(port, "/evaluate", overExpression), status: 422, type: invalidGraph)
            try expectStillServing(port)
        }
    }

    // MARK: HTTP-level hostility

    /// Over libmicrohttpd's per-connection memory (16 KiB by default) the refusal comes from MHD itself, before any route runs:
    /// the status is right but its body is MHD's fixed HTML (no hook to replace it in 0.9.75; docs/robustness.md).
    @Test func headersOverTheLimitAreRefusedAndTheServerRecovers() throws {
        try withService { port, _ in
            let big = try send(port, "GET", "/healthz", headers: [("X-Big", String(repeating: "a", count: 70_000))])
            #expect(big.status == 431)
            let many = try send(port, "GET", "/healthz",
                                headers: (0..<2000).map { ("X-H\($0)", String(repeating: "b", count: 30)) })
            #expect(many.status == 431)
            let longURL = try send(port, "GET", "/healthz?" + String(repeating: "a", count: 70_000))
            #expect(longURL.status == 414)
            // Well under the limit is still served (the pool also holds the read buffer and the response headers).
            let limit = ServerConfiguration().connectionMemoryLimitBytes
            let under = try send(port, "GET", "/healthz", headers: [("X-Big", String(repeating: "a", count: limit * 3 / 4))])
            #expect(under.status == 200)
            try expectStillServing(port)
        }
    }

    @Test func everyWrongMethodOnEveryRouteIs405WithAllow() throws {
        let routes: [(path: String, allowed: Set<String>)] = [
            ("/evaluate", ["POST"]),
            ("/graph.dot", ["GET", "HEAD"]), ("/graph.json", ["GET", "HEAD"]), ("/graph.svg", ["GET", "HEAD"]),
            ("/healthz", ["GET", "HEAD"]), ("/readyz", ["GET", "HEAD"]), ("/metrics", ["GET", "HEAD"]),
            ("/openapi.yaml", ["GET", "HEAD"]),
        ]
        let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get", "X"]
        try withService { port, _ in
            let connection = try TestConnection(port: port)  // keep-alive: 405s must not cost the connection
            for (path, allowed) in routes {
                for method in methods where !allowed.contains(method) {
                    let response = try connection.request(method, path)
                    #expect(response.status == 405, "\(method) \(path)")
                    let allow = Set((response.header("Allow") ?? "").split(separator: ",").map {
                        $0.trimmingCharacters(in: .whitespaces)
                    })
                    #expect(allow == allowed, "\(method) \(path): Allow \(response.header("Allow") ?? "none")")
                    if method != "HEAD" {
                        try expectProblem(response, status: 405, type: "/problems/method-not-allowed")
                    }
                }
            }
            try expectStillServing(port)
        }
    }

    @Test(arguments: [
        "/../evaluate", "/graph.dot/..", "/%2e%2e/etc/passwd", "/../../etc/passwd", "/./healthz", "//healthz",
        "/healthz/", "/healthz%00", "/healthz%00.json", "/graph.dot%00", "/%00", "/evaluate/%2e%2e", "/%zz", "/%",
    ])
    func dotDotAndNulPathsAreNotFound(_ path: String) throws {
        try withService { port, _ in
            try expectProblem(try send(port, "GET", path), status: 404, type: "/problems/not-found")
            try expectProblem(try postJSON(port, path, seedRequest), status: 404, type: "/problems/not-found")
            try expectStillServing(port)
        }
    }

    @Test func aNulInAQueryValueIsNotTruncated() throws {
        try withService { port, _ in
            #expect(try postJSON(port, "/evaluate", seedRequest).status == 200)
            // id=%00 must not become the empty id (or any id's prefix): nothing is stored under "%00".
            try expectProblem(try send(port, "GET", "/graph.json?id=%00"), status: 404, type: "/problems/not-found")
            try expectProblem(try postJSON(port, "/evaluate?format=%00json", seedRequest), status: 400,
                              type: "/problems/invalid-request")
        }
    }

    /// Content-Length larger than the body: the server waits for the rest, then drops the connection at the idle
    /// timeout without answering and without holding anything for the other clients.
    @Test func contentLengthLongerThanTheBody() throws {
        var configuration = ServiceConfiguration()
        configuration.server.idleTimeoutSeconds = 1
        try withService(configuration) { port, _ in
            let liar = try TestConnection(port: port, timeoutSeconds: 60)  // a hang guard; the idle timeout is 1 s
            try liar.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"nodes\":[]}")
            // While it waits, others are served.
            try expectStillServing(port)
            #expect(liar.waitForClose(), "the server should close a connection whose body never arrives")
            try expectStillServing(port)
        }
    }

    /// Content-Length shorter than the body: the declared bytes are the request (a truncated document: 400), and
    /// the rest is read as the next request, which is not HTTP: refused or dropped, never evaluated.
    @Test func contentLengthShorterThanTheBody() throws {
        var configuration = ServiceConfiguration()
        configuration.server.idleTimeoutSeconds = 1
        try withService(configuration) { port, _ in
            let liar = try TestConnection(port: port, timeoutSeconds: 60)  // a hang guard; the idle timeout is 1 s
            let body = #"{"nodes":[{"id":"a","value":1}]}"#
            try liar.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n" + body)
            try expectProblem(try liar.readResponse(), status: 400, type: malformed)
            // Whatever follows is not a 200: the leftover bytes are garbage, not a request.
            // Either a refusal or the connection closes (at the latest at the idle timeout); never silence.
            do {
                let next = try liar.readResponse()
                #expect(next.status >= 400 && next.status < 500, "\(next.status)")
            } catch TestClientError.closedByPeer {
            } catch {
                Issue.record("neither an answer nor a close after the leftover bytes: \(error)")
            }
            try expectStillServing(port)
        }
    }

    @Test func malformedContentLengthAndFraming() throws {
        try withService { port, _ in
            for length in ["-5", "abc", "1 2", "0x10"] {
                let connection = try TestConnection(port: port, timeoutSeconds: 5)
                try connection.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n{}")
                #expect(try connection.readResponse().status == 400, "Content-Length: \(length)")
            }
            // Beyond Int: refused as too large, before any body is read.
            let huge = try TestConnection(port: port, timeoutSeconds: 5)
            try huge.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n{}")
            #expect(try huge.readResponse().status == 413)
            // Under Int but over the body limit: the server's own 413 problem.
            try expectProblem(
                try TestConnection(port: port, timeoutSeconds: 5).request(
                    "POST", "/evaluate", headers: [("Content-Type", "application/json"), ("Content-Length", "\(1 << 40)")]),
                status: 413, type: tooLarge)
            // A malformed chunked body.
            let chunked = try TestConnection(port: port, timeoutSeconds: 5)
            try chunked.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
            #expect(try chunked.readResponse().status == 400)
            try expectStillServing(port)
        }
    }

    /// At the connection limit a new connection is closed at once (not left in the kernel's backlog until the
    /// client gives up), and once connections close the service takes new ones again.
    @Test func atTheConnectionLimitNewConnectionsAreRefusedAtOnceAndServiceRecovers() throws {
        var configuration = ServiceConfiguration()
        configuration.server.connectionLimit = 20
        try withService(configuration) { port, _ in
            var held: [TestConnection] = []
            for _ in 0..<20 {
                let connection = try TestConnection(port: port)
                #expect(try connection.request("GET", "/healthz").status == 200)  // accepted and counted
                held.append(connection)
            }
            for _ in 0..<5 {
                let extra = try TestConnection(port: port, timeoutSeconds: 60)
                try? extra.sendRequest("GET", "/healthz")
                // Before the admission fix this waited in the backlog until the receive timeout ran out; an admitted
                // one would be answered (bytes arrive: not a close).
                #expect(extra.waitForClose(), "a connection over the limit should be closed, not kept waiting")
            }
            held.removeAll()
            // Closing is asynchronous on the server side: retry (the bound is a hang guard).
            var served = false
            for _ in 0..<1500 where !served {
                served = (try? postJSON(port, "/evaluate", seedRequest).status) == 200
                if !served { usleep(20_000) }
            }
            #expect(served)
            try expectStillServing(port)
        }
    }

    /// Many connections declaring a large body and sending one byte: nothing is evaluated, others are served.
    @Test func manyStalledUploadsDoNotStarveOthers() throws {
        var configuration = ServiceConfiguration()
        configuration.server.idleTimeoutSeconds = 2
        try withService(configuration) { port, _ in
            var stalled: [TestConnection] = []
            for _ in 0..<200 {
                let connection = try TestConnection(port: port, timeoutSeconds: 5)
                try connection.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 60000000\r\n\r\n{")
                stalled.append(connection)
            }
            for _ in 0..<5 { try expectStillServing(port) }
            #expect(stalled.allSatisfy { $0.waitForClose() })
            try expectStillServing(port)
        }
    }
}

/// `response` is an RFC 9457 problem with this status and type (and pointer, when given).
func expectProblem(
    _ response: RawResponse, status: Int, type: String, pointer: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(response.status == status, "\(response.text.prefix(300))", sourceLocation: sourceLocation)
    #expect(response.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
    let object = try jsonObject(response)
    #expect(object["type"] as? String == type, "\(response.text.prefix(300))", sourceLocation: sourceLocation)
    #expect(object["status"] as? Int == status, sourceLocation: sourceLocation)
    #expect((object["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    if let pointer {
        #expect(object["pointer"] as? String == pointer, "\(response.text.prefix(300))", sourceLocation: sourceLocation)
    }
}

/// The server still evaluates the seed graph correctly on a fresh connection.
func expectStillServing(_ port: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let response = try postJSON(port, "/evaluate", seedRequest)
    #expect(response.status == 200, "\(response.text.prefix(200))", sourceLocation: sourceLocation)
    #expect(try jsonObject(response)["value"] as? Double == 4.0, sourceLocation: sourceLocation)
}
