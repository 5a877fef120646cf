import Dispatch
import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A thread-safe Redis client for blocking callers (HTTP worker threads): a small pool of hiredis connections behind
/// a circuit breaker.
///
/// After a connection-level failure (refused, reset, timed out) the breaker opens: calls fail at once with
/// `.circuitOpen` instead of each waiting out a timeout on the few worker threads, and a background thread probes Redis
/// every `probeInterval` (connect, AUTH/SELECT, PING). The first probe that succeeds closes the breaker, so a returning
/// Redis is used again within about one probe interval. Error replies (`-OOM`, `-WRONGTYPE`) are answers, not failures.
public final class RedisClient: Sendable {
    public enum State: String, Sendable {
        case available
        /// The breaker is open: Redis is skipped until a background probe succeeds.
        case unavailable
    }

    public enum Event: Sendable {
        /// One round trip (a command or a pipeline) and whether it reached Redis and back.
        case roundTrip(Duration, succeeded: Bool)
        /// A call skipped because the breaker is open.
        case skipped
        case stateChanged(State, reason: String)
    }

    public let configuration: RedisConfiguration
    private let observer: @Sendable (Event) -> Void
    private let idle = Mutex<[HiredisConnection]>([])

    private struct Breaker {
        var state = State.available
        var lastError: RedisError?
        var probing = false
        var closed = false
    }
    private let breaker = Mutex(Breaker())

    /// Commands waiting for the writer thread's next round trip (`submit`), and whether that thread sleeps.
    private let writes = WriteQueue()

    public init(configuration: RedisConfiguration, observer: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.configuration = configuration
        self.observer = observer
    }

    deinit { breaker.withLock { $0.closed = true } }

    public var state: State { breaker.withLock { $0.state } }
    public var lastError: RedisError? { breaker.withLock { $0.lastError } }

    /// Stops the background probe (if any) and drops idle connections. Later calls fail with `.circuitOpen`.
    public func close() {
        breaker.withLock {
            $0.closed = true
            $0.state = .unavailable
            $0.lastError = RedisError(.circuitOpen, "client closed")
        }
        idle.withLock { $0.removeAll() }
    }

    /// One command, e.g. `["GET", key]`.
    public func command(_ arguments: [[UInt8]]) throws(RedisError) -> RedisValue {
        try pipeline([arguments])[0]
    }

    public func command(_ arguments: String...) throws(RedisError) -> RedisValue {
        try command(arguments.map { Array($0.utf8) })
    }

