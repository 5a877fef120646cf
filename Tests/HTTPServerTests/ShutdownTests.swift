import Foundation
import HTTPServer
import HTTPTesting
import Logging
import Testing

@Suite struct ShutdownTests {
    @Test func shutdownFinishesInFlightAndClosesIdleConnections() throws {
        let started = DispatchSemaphore(value: 0)
        let handler: HTTPServer.Handler = { request in
            if request.path == "/slow" {
                started.signal()
                usleep(400_000)
            }
            return HTTPResponse(status: 200, body: Array("done \(request.path)".utf8))
        }
        let server = HTTPServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, threads: 2, idleTimeoutSeconds: 60),
            logger: LogCapture().logger(), handler: handler)
        try server.start()
        let port = server.port

        let idle = try TestConnection(port: port)
        #expect(try idle.request("GET", "/warm").status == 200)  // now an idle keep-alive connection

        let slowResult = Shared<Result<RawResponse, any Error>?>(nil)
        let slowDone = DispatchSemaphore(value: 0)
        Thread {
            slowResult.withLock { result in
                result = Result { try TestConnection(port: port).request("GET", "/slow") }
            }
            slowDone.signal()
        }.start()
        #expect(started.wait(timeout: .now() + 10) == .success)

        #expect(!server.isDraining)
        server.shutdown(gracePeriod: .seconds(10))
        #expect(server.isDraining)

        #expect(slowDone.wait(timeout: .now() + 10) == .success)
        let slow = try #require(try slowResult.current?.get())
        #expect(slow.status == 200)
        #expect(slow.text == "done /slow")
        #expect(slow.header("Connection")?.lowercased() == "close")
        #expect(idle.waitForClose(), "idle keep-alive connections are closed by shutdown")
        #expect(throws: TestClientError.self) { try TestConnection(port: port) }  // no longer listening
        server.shutdown(gracePeriod: .seconds(1))  // a second call is harmless
    }

    /// The real thing: a server process gets SIGTERM while requests are in flight, completes them and exits 0.
    /// Stopping while clients connect and send must never abort the process. (libmicrohttpd 0.9.75's
    /// MHD_quiesce_daemon did, racing its own workers: the server no longer calls it.)
    @Test(.timeLimit(.minutes(1))) func stoppingUnderTrafficNeverAborts() throws {
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        for _ in 0..<25 {
            let server = HTTPServer(
                configuration: ServerConfiguration(host: "127.0.0.1", port: 0, threads: 2, idleTimeoutSeconds: 5),
                logger: quiet, handler: echoHandler)
            try server.start()
            let port = server.port
            let trafficEnds = DispatchTime.now() + .milliseconds(150)
            let clients = DispatchGroup()
            clients.enter()
            DispatchQueue.global().async {
                onThreads(4) { _ in
                    // New connections, keep-alive requests and half-sent requests, before, during and after the stop.
                    while DispatchTime.now() < trafficEnds {
                        guard let connection = try? TestConnection(port: port, timeoutSeconds: 1) else { continue }
                        _ = try? connection.request("POST", "/", body: [1, 2, 3])
                        try? connection.send(requestHead("POST", "/", contentLength: 10) + [1])
                    }
                }
                clients.leave()
            }
            usleep(30_000)
            server.shutdown(gracePeriod: .milliseconds(200))
            clients.wait()
        }
    }

    @Test(.timeLimit(.minutes(1))) func sigtermCompletesInFlightRequestsAndExitsZero() throws {
        let host = try TestHostProcess()
        defer { host.terminateIfRunning() }
        let port = host.port

        let idle = try TestConnection(port: port)
        #expect(try idle.request("GET", "/hello").text == "hello\n")

        let inFlight = 3
        let results = Shared<[Int: String]>([:])
        let group = DispatchGroup()
        for tag in 0..<inFlight {
            group.enter()
            Thread {
                let outcome: String
                do {
                    let response = try TestConnection(port: port, timeoutSeconds: 20).request("GET", "/slow?ms=700&tag=\(tag)")
                    outcome = "\(response.status) \(response.text.trimmingCharacters(in: .newlines)) \(response.header("Connection") ?? "")"
                } catch {
                    outcome = "error \(error)"
                }
                results.withLock { $0[tag] = outcome }
                group.leave()
            }.start()
        }
        // Signal once every request has entered its handler. Two connections may share a pool thread (handlers run
        // synchronously), so an early one may already be answered; the last to begin is surely still in flight.
        var lastBegun = -1
        for _ in 0..<inFlight {
            let line = try host.readLine()
            #expect(line.hasPrefix("BEGIN "), "unexpected host output: \(line)")
            lastBegun = Int(line.dropFirst(6)) ?? -1
        }
        kill(host.pid, SIGTERM)

        #expect(group.wait(timeout: .now() + 20) == .success)
        for tag in 0..<inFlight {
            #expect(results.current[tag]?.hasPrefix("200 slept 700") == true, "request \(tag): \(results.current[tag] ?? "-")")
        }
        // Answered while draining, so it tells the client the connection ends.
        #expect(results.current[lastBegun] == "200 slept 700 close")
        #expect(idle.waitForClose())
        #expect(try host.readLine() == "SIGNAL \(SIGTERM)")
        #expect(try host.readLine() == "STOPPED")
        let status = try host.waitForExit(seconds: 20)
        #expect(status == 0)
    }
}

/// Sources/HTTPTestHost run as a child process; its stdout is read line by line.
final class TestHostProcess {
    let process = Process()
    let output = Pipe()
    private var buffer: [UInt8] = []
    private(set) var port = 0

    var pid: Int32 { process.processIdentifier }

    init() throws {
        let executable = try Self.hostExecutable()
        process.executableURL = executable
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let first = try readLine()
        guard first.hasPrefix("PORT "), let port = Int(first.dropFirst(5)) else {
            throw TestClientError.malformed("HTTPTestHost said: \(first)")
        }
        self.port = port
    }

    /// The helper is built next to the test bundle by `swift build --build-tests` / `swift test`.
    static func hostExecutable() throws -> URL {
        let testBinary = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0])
        var directory = testBinary.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("HTTPTestHost")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw TestClientError.malformed("HTTPTestHost not found near \(testBinary.path); build it with `swift build --build-tests`")
    }

    /// The next line of the host's stdout, waiting at most 20 s.
    func readLine() throws -> String {
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeFirst(newline + 1)
                return line
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 20_000) == 1 else { throw TestClientError.timedOut }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { throw TestClientError.closedByPeer }
            buffer += chunk[..<count]
        }
    }

    func waitForExit(seconds: Int) throws -> Int32 {
        for _ in 0..<(seconds * 100) where process.isRunning { usleep(10_000) }
        guard !process.isRunning else { throw TestClientError.timedOut }
        return process.terminationStatus
    }

    func terminateIfRunning() {
        if process.isRunning { kill(pid, SIGKILL) }
    }
}
