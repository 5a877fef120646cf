import Foundation
import HTTPServer
import HTTPTesting
import Logging
import Testing

@Suite struct ShutdownTests {
    /// A started server answering "done PATH", holding requests for /slow in its handler until the gate releases.
    private func gatedServer(threads: Int) throws -> (HTTPServer, Gate) {
        let gate = Gate()
        let handler: HTTPServer.Handler = { request in
            if request.path == "/slow" { gate.pass() }
            return HTTPResponse(status: 200, body: Array("done \(request.path)".utf8))
        }
        let server = HTTPServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, threads: threads, idleTimeoutSeconds: 60),
            logger: LogCapture().logger(), handler: handler)
        try server.start()
        return (server, gate)
    }

    @Test func shutdownFinishesInFlightAndClosesIdleConnections() throws {
        let (server, gate) = try gatedServer(threads: 2)
        let port = server.port

        let idle = try TestConnection(port: port)
        #expect(try idle.request("GET", "/warm").status == 200)  // now an idle keep-alive connection

        let (slowResult, slowDone) = requestInBackground(port: port, "/slow")
        #expect(gate.waitUntilInside())

        #expect(!server.isDraining)
        let stopped = DispatchSemaphore(value: 0)
        Thread {
            server.shutdown(gracePeriod: .seconds(60))
            stopped.signal()
        }.start()
        // While the request is held in its handler: draining, and no longer accepting. The listening port stays
        // ours until the server stops, so "refused" cannot be another test's server.
        #expect(eventually { server.isDraining })
        #expect(eventually { isRefused(port) })
        #expect(stopped.wait(timeout: .now()) == .timedOut, "shutdown must wait for the request in flight")
        gate.release()

        #expect(slowDone.wait(timeout: .now() + 60) == .success)
        let slow = try #require(try slowResult.current?.get())
        #expect(slow.status == 200)
        #expect(slow.text == "done /slow")
        #expect(slow.header("Connection")?.lowercased() == "close")
        #expect(stopped.wait(timeout: .now() + 60) == .success)
        #expect(idle.waitForClose(), "idle keep-alive connections are closed by shutdown")
        server.shutdown(gracePeriod: .seconds(1))  // a second call is harmless
    }

    /// A connection still in the listening socket's backlog when the stop begins (its handshake done by the kernel,
    /// its request sent, no worker free to accept it) is served, not reset when the socket closes.
    @Test func connectionWaitingInTheBacklogAtStopIsServed() throws {
        // One worker: while it is held in the handler, nothing accepts, so the next connection waits in the backlog.
        let (server, gate) = try gatedServer(threads: 1)
        let port = server.port

        let (slowResult, slowDone) = requestInBackground(port: port, "/slow")
        #expect(gate.waitUntilInside())

        let queuedResult = Shared<Result<RawResponse, any Error>?>(nil)
        let connected = DispatchSemaphore(value: 0)
        let queuedDone = DispatchSemaphore(value: 0)
        Thread {
            queuedResult.withLock { result in
                result = Result {
                    let queued = try TestConnection(port: port, timeoutSeconds: 60)  // connected: in the backlog
                    connected.signal()
                    return try queued.request("GET", "/queued")
                }
            }
            connected.signal()  // also when connecting failed, so the test does not hang
            queuedDone.signal()
        }.start()
        #expect(connected.wait(timeout: .now() + 30) == .success)
        Thread.sleep(forTimeInterval: 0.2)  // the request is sent, and nobody has read it

        let stopped = DispatchSemaphore(value: 0)
        Thread {
            server.shutdown(gracePeriod: .seconds(60))
            stopped.signal()
        }.start()
        #expect(eventually { isRefused(port) })
        gate.release()

        #expect(slowDone.wait(timeout: .now() + 60) == .success)
        #expect(try slowResult.current?.get().status == 200)
        #expect(queuedDone.wait(timeout: .now() + 60) == .success)
        let answer = try #require(try queuedResult.current?.get())
        #expect(answer.status == 200)
        #expect(answer.text == "done /queued")
        #expect(answer.header("Connection")?.lowercased() == "close")
        #expect(stopped.wait(timeout: .now() + 60) == .success)
    }

    /// Stopping while clients connect and send must never abort the process, and every answer a client gets is
    /// complete and right. (libmicrohttpd 0.9.75's MHD_quiesce_daemon aborted, racing its own workers: the server no
    /// longer calls it.) Traffic runs before, during and after the stop: the stop waits for answered requests, and
    /// the clients stop only after it returned.
    @Test(.timeLimit(.minutes(3))) func stoppingUnderTrafficNeverAborts() throws {
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        for round in 0..<10 {
            let server = HTTPServer(
                configuration: ServerConfiguration(host: "127.0.0.1", port: 0, threads: 2, idleTimeoutSeconds: 30),
                logger: quiet, handler: echoHandler)
            try server.start()
            let port = server.port
            let stopped = Shared(false)
            let answered = DispatchSemaphore(value: 0)
            let failures = Shared<[String]>([])
            let clients = DispatchGroup()
            clients.enter()
            DispatchQueue.global().async {
                onThreads(4) { _ in
                    // New connections, keep-alive requests and half-sent requests, until the server has stopped.
                    var attempts = 0
                    while !stopped.current && attempts < 100_000 {
                        attempts += 1
                        // Refused (connect or reset) once the stop began: fine. A wrong answer or silence is not.
                        guard let connection = try? TestConnection(port: port, timeoutSeconds: 30) else { continue }
                        do {
                            let response = try connection.request("POST", "/", body: [1, 2, 3])
                            if response.status != 200 || response.body != [1, 2, 3] {
                                failures.withLock { $0.append("answered \(response.status) \(response.body)") }
                            }
                            answered.signal()
                        } catch TestClientError.timedOut {
                            failures.withLock { $0.append("a request got no answer and no close") }
                        } catch TestClientError.malformed(let why) {
                            failures.withLock { $0.append("malformed answer: \(why)") }
                        } catch {}
                        try? connection.send(requestHead("POST", "/", contentLength: 10) + [1])
                    }
                }
                clients.leave()
            }
            for _ in 0..<8 { #expect(answered.wait(timeout: .now() + 30) == .success) }
            server.shutdown(gracePeriod: .milliseconds(200))
            stopped.withLock { $0 = true }
            #expect(clients.wait(timeout: .now() + 120) == .success)
            let wrong = failures.current
            #expect(wrong.count == 0, "round \(round): \(wrong.prefix(5))")
        }
    }

    /// The real thing: a server process gets SIGTERM while a request is in flight and idle keep-alive connections
    /// are open; it stops accepting, completes the request (with `Connection: close`), closes the idle connection
    /// and exits 0. The host's /gate handler holds the request until the test writes a line to the host's stdin.
    @Test(.timeLimit(.minutes(2))) func sigtermCompletesInFlightRequestsAndExitsZero() throws {
        let host = try TestHostProcess()
        defer { host.stop() }
        let port = host.port

        let idle = try TestConnection(port: port)
        #expect(try idle.request("GET", "/hello").text == "hello\n")

        let result = Shared<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let outcome: String
            do {
                let response = try TestConnection(port: port, timeoutSeconds: 60).request("GET", "/gate?tag=7")
                outcome = "\(response.status) \(response.text.trimmingCharacters(in: .newlines)) \(response.header("Connection") ?? "")"
            } catch {
                outcome = "error \(error)"
            }
            result.withLock { $0 = outcome }
            done.signal()
        }.start()
        #expect(try host.readLine() == "BEGIN 7")
        kill(host.pid, SIGTERM)
        #expect(try host.readLine() == "SIGNAL \(SIGTERM)")
        // Draining: new connections are refused while the request is still held (the port is still the host's).
        #expect(eventually { isRefused(port) })
        #expect(done.wait(timeout: .now()) == .timedOut, "the request in flight must not be cut off")
        host.releaseGate()

        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(result.current == "200 released close")
        #expect(idle.waitForClose())
        #expect(try host.readLine() == "STOPPED")
        #expect(try host.waitForExit(seconds: 60) == 0)
    }
}