    /// Sends the commands in one round trip and returns one reply each (error replies included).
    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisValue] {
        try pipeline(RedisCommands(commands))
    }

    public func pipeline(_ commands: RedisCommands) throws(RedisError) -> [RedisValue] {
        try roundTrip([commands])
    }

    private func roundTrip(_ parts: [RedisCommands]) throws(RedisError) -> [RedisValue] {
        if let refusal = refusal() { throw refusal }
        let start = ContinuousClock.now
        do {
            let replies = try withConnection { connection throws(RedisError) in try connection.pipeline(parts) }
            observer(.roundTrip(.now - start, succeeded: true))
            return replies
        } catch {
            observer(.roundTrip(.now - start, succeeded: false))
            open(after: error)
            throw error
        }
    }

    /// The error for a call made while the breaker is open (counted as skipped), or nil when Redis may be tried.
    private func refusal() -> RedisError? {
        guard let last = breaker.withLock({ $0.state == .unavailable ? $0.lastError ?? RedisError(.circuitOpen, "") : nil })
        else { return nil }
        observer(.skipped)
        return RedisError(.circuitOpen, "skipped after: \(last.message)")
    }

    /// `pipeline` with concurrent callers sharing round trips (group commit); waits for this caller's replies.
    /// See ``submit(_:lastWins:completion:)``.
    public func sharedPipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisValue] {
        try sharedPipeline(RedisCommands(commands))
    }

    public func sharedPipeline(
        _ commands: RedisCommands, lastWins: RedisCommands? = nil
    ) throws(RedisError) -> [RedisValue] {
        let outcome = Mutex<Result<[RedisValue], RedisError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        submit(commands, lastWins: lastWins) { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()  // bounded: every round trip is (connect and command timeouts)
        return try outcome.withLock { $0 }!.get()
    }

    /// Sends `commands` in the next round trip of a writer thread and calls `completion` with their replies, on that
    /// thread, once they are back; the caller does not wait. While one round trip is in flight, submissions queue,
    /// and the next one carries all of them in one pipeline (group commit): one write, one Redis wakeup and one read
    /// for many callers. A reply means Redis has the write (as with `pipeline`); a failure fails the whole batch.
    /// With the breaker open, `completion` runs at once, on this thread, with `.circuitOpen`.
    ///
    /// `lastWins`: commands that the same commands of a later caller make redundant, such as setting a "latest"
    /// pointer. A round trip sends only its last caller's, after every caller's `commands`; each caller that passed
    /// some gets their replies after its own. Every caller must pass the same commands here (arguments aside).
    public func submit(
        _ commands: RedisCommands, lastWins: RedisCommands? = nil,
        completion: @escaping @Sendable (Result<[RedisValue], RedisError>) -> Void
    ) {
        var build: (@Sendable () -> RedisCommands)?
        if let lastWins { build = { lastWins } }
        submit(commands, lastWinsBuiltBy: build, completion: completion)
    }

    /// ``submit(_:lastWins:completion:)`` with the `lastWins` commands built by the writer thread, and only for the
    /// last caller of a round trip: the others' are never sent, so never made (~1,500 instructions an evaluation).
    public func submit(
        _ commands: RedisCommands, lastWinsBuiltBy lastWins: (@Sendable () -> RedisCommands)?,
        completion: @escaping @Sendable (Result<[RedisValue], RedisError>) -> Void
    ) {
        submit(ClosureSubmission(commands: commands, build: lastWins, completion: completion))
    }

    /// ``submit(_:lastWins:completion:)`` for a write that is one object: its commands, its `lastWins` commands and
    /// its completion (``RedisSubmission``).
    public func submit(_ submission: some RedisSubmission) {
        if let refusal = refusal() {
            submission.finished(.failure(refusal))
            return
        }
        switch writes.append(submission) {
        case .queued: break
        case .wakeWriter: writes.wake()
        case .startWriter:
            if !startWriter() {
                for submission in writes.takeAll() {
                    submission.finished(.failure(RedisError(.connection, "cannot start the Redis writer thread")))
                }
            }
        }
    }

    /// The writer thread: sends whatever is queued in one round trip, completes it, repeats; sleeps when nothing is.
    /// It holds the client weakly (and only between round trips), so it ends within a second of the client's release.
    private func startWriter() -> Bool {
        startDetachedThread { [weak self, writes] in
            while true {
                guard let batch = writes.next(waitingAtMost: 1_000_000_000) else {
                    guard let client = self, !client.breaker.withLock({ $0.closed }) else {
                        writes.stopped()
                        for submission in writes.takeAll() {
                            submission.finished(.failure(RedisError(.circuitOpen, "client closed")))
                        }
                        return
                    }
                    continue
                }
                guard let client = self else {
                    for submission in batch { submission.finished(.failure(RedisError(.circuitOpen, "client closed"))) }
                    continue
                }
                client.send(batch)
            }
        }
    }

    /// One round trip for `batch`; each submission gets its own replies (and the final `lastWins` ones), as a view of
    /// the round trip's replies: no array per submission.
    private func send(_ batch: [any RedisSubmission]) {
        var parts: [RedisCommands] = []
        parts.reserveCapacity(batch.count + 1)
        for submission in batch { parts.append(submission.commands) }
        let final = batch.last { $0.hasLastWins }?.lastWins()
        if let final { parts.append(final) }
        let outcome: Result<[RedisValue], RedisError>
        do { outcome = .success(try roundTrip(parts)) } catch { outcome = .failure(error) }
        var offset = 0
        let finalCount = final?.count ?? 0
        for (submission, part) in zip(batch, parts) {
            let own = offset..<offset + part.count
            submission.finished(outcome.map { replies in
                RedisReplies(replies, own: own, final: submission.hasLastWins ? replies.count - finalCount..<replies.count : 0..<0)
            })
            offset += part.count
        }
    }

    /// Runs `body` on an idle connection or a new one, and keeps the connection unless it failed. A reused connection
    /// that fails with a connection error (Redis restarted since it was last used) is replaced once: every command we
    /// send is idempotent, and a timeout is never retried (it would double the wait).
    private func withConnection<R>(
        _ body: (HiredisConnection) throws(RedisError) -> R
    ) throws(RedisError) -> R {
        if let reused = idle.withLock({ $0.popLast() }) {
            do {
                let result = try body(reused)
                recycle(reused)
                return result
            } catch where error.kind == .connection {
                idle.withLock { $0.removeAll() }  // its siblings are as stale
            }
        }
        let fresh = try connect()
        let result = try body(fresh)
        recycle(fresh)
        return result
    }

    private func recycle(_ connection: HiredisConnection) {
        idle.withLock { connections in
            if connections.count < configuration.maxIdleConnections { connections.append(connection) }
        }
    }

    /// A new connection, authenticated and on the configured database.
    private func connect() throws(RedisError) -> HiredisConnection {
        let connection = try HiredisConnection(
            host: configuration.host, port: configuration.port,
            connectTimeout: configuration.connectTimeout, commandTimeout: configuration.commandTimeout)
        var setup: [[String]] = []
        if let password = configuration.password {
            setup.append(["AUTH"] + (configuration.username.map { [$0] } ?? []) + [password])
        }
        if configuration.database != 0 { setup.append(["SELECT", String(configuration.database)]) }
        if setup.isEmpty { return connection }
        let byteCommands = RedisCommands(setup.map { $0.map { Array($0.utf8) } })
        for (command, reply) in zip(setup, try connection.pipeline([byteCommands])) {
            if case .error(let message) = reply {
                throw RedisError(.setup, "\(command[0]) failed: \(message)")
            }
        }
        return connection
    }

    private func open(after error: RedisError) {
        idle.withLock { $0.removeAll() }
        let startProbe = breaker.withLock { breaker -> Bool in
            breaker.lastError = error
            guard !breaker.closed, breaker.state == .available else { return false }
            breaker.state = .unavailable
            if breaker.probing { return false }
            breaker.probing = true
            return true
        }
        if startProbe {
            observer(.stateChanged(.unavailable, reason: error.description))
            startProbing(configuration.probeInterval)
        }
    }

    /// One background thread per outage: it ends when a probe succeeds or the client is closed or released.
    private func startProbing(_ interval: Duration) {
        let started = startDetachedThread { [weak self] in
            while true {
                var pause = timespec(tv_sec: Int(interval.components.seconds),
                                     tv_nsec: Int(interval.components.attoseconds / 1_000_000_000))
                var remaining = timespec()
                while nanosleep(&pause, &remaining) != 0 && errno == EINTR { pause = remaining }
                guard let self, self.probeOnce() else { return }
            }
        }
        // No thread (resources exhausted): the next failure tries again, rather than nothing ever probing.
        if !started { breaker.withLock { $0.probing = false } }
    }

    /// One probe; true when probing should go on.
    private func probeOnce() -> Bool {
        if breaker.withLock({ $0.closed }) {
            breaker.withLock { $0.probing = false }
            return false
        }
        do throws(RedisError) {
            let connection = try connect()
            let reply = try connection.pipeline([RedisCommands([[Array("PING".utf8)]])])[0]
            if case .error(let message) = reply { throw RedisError(.setup, "PING: \(message)") }
            idle.withLock { $0 = [connection] }
            breaker.withLock {
                $0.state = .available
                $0.probing = false
            }
            observer(.stateChanged(.available, reason: "probe succeeded"))
            return false
        } catch {
            breaker.withLock { $0.lastError = error }
            return true
        }
    }
}

