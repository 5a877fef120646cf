import Dispatch
import Synchronization

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

    /// One caller of `sharedPipeline`: its commands, and its replies once the round trip carrying them is back.
    private final class Waiter: Sendable {
        let commands: RedisCommands
        let lastWins: RedisCommands?
        let outcome = Mutex<Result<[RedisValue], RedisError>?>(nil)
        let wake = DispatchSemaphore(value: 0)
        init(_ commands: RedisCommands, lastWins: RedisCommands?) {
            self.commands = commands
            self.lastWins = lastWins
        }
    }
    private struct Batch {
        var queue: [Waiter] = []
        /// A caller is sending a round trip; callers arriving now queue for the next one.
        var leading = false
    }
    private let batch = Mutex(Batch())

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
        if let refusal = breaker.withLock({ $0.state == .unavailable ? $0.lastError ?? RedisError(.circuitOpen, "") : nil }) {
            observer(.skipped)
            throw RedisError(.circuitOpen, "skipped after: \(refusal.message)")
        }
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

    /// `pipeline`, with concurrent callers sharing round trips (group commit): while one caller's round trip is in
    /// flight, others queue, and the next round trip carries all of their commands in one pipeline: one write, one
    /// Redis wakeup and one read for many callers instead of one each. Each caller returns once its own replies are
    /// back, so what it wrote is in Redis when it returns (as with `pipeline`); a failure fails the whole batch.
    public func sharedPipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisValue] {
        try sharedPipeline(RedisCommands(commands))
    }

    /// `lastWins`: commands that the same commands of a later caller make redundant, such as setting a "latest"
    /// pointer. A round trip sends only its last caller's, after every caller's `commands`; each caller that passed
    /// some gets their replies after its own. Every caller must pass the same commands here (arguments aside).
    public func sharedPipeline(
        _ commands: RedisCommands, lastWins: RedisCommands? = nil
    ) throws(RedisError) -> [RedisValue] {
        let mine = Waiter(commands, lastWins: lastWins)
        let leads = batch.withLock { state in
            state.queue.append(mine)
            if state.leading { return false }
            state.leading = true
            return true
        }
        if !leads {
            mine.wake.wait()
            // Woken with replies, or without: then it heads the queue and leads the next round trip.
            if let outcome = mine.outcome.withLock({ $0 }) { return try outcome.get() }
        }
        let group = batch.withLock { state in
            defer { state.queue.removeAll() }
            return state.queue
        }
        var parts = group.map(\.commands)
        let final = group.last { $0.lastWins != nil }?.lastWins
        if let final { parts.append(final) }
        let outcome: Result<[RedisValue], RedisError>
        do { outcome = .success(try roundTrip(parts)) } catch { outcome = .failure(error) }
        var offset = 0
        let finalCount = final?.count ?? 0
        for waiter in group {
            let count = waiter.commands.count
            let own = outcome.map { replies in
                Array(replies[offset..<offset + count]) + (waiter.lastWins == nil ? [] : replies.suffix(finalCount))
            }
            waiter.outcome.withLock { $0 = own }
            offset += count
        }
        let next = batch.withLock { state in
            if let first = state.queue.first { return Optional(first) }  // still leading: `first` takes over
            state.leading = false
            return nil
        }
        for waiter in group where waiter !== mine { waiter.wake.signal() }
        next?.wake.signal()
        return try mine.outcome.withLock { $0 }!.get()
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
        let started = detachThread { [weak self] in
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

/// Runs `body` on a new detached thread. A pthread, not Foundation's `Thread`: importing Foundation links its
/// static archive and ICU data into the `--static-swift-stdlib` binary (the image's binary grew from 16 MB to 60 MB).
/// False when no thread could be made.
private func detachThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { context in
        Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    guard status == 0 else {
        Unmanaged<Body>.fromOpaque(context).release()
        return false
    }
    pthread_detach(thread)
    return true
}
