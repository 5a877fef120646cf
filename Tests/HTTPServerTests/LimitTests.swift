import Foundation
import HTTPServer
import HTTPTesting
import Testing

@Suite struct LimitTests {
    /// The application's own format for the server's refusals.
    static let problemResponder: HTTPServer.ErrorResponder = { status, detail in
        HTTPResponse(
            status: status, headers: [("Content-Type", "application/problem+json")],
            body: Array("{\"status\":\(status),\"detail\":\"\(detail)\"}".utf8))
    }

    @Test func bodyTooLargeByContentLength() throws {
        let configuration = ServerConfiguration(maxBodyBytes: 1000)
        let handled = Shared(0)
        try withServer(configuration, errorResponder: Self.problemResponder, handler: { request in
            handled.withLock { $0 += 1 }
            return echoHandler(request)
        }) { server in
            // Exactly at the limit: accepted.
            let atLimit = try TestConnection(port: server.port).request("POST", "/", body: patternBytes(count: 1000))
            #expect(atLimit.status == 200)
            #expect(atLimit.body.count == 1000)

            // One byte over: refused from the header alone, the body is never sent.
            let connection = try TestConnection(port: server.port)
            try connection.send(requestHead("POST", "/", contentLength: 1001))
            let refused = try connection.readResponse()
            #expect(refused.status == 413)
            #expect(refused.header("Content-Type") == "application/problem+json")
            #expect(refused.text.contains("\"status\":413"))
            #expect(refused.header("X-Request-Id") != nil)

            // With Expect: 100-continue the refusal comes instead of the 100.
            let expecting = try TestConnection(port: server.port)
            try expecting.send(requestHead("POST", "/", headers: [("Expect", "100-continue")], contentLength: 50_000_000))
            #expect(try expecting.readResponse().status == 413)
        }
        #expect(handled.current == 1)
    }

    @Test func chunkedBodyTooLargeWhileCounting() throws {
        let configuration = ServerConfiguration(maxBodyBytes: 1000)
        let handled = Shared(0)
        try withServer(configuration, errorResponder: Self.problemResponder, handler: { request in
            handled.withLock { $0 += 1 }
            return echoHandler(request)
        }) { server in
            let small = try TestConnection(port: server.port)
            try small.send(requestHead("POST", "/", headers: [("Transfer-Encoding", "chunked")], contentLength: nil))
            for piece in chunkedEncoding(patternBytes(count: 999), sizes: [100]) { try small.send(piece) }
            #expect(try small.readResponse().status == 200)

            let big = try TestConnection(port: server.port)
            try big.send(requestHead("POST", "/", headers: [("Transfer-Encoding", "chunked")], contentLength: nil))
            for piece in chunkedEncoding(patternBytes(count: 1500), sizes: [100]) { try big.send(piece) }
            let refused = try big.readResponse()
            #expect(refused.status == 413)
            #expect(refused.header("Content-Type") == "application/problem+json")
        }
        #expect(handled.current == 1)  // the oversized body never reached the handler
    }

    @Test func clientStreamingFarPastTheLimitIsCutOff() throws {
        try withServer(ServerConfiguration(maxBodyBytes: 1000), handler: echoHandler) { server in
            let connection = try TestConnection(port: server.port)
            try connection.send(requestHead("POST", "/", headers: [("Transfer-Encoding", "chunked")], contentLength: nil))
            // Keep streaming (bounded: 4 MiB) until the server hangs up; it must not read forever.
            let piece = chunkedEncoding(patternBytes(count: 16384), sizes: [16384])[0]
            var sent = 0
            do {
                while sent < 4 << 20 {
                    try connection.send(piece)
                    sent += piece.count
                }
            } catch {}
            // The terminating chunk never comes, so only the server's cut-off can end this connection.
            #expect(connection.waitForClose(), "the server must hang up on a client streaming far past the limit")
        }
    }

    @Test func oversizedHeadersGet431() throws {
        let capture = LogCapture()
        try withServer(ServerConfiguration(connectionMemoryLimitBytes: 16 << 10), capture: capture, handler: describingHandler) { server in
            let connection = try TestConnection(port: server.port)
            let big = String(repeating: "h", count: 40_000)
            try connection.sendRequest("GET", "/", headers: [("X-Big", big)])
            let response = try connection.readResponse()
            #expect(response.status == 431)
            // Normal requests are still fine.
            #expect(try TestConnection(port: server.port).request("GET", "/").status == 200)
        }
        // libmicrohttpd refuses these itself; its message reaches the server's logger.
        #expect(capture.lines.contains { $0.hasPrefix("notice libmicrohttpd:") && $0.contains("431") })
    }