/// A write for ``RedisClient/submit(_:)-(some RedisSubmission)``: its commands and what to do with their replies, in one
/// object. A closure for each (the `lastWins` builder, the completion and the caller's own completion around it)
/// cost an allocation each, made on an HTTP worker and freed on the writer thread (Benchmarks/redis-store/RESULTS.md).
public protocol RedisSubmission: AnyObject, Sendable {
    /// Sent in the writer thread's next round trip.
    var commands: RedisCommands { get }
    /// Whether this write has `lastWins` commands (see ``RedisClient/submit(_:lastWins:completion:)``).
    var hasLastWins: Bool { get }
    /// Made by the writer thread, only for the last submission of a round trip that has them.
    func lastWins() -> RedisCommands
    /// Called once, on the writer thread, with this write's replies (its own, then the `lastWins` ones if it has
    /// them), or at once on the submitting thread when the breaker is open.
    func finished(_ outcome: Result<RedisReplies, RedisError>)
}

/// One submission's replies, in order: a view of its round trip's replies.
public struct RedisReplies: RandomAccessCollection, Sendable {
    private let all: [RedisValue]
    private let own: Range<Int>
    private let final: Range<Int>

    init(_ all: [RedisValue], own: Range<Int>, final: Range<Int>) {
        self.all = all
        self.own = own
        self.final = final
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { own.count + final.count }
    public subscript(index: Int) -> RedisValue {
        index < own.count ? all[own.lowerBound + index] : all[final.lowerBound + index - own.count]
    }
}

/// A submission made of closures (``RedisClient/submit(_:lastWinsBuiltBy:completion:)``).
private final class ClosureSubmission: RedisSubmission {
    let commands: RedisCommands
    let build: (@Sendable () -> RedisCommands)?
    let completion: @Sendable (Result<[RedisValue], RedisError>) -> Void

