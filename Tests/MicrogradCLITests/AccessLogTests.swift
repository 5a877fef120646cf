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
        let (server, port, output) = try ServeCommandTests().startServer()
        defer { if server.isRunning { server.terminate() } }
        let log = OutputCollector(output)
        let connection = try TestConnection(port: port)
        var ids: [String] = []
        for _ in 0..<500 {
            let response = try connection.request("GET", "/healthz")
            #expect(response.status == 200)
            ids.append(response.header("X-Request-Id") ?? "?")
        }
        // Sent at once after the last answer: that line (at least) is still in the buffer, 250 ms from a timed flush.
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        #expect(server.terminationStatus == 0)
        let text = log.waitForEnd()
        let pattern = Self.healthLine
        let logged = text.split(separator: "\n").compactMap { try? pattern.wholeMatch(in: $0)?.output.1 }
        #expect(logged.map(String.init) == ids)
        #expect(text.hasSuffix("[MicrogradCLI] stopped\n"))
    }

    @Test func anIdleServerWritesItsAccessLineWithinASecond() throws {
        let (server, port, output) = try ServeCommandTests().startServer()
        defer { if server.isRunning { server.terminate() } }
        let log = OutputCollector(output)
        let response = try TestConnection(port: port).request("GET", "/healthz")
        let id = try #require(response.header("X-Request-Id"))
        let sent = Date()
        var seen = false
        while !seen && Date().timeIntervalSince(sent) < 1.0 {
            seen = log.text.contains("request_id=\(id)\n")
            if !seen { usleep(10_000) }
        }
        #expect(seen, "the access line did not appear within a second: \(log.text)")
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
    }
}

/// Reads a pipe to its end on a thread of its own, so a test can look at what arrived so far.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.withLock { data.append(chunk) }
            }
            done.signal()
        }.start()
    }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

    /// Everything, once the writer closed the pipe (at most 20 s).
    func waitForEnd() -> String {
        _ = done.wait(timeout: .now() + 20)
        return text
    }
}