    @Test func silentAndStalledClientsAreDroppedWhileOthersAreServed() throws {
        let capture = LogCapture()
        try withServer(ServerConfiguration(idleTimeoutSeconds: 1), capture: capture, handler: echoHandler) { server in
            let silent = try TestConnection(port: server.port)
            let stalled = try TestConnection(port: server.port)
            try stalled.send(requestHead("POST", "/stalled", contentLength: 100) + [1, 2, 3])
            // Served meanwhile, each on a fresh connection (so no pause of a loaded machine can make one idle).
            for index in 0..<20 {
                let response = try TestConnection(port: server.port).request("POST", "/", body: [UInt8(index)])
                #expect(response.body == [UInt8(index)])
            }
            #expect(silent.waitForClose(), "a silent connection must be closed after the idle timeout")
            #expect(stalled.waitForClose(), "a connection stalled mid-body must be closed after the idle timeout")
            #expect(try TestConnection(port: server.port).request("POST", "/", body: [9]).body == [9])
        }
        // The dropped request was completed (its state released) and logged like any other.
        #expect(capture.lines.contains { $0.contains("POST /stalled") && $0.contains("outcome=timeout") })
    }

    @Test func conflictingContentLengthsAreRefused() throws {
        try withServer(handler: echoHandler) { server in
            let conflicting = try TestConnection(port: server.port)
            try conflicting.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")
            #expect(try conflicting.readResponse().status == 400)
            #expect(conflicting.waitForClose(), "the stream's framing is ambiguous: the connection must close")
            // The same value twice is one length (RFC 9112 allows it).
            let repeated = try TestConnection(port: server.port)
            try repeated.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab")
            let response = try repeated.readResponse()
            #expect(response.status == 200 && response.body == Array("ab".utf8))
        }
    }

    @Test func idleClientFreesItsSlot() throws {
        let gate = Gate()
        let handler: HTTPServer.Handler = { request in
            if request.path == "/hold" { gate.pass() }
            return echoHandler(request)
        }
        // Two workers: the one holding the request cannot accept; the other refuses over the limit.
        let configuration = ServerConfiguration(threads: 2, connectionLimit: 1, idleTimeoutSeconds: 1)
        try withServer(configuration, handler: handler) { server in
            let holder = try TestConnection(port: server.port, timeoutSeconds: 30)
            try holder.sendRequest("GET", "/hold")
            #expect(gate.waitUntilInside())  // accepted: it has the only slot
            // At the limit a new client is refused at once rather than left waiting...
            // (Refused, its request is never answered: an accepted one would be, by the free worker.)
            let refused = try TestConnection(port: server.port, timeoutSeconds: 30)
            try? refused.sendRequest("POST", "/", body: [3])
            #expect(throws: TestClientError.self, "a client over the connection limit is closed unanswered") {
                try refused.readResponse()
            }
            gate.release()
            #expect(try holder.readResponse().status == 200)
            // ...until the holder, now idle, is dropped for idleness and frees the slot for the next client.
            #expect(holder.waitForClose())
            // The slot is free once the server has counted the close, a moment after the client sees it.
            var served: [UInt8]?
            #expect(eventually {
                served = try? TestConnection(port: server.port).request("POST", "/", body: [2]).body
                return served != nil
            })
            #expect(served == [2])
        }
    }

    @Test func perIPLimit() throws {
        try withServer(ServerConfiguration(perIPConnectionLimit: 2), handler: echoHandler) { server in
            let first = try TestConnection(port: server.port)
            let second = try TestConnection(port: server.port)
            #expect(try first.request("POST", "/", body: [1]).body == [1])
            #expect(try second.request("POST", "/", body: [2]).body == [2])
            let third = try TestConnection(port: server.port)
            try? third.sendRequest("POST", "/", body: [3])
            #expect(third.waitForClose())
            #expect(try first.request("POST", "/", body: [4]).body == [4])
        }
    }

    @Test func invalidConfigurationIsRefused() {
        let server = HTTPServer(
            configuration: ServerConfiguration(port: 70000), logger: LogCapture().logger(), handler: echoHandler)
        #expect(throws: HTTPServerError.self) { try server.start() }
    }
}