/// Sources/HTTPTestHost run as a child process; its stdout is read line by line.
final class TestHostProcess {
    let process = Process()
    let output = Pipe()
    let input = Pipe()
    private var buffer: [UInt8] = []
    private(set) var port = 0

    var pid: Int32 { process.processIdentifier }

    init() throws {
        let executable = try Self.hostExecutable()
        process.executableURL = executable
        process.standardOutput = output
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try process.run()
        do {
            let first = try readLine()
            guard first.hasPrefix("PORT "), let port = Int(first.dropFirst(5)) else {
                throw TestClientError.malformed("HTTPTestHost said: \(first)")
            }
            self.port = port
        } catch {
            stop()  // never leave the child behind
            throw error
        }
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

    /// Lets the request held in /gate finish.
    func releaseGate() {
        try? input.fileHandleForWriting.write(contentsOf: Array("RELEASE\n".utf8))
    }

    /// The exit status; throws if the process still runs after `seconds` (a hang guard).
    func waitForExit(seconds: Int) throws -> Int32 {
        for _ in 0..<(seconds * 100) where process.isRunning { usleep(10_000) }
        guard !process.isRunning else { throw TestClientError.timedOut }
        return process.terminationStatus
    }

    /// Kills the process if it still runs and waits until it is gone.
    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}
