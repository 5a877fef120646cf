import Foundation
import HTTPServer
import HTTPTesting
import Testing

@Suite struct RoundTripTests {
    @Test func getDecodesPathQueryAndHeaders() throws {
        try withServer(handler: describingHandler) { server in
            let connection = try TestConnection(port: server.port)
            let response = try connection.request(
                "GET", "/caf%C3%A9/x?b=2&a=hello+world&a=%26%3D&flag&empty=", headers: [("X-Test", "yes")])
            #expect(response.status == 200)
            let lines = response.text.components(separatedBy: "\n")
            #expect(lines.contains("method=GET"))
            #expect(lines.contains("path=/café/x"))
            let query = lines.filter { $0.hasPrefix("query ") }
            #expect(query == ["query b=2", "query a=hello world", "query a=&=", "query flag=", "query empty="])
            #expect(lines.contains("x-test=yes"))
            #expect(lines.contains("body=0"))
        }
    }

    @Test func headerFieldsArriveInOrderAsSent() throws {
        let listing: HTTPServer.Handler = { request in
            let text = request.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array(text.utf8))
        }
        try withServer(handler: listing) { server in
            let connection = try TestConnection(port: server.port)
            let response = try connection.request(
                "GET", "/", headers: [("X-One", "1"), ("X-Empty", ""), ("X-Long", String(repeating: "v", count: 300)),
                                      ("x-one", "again")])
            let lines = response.text.components(separatedBy: "\n")
            let sent = lines.filter { $0.lowercased().hasPrefix("x-") }
            #expect(sent == ["X-One=1", "X-Empty=", "X-Long=" + String(repeating: "v", count: 300), "x-one=again"])
        }
    }

    @Test func standardHeadersAreRight() throws {
        try withServer(handler: describingHandler) { server in
            let connection = try TestConnection(port: server.port)
            let response = try connection.request("GET", "/")
            #expect(response.header("Content-Length") == String(response.body.count))
            #expect(response.header("Content-Type") == "text/plain")
            let date = try #require(response.header("Date"))
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            let parsed = try #require(formatter.date(from: date), "Date is not an IMF-fixdate: \(date)")
            #expect(abs(parsed.timeIntervalSinceNow) < 120)
        }
        // A body without a Content-Type from the handler is labelled octet-stream; an empty one gets none.
        try withServer(handler: { request in
            HTTPResponse(status: request.path == "/empty" ? 204 : 200, headers: [("Content-Length", "999")],
                         body: request.path == "/empty" ? [] : [7, 8])
        }) { server in
            let connection = try TestConnection(port: server.port)
            let response = try connection.request("GET", "/x")
            #expect(response.header("Content-Type") == "application/octet-stream")
            #expect(response.headers(named: "Content-Length") == ["2"])  // the handler's wrong value is ignored
            #expect(response.body == [7, 8])
            let empty = try connection.request("GET", "/empty")
            #expect(empty.status == 204)
            #expect(empty.header("Content-Type") == nil)
        }
        // Header names from the handler are matched case-insensitively: no second Content-Type, no stale length.
        try withServer(handler: { _ in
            HTTPResponse(status: 200, headers: [("content-type", "text/csv"), ("CONTENT-LENGTH", "999")], body: [7])
        }) { server in
            let response = try TestConnection(port: server.port).request("GET", "/x")
            #expect(response.headers(named: "Content-Type") == ["text/csv"])
            #expect(response.headers(named: "Content-Length") == ["1"])
        }
    }

    @Test func postBodyRoundTrip() throws {
        let body = (0..<4096).map { UInt8(truncatingIfNeeded: $0) }
        try withServer(handler: echoHandler) { server in
            let connection = try TestConnection(port: server.port)
            let response = try connection.request("POST", "/echo", body: body)
            #expect(response.status == 200)
            #expect(response.body == body)
        }
    }

    @Test func largeBodiesBothWays() throws {
        let body = patternBytes(count: 9 << 20)
        try withServer(handler: echoHandler) { server in
            let connection = try TestConnection(port: server.port, timeoutSeconds: 30)
            let response = try connection.request("POST", "/echo", body: body)
            #expect(response.status == 200)
            #expect(response.body.count == body.count)
            #expect(response.body == body)
        }
    }

    @Test func bodyInManySmallPieces() throws {
        let body = patternBytes(count: 50_000, seed: 7)
        try withServer(handler: echoHandler) { server in
            // Content-Length body written 100 bytes at a time with small pauses, so the server sees many reads.
            let connection = try TestConnection(port: server.port)
            try connection.send(requestHead("POST", "/echo", contentLength: body.count))
            for (index, start) in stride(from: 0, to: body.count, by: 100).enumerated() {
                try connection.send(Array(body[start..<min(start + 100, body.count)]))
                if index % 50 == 0 { usleep(2000) }
            }
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.body == body)

            // The same body as a chunked transfer-coding of odd-sized chunks, on the same keep-alive connection.
            try connection.send(requestHead("POST", "/echo", headers: [("Transfer-Encoding", "chunked")], contentLength: nil))
            for (index, piece) in chunkedEncoding(body, sizes: [1, 7, 64, 300, 13]).enumerated() {
                try connection.send(piece)
                if index % 200 == 0 { usleep(2000) }
            }
            let chunked = try connection.readResponse()
            #expect(chunked.status == 200)
            #expect(chunked.body == body)
        }
    }

    @Test func keepAliveAndHead() throws {
        var router = Router()
        router.get("/doc") { _ in HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array("0123456789".utf8)) }
        let routes = router
        try withServer(handler: routes.respond(to:)) { server in
            let connection = try TestConnection(port: server.port)
            let first = try connection.request("GET", "/doc")
            let head = try connection.request("HEAD", "/doc")
            let second = try connection.request("GET", "/doc")
            #expect(first.text == "0123456789")
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "10")  // GET's length, no body bytes on the wire
            #expect(head.header("Content-Type") == "text/plain")
            #expect(second.text == "0123456789")  // would be garbled if HEAD had sent a body
            #expect(first.header("Connection")?.lowercased() != "close")
            // Pipelined: two requests in one write, two answers in order.
            try connection.send(requestHead("GET", "/doc", contentLength: nil) + requestHead("GET", "/missing", contentLength: nil))
            #expect(try connection.readResponse().status == 200)
            #expect(try connection.readResponse().status == 404)
        }
    }

    @Test func statusCodesFromTheRouter() throws {
        var router = Router()
        router.get("/only-get") { _ in HTTPResponse(status: 200) }
        router.post("/only-post") { _ in HTTPResponse(status: 200) }
        let routes = router
        try withServer(handler: routes.respond(to:)) { server in
            let connection = try TestConnection(port: server.port)
            #expect(try connection.request("GET", "/nowhere").status == 404)
            let wrong = try connection.request("PUT", "/only-get", body: [1])
            #expect(wrong.status == 405)
            #expect(wrong.header("Allow") == "GET, HEAD")
            let wrongPost = try connection.request("GET", "/only-post")
            #expect(wrongPost.status == 405)
            #expect(wrongPost.header("Allow") == "POST")
        }
    }

    @Test func requestIDIsEchoedOrGenerated() throws {
        try withServer(handler: describingHandler) { server in
            let connection = try TestConnection(port: server.port)
            let echoed = try connection.request("GET", "/", headers: [("X-Request-Id", "client-id.42")])
            #expect(echoed.header("X-Request-Id") == "client-id.42")
            #expect(echoed.text.contains("id=client-id.42"))
            let generatedA = try #require(try connection.request("GET", "/").header("X-Request-Id"))
            let generatedB = try #require(try connection.request("GET", "/").header("X-Request-Id"))
            #expect(!generatedA.isEmpty && generatedA != generatedB)
            // <8 hex digits, random per process>-<hex sequence>
            #expect(generatedA.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]+/) != nil, "\(generatedA)")
            #expect(generatedA.prefix(9) == generatedB.prefix(9))
            let unsafe = try connection.request("GET", "/", headers: [("X-Request-Id", "has space")])
            let replaced = try #require(unsafe.header("X-Request-Id"), "an unsafe id is replaced, not dropped")
            #expect(replaced.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]+/) != nil, "\(replaced)")
            let long = try connection.request("GET", "/", headers: [("X-Request-Id", String(repeating: "a", count: 200))])
            let shortened = try #require(long.header("X-Request-Id"), "an overlong id is replaced, not dropped")
            #expect(shortened.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]+/) != nil, "\(shortened)")
        }
    }

    @Test func invalidHandlerStatusBecomes500() throws {
        try withServer(handler: { request in HTTPResponse(status: request.path == "/a" ? 42 : 101) }) { server in
            let connection = try TestConnection(port: server.port)
            #expect(try connection.request("GET", "/a").status == 500)
            #expect(try connection.request("GET", "/b").status == 500)  // 101 is not a final answer
        }
    }

    @Test func accessLogHasOneLinePerRequest() throws {
        let capture = LogCapture()
        var bodyBytes = -1
        try withServer(capture: capture, handler: describingHandler) { server in
            let connection = try TestConnection(port: server.port)
            let response = try connection.request("POST", "/logged?x=1", headers: [("X-Request-Id", "log-me")], body: [1, 2])
            #expect(response.status == 200)
            bodyBytes = response.body.count
            _ = try connection.request("GET", "/second")
            _ = try connection.request("HEAD", "/head", headers: [("X-Request-Id", "head-id")])
        }
        let lines = capture.lines.filter { $0.contains("request_id=") }
        #expect(lines.count == 3)
        // A HEAD answer sends no body bytes, whatever its handler's body.
        let head = try #require(lines.first { $0.contains("head-id") })
        #expect(head.wholeMatch(of: /info HEAD \/head 200 bytes=0 duration_us=\d+ request_id=head-id/) != nil, "\(head)")
        let line = try #require(lines.first { $0.contains("log-me") })
        // The whole line, digits included (the writer puts each number's digits in place itself).
        let shape = try Regex(#"info POST /logged 200 bytes=(\d+) duration_us=(0|[1-9]\d*) request_id=log-me"#)
        let match = try #require(line.wholeMatch(of: shape))
        #expect(match.output[1].substring.map(String.init) == String(bodyBytes))
    }

    @Test func portInUseIsAClearError() throws {
        try withServer(handler: echoHandler) { server in
            let second = HTTPServer(
                configuration: ServerConfiguration(host: "127.0.0.1", port: server.port), logger: LogCapture().logger(),
                handler: echoHandler)
            #expect(throws: HTTPServerError.addressInUse(host: "127.0.0.1", port: server.port)) { try second.start() }
            #expect(second.port == 0)
        }
        let bad = HTTPServer(
            configuration: ServerConfiguration(host: "not a host name", port: 0), logger: LogCapture().logger(), handler: echoHandler)
        #expect(throws: HTTPServerError.self) { try bad.start() }
    }
}
