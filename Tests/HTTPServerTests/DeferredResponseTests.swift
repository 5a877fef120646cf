import Foundation
import HTTPServer
import HTTPTesting
import Logging
import Testing

/// Answers given later from another thread (`HTTPResponse.deferred`): the connection is suspended meanwhile and its
/// worker serves other connections; every way a deferred answer can end is answered or closed, never leaked.
@Suite struct DeferredResponseTests {
    /// Deferred answers handed out by the handler, for the test to complete, in the order the server handled them,
    /// each with its request's `?n=` (requests on different connections may be handled in any order).
    final class Pending: Sendable {
        private let queue = Shared<[(tag: String, later: DeferredResponse)]>([])
        private let arrived = DispatchSemaphore(value: 0)

        func add(_ later: DeferredResponse, tag: String) {
            queue.withLock { $0.append((tag, later)) }
            arrived.signal()
        }

        /// The next deferred answer handed out (nil after 30 s: a hang guard).
        func next() -> DeferredResponse? { nextTagged()?.later }

        func nextTagged() -> (tag: String, later: DeferredResponse)? {
            guard arrived.wait(timeout: .now() + 30) == .success else { return nil }
            return queue.withLock { $0.removeFirst() }
        }
    }

    /// /later defers (timeout from `?ms=`, 60 s by default); anything else is answered at once.
    private func deferringHandler(_ pending: Pending) -> HTTPServer.Handler {
        { request in
            guard request.path == "/later" else { return HTTPResponse(status: 200, body: Array("now".utf8)) }
            let timeout = Duration.milliseconds(Int(request.queryValue("ms") ?? "") ?? 60_000)
            let later: DeferredResponse
            if request.queryValue("fallback") != nil {
                later = DeferredResponse(timeout: timeout) { HTTPResponse(status: 200, body: Array("fallback".utf8)) }
            } else {
                later = DeferredResponse(timeout: timeout)
            }
            pending.add(later, tag: request.queryValue("n") ?? "")
            return .deferred(later)
        }
    }

    @Test func anAnswerCompletedFromAnotherThreadIsSentAndTheWorkerIsFreeMeanwhile() throws {
        let pending = Pending()
        // One worker: were it blocked until the answer, the second connection could not be served.
        try withServer(ServerConfiguration(threads: 1), handler: deferringHandler(pending)) { server in
            let connection = try TestConnection(port: server.port)
            try connection.sendRequest("GET", "/later")
            let later = try #require(pending.next())
            #expect(try TestConnection(port: server.port).request("GET", "/other").text == "now")
            #expect(eventually { server.requestsInFlight == 1 })  // the deferred one (the other ends just after its answer)
            Thread {
                later.complete(building: { HTTPResponse(status: 201, headers: [("X-Later", "yes")], body: Array("done".utf8)) })
            }.start()
            let answer = try connection.readResponse()
            #expect(answer.status == 201)
            #expect(answer.header("X-Later") == "yes")
            #expect(answer.text == "done")
            #expect(answer.header("X-Request-Id") != nil)
            // The connection stays usable (keep-alive), and a second completion changes nothing.
            #expect(try connection.request("GET", "/again").text == "now")
            #expect(!later.complete(HTTPResponse(status: 500)))
            #expect(eventually { server.requestsInFlight == 0 })
        }
    }

    @Test func manyConnectionsWaitAtOnceOnOneWorker() throws {
        let pending = Pending()
        try withServer(ServerConfiguration(threads: 1), handler: deferringHandler(pending)) { server in
            let connections = try (0..<20).map { _ in try TestConnection(port: server.port) }
            for (index, connection) in connections.enumerated() { try connection.sendRequest("GET", "/later?n=\(index)") }
            let answers = try (0..<20).map { _ in try #require(pending.nextTagged()) }
            #expect(eventually { server.requestsInFlight == 20 })
            for (tag, later) in answers.reversed() {
                later.complete(HTTPResponse(status: 200, body: Array("answer \(tag)".utf8)))
            }
            for (index, connection) in connections.enumerated() {
                #expect(try connection.readResponse().text == "answer \(index)")
            }
        }
    }

    @Test func anAnswerAlreadyCompletedWhenReturnedIsSentAtOnce() throws {
        try withServer(handler: { _ in
            let later = DeferredResponse()
            later.complete(HTTPResponse(status: 202, body: Array("ready".utf8)))
            return .deferred(later)
        }) { server in
            let answer = try TestConnection(port: server.port).request("GET", "/")
            #expect(answer.status == 202)
            #expect(answer.text == "ready")
        }
    }

    @Test func aCompletionThatNeverComesIsBoundedByTheTimeout() throws {
        let pending = Pending()
        try withServer(handler: deferringHandler(pending)) { server in
            let started = Date()
            let answer = try TestConnection(port: server.port).request("GET", "/later?ms=200")
            let waited = Date().timeIntervalSince(started)
            #expect(answer.status == 503)
            #expect(waited >= 0.19 && waited < 5, "answered after \(waited) s")
            // Its own timeout answer, when it has one.
            #expect(try TestConnection(port: server.port).request("GET", "/later?ms=100&fallback").text == "fallback")
            // The handler's late completion is dropped.
            let late = try #require(pending.next())
            #expect(!late.complete(HTTPResponse(status: 200)))
            #expect(eventually { server.requestsInFlight == 0 })
        }
    }

    @Test func aClientThatLeavesWhileWaitingLeavesNothingBehind() throws {
        let pending = Pending()
        try withServer(ServerConfiguration(threads: 1), handler: deferringHandler(pending)) { server in
            for _ in 0..<5 {
                let connection = try TestConnection(port: server.port)
                try connection.sendRequest("GET", "/later")
                let later = try #require(pending.next())
                shutdown(connection.fd, Int32(SHUT_RDWR))  // gone while its connection is suspended
                usleep(20_000)
                later.complete(HTTPResponse(status: 200, body: Array(repeating: 0x61, count: 100_000)))
            }
            // Every one was closed and counted out; the server serves on.
            #expect(eventually { server.requestsInFlight == 0 })
            #expect(try TestConnection(port: server.port).request("GET", "/other").text == "now")
        }
    }

    @Test func aStopAnswersEveryWaitingConnectionAndLateCompletionsAreHarmless() throws {
        let pending = Pending()
        let server = HTTPServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, threads: 2, idleTimeoutSeconds: 60),
            logger: LogCapture().logger(), handler: deferringHandler(pending))
        try server.start()
        let port = server.port
        // One answered within the grace period, two still waiting when it ends (one with its own timeout answer).
        let (answeredResult, answeredDone) = requestInBackground(port: port, "/later", timeoutSeconds: 30)
        let answeredLater = try #require(pending.next())
        let (plainResult, plainDone) = requestInBackground(port: port, "/later", timeoutSeconds: 30)
        let plainLater = try #require(pending.next())
        let (fallbackResult, fallbackDone) = requestInBackground(port: port, "/later?fallback", timeoutSeconds: 30)
        let fallbackLater = try #require(pending.next())

