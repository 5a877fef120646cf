import Foundation
import HTTPTesting
import Testing

/// The access log of `micrograd serve` is buffered (flushed when full, every 250 ms and at exit): no line may be
/// lost or cut, whether the server is stopped with lines still buffered or just sits idle.
@Suite("micrograd serve access log")
struct AccessLogTests {
    /// One `GET /healthz` line: `<time> info micrograd: [HTTPServer] GET /healthz 200 bytes=15 duration_us=N request_id=ID`.
    static var healthLine: Regex<(Substring, Substring)> {
        #/^\S+ info micrograd: \[HTTPServer\] GET /healthz 200 bytes=15 duration_us=\d+ request_id=(\S+)$/#
    }

    @Test func everyLineIsWrittenWholeWhenSIGTERMArrivesWithLinesBuffered() throws {
        let server = try ServeProcess()
        defer { server.stop() }
        let connection = try TestConnection(port: server.port)
        var ids: [String] = []
        for _ in 0..<500 {
            let response = try connection.request("GET", "/healthz")
            #expect(response.status == 200)
            ids.append(response.header("X-Request-Id") ?? "?")
        }
        // Sent at once after the last answer: that line (at least) is still in the buffer, 250 ms from a timed flush.
        kill(server.pid, SIGTERM)
        #expect(try server.waitForExit(seconds: 60) == 0)
        let text = server.log.joined(separator: "\n") + "\n"
        let pattern = Self.healthLine
        let logged = text.split(separator: "\n").compactMap { try? pattern.wholeMatch(in: $0)?.output.1 }
        #expect(logged.map(String.init) == ids)
        #expect(text.hasSuffix("[MicrogradCLI] stopped\n"))
    }

    /// Idle after one request: the timed flush (every 250 ms) writes the line without more traffic or an exit.
    /// The 30 s bound is a hang guard: without a timed flush the line would wait for a full buffer or the exit.
    @Test func anIdleServerWritesItsAccessLineWithoutMoreTraffic() throws {
        let server = try ServeProcess()
        defer { server.stop() }
        let response = try TestConnection(port: server.port).request("GET", "/healthz")
        let id = try #require(response.header("X-Request-Id"))
        let line = try server.waitForLine(containing: "request_id=\(id)", seconds: 30)
        #expect(line.hasSuffix("request_id=\(id)"))
        kill(server.pid, SIGTERM)
        #expect(try server.waitForExit(seconds: 60) == 0)
    }
}