    init(commands: RedisCommands, build: (@Sendable () -> RedisCommands)?,
         completion: @escaping @Sendable (Result<[RedisValue], RedisError>) -> Void) {
        self.commands = commands
        self.build = build
        self.completion = completion
    }

    var hasLastWins: Bool { build != nil }
    func lastWins() -> RedisCommands { build?() ?? RedisCommands() }
    func finished(_ outcome: Result<RedisReplies, RedisError>) { completion(outcome.map { Array($0) }) }
}

/// The submissions waiting for the writer thread. The writer is woken (a semaphore) only when it sleeps: under
/// load it finds the next batch queued when its round trip is back, and nobody signals anything.
private final class WriteQueue: Sendable {
    enum Appended { case queued, wakeWriter, startWriter }

    private struct State {
        var waiting: [any RedisSubmission] = []
        var writerRunning = false
        var writerSleeping = false
    }
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)

    func append(_ submission: any RedisSubmission) -> Appended {
        state.withLock { state in
            state.waiting.append(submission)
            if !state.writerRunning {
                state.writerRunning = true
                return .startWriter
            }
            if state.writerSleeping {
                state.writerSleeping = false
                return .wakeWriter
            }
            return .queued
        }
    }

    func wake() { wakeup.signal() }

    /// Everything queued, waiting up to `nanoseconds` for something; nil when nothing came.
    func next(waitingAtMost nanoseconds: UInt64) -> [any RedisSubmission]? {
        if let batch = takeOrSleep() { return batch }
        _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(nanoseconds)))
        return state.withLock { state in
            state.writerSleeping = false
            if state.waiting.isEmpty { return nil }
            defer { state.waiting.removeAll(keepingCapacity: true) }
            return state.waiting
        }
    }

    private func takeOrSleep() -> [any RedisSubmission]? {
        state.withLock { state in
            if state.waiting.isEmpty {
                state.writerSleeping = true
                return nil
            }
            defer { state.waiting.removeAll(keepingCapacity: true) }
            return state.waiting
        }
    }

    func takeAll() -> [any RedisSubmission] {
        state.withLock { state in
            defer { state.waiting.removeAll() }
            return state.waiting
        }
    }

    /// The writer ends: a later submission starts a new one.
    func stopped() {
        state.withLock {
            $0.writerRunning = false
            $0.writerSleeping = false
        }
    }
}