        let stopped = DispatchSemaphore(value: 0)
        let started = Date()
        Thread {
            server.shutdown(gracePeriod: .milliseconds(600))
            stopped.signal()
        }.start()
        #expect(eventually { server.isDraining })
        answeredLater.complete(HTTPResponse(status: 200, body: Array("in time".utf8)))
        #expect(stopped.wait(timeout: .now() + 10) == .success)
        let took = Date().timeIntervalSince(started)
        #expect(took >= 0.5 && took < 5, "the stop took \(took) s")

        for done in [answeredDone, plainDone, fallbackDone] { #expect(done.wait(timeout: .now() + 10) == .success) }
        let answered = try #require(try answeredResult.withLock { $0 }?.get())
        #expect(answered.text == "in time")
        #expect(answered.header("Connection")?.lowercased() == "close")
        #expect(try #require(try plainResult.withLock { $0 }?.get()).status == 503)
        #expect(try #require(try fallbackResult.withLock { $0 }?.get()).text == "fallback")
        // After the stop: completing changes nothing and touches no freed connection.
        #expect(!plainLater.complete(HTTPResponse(status: 200)))
        #expect(!fallbackLater.complete(HTTPResponse(status: 200)))
        #expect(server.requestsInFlight == 0)
    }

    /// Races on purpose: answers completed before, during and after the suspension, from several threads, clients
    /// that leave, and a stop in the middle. Every answer that arrives is whole; nothing hangs or crashes.
    @Test func completionsRacingSuspensionsClientsAndTheStopStayConsistent() throws {
        let server = HTTPServer(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, threads: 2, idleTimeoutSeconds: 60),
            logger: LogCapture().logger(),
            handler: { request in
                let later = DeferredResponse(timeout: .seconds(5))
                let delay = UInt32(request.path.utf8.count % 4) * 300  // /, /a, /ab, /abc: 0-900 us
                if delay == 0 {
                    later.complete(HTTPResponse(status: 200, body: Array(request.path.utf8)))
                } else {
                    Thread {
                        usleep(delay)
                        later.complete(building: { HTTPResponse(status: 200, body: Array(request.path.utf8)) })
                    }.start()
                }
                return .deferred(later)
            })
        try server.start()
        let port = server.port
        let wrong = Shared(0), answered = Shared(0)
        let clients = DispatchGroup()
        for client in 0..<8 {
            clients.enter()
            Thread {
                defer { clients.leave() }
                guard let connection = try? TestConnection(port: port, timeoutSeconds: 20) else { return }
                for index in 0..<200 {
                    let path = String(repeating: "a", count: (client + index) % 4).isEmpty
                        ? "/" : "/" + String(repeating: "a", count: (client + index) % 4)
                    if client % 4 == 3 && index == 50 {  // leaves with its request unanswered
                        try? connection.sendRequest("GET", path)
                        shutdown(connection.fd, Int32(SHUT_RDWR))
                        return
                    }
                    guard let answer = try? connection.request("GET", path) else { return }  // the stop closed it
                    if answer.status == 200 && answer.text == path || answer.status == 503 {
                        answered.withLock { $0 += 1 }
                    } else {
                        wrong.withLock { $0 += 1 }
                    }
                    if answer.header("Connection")?.lowercased() == "close" { return }
                }
            }.start()
        }
        #expect(eventually { answered.withLock { $0 } >= 300 })
        server.shutdown(gracePeriod: .milliseconds(200))
        #expect(clients.wait(timeout: .now() + 30) == .success)
        #expect(wrong.withLock { $0 } == 0)
        #expect(server.requestsInFlight == 0)
    }

    @Test func withoutAServerResolvedWaitsForTheAnswer() {
        let later = DeferredResponse()
        let observed = Shared<Int?>(nil)
        later.whenAnswered { answer in observed.withLock { $0 = answer.status } }
        Thread {
            usleep(50_000)
            later.complete(HTTPResponse(status: 204))
        }.start()
        #expect(HTTPResponse.deferred(later).resolved().status == 204)
        #expect(observed.withLock { $0 } == 204)
        #expect(HTTPResponse(status: 200).resolved().status == 200)
        let never = DeferredResponse(timeout: .milliseconds(50))
        #expect(HTTPResponse.deferred(never).resolved().status == 503)
    }
}
