import CMicroHTTPD
import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An answer a handler gives later, from any thread, without holding a worker thread meanwhile.
///
/// The handler returns `.deferred(later)`; the server suspends the connection (libmicrohttpd's suspend/resume),
/// its worker serves other connections, and whoever calls `complete` (an I/O thread, say) has the server resume it
/// and send the answer. Without a server (tests, in-process callers) ``HTTPResponse/resolved()`` waits for it.
///
/// The first completion wins. One that does not come within `timeout` is replaced by `timeoutResponse` (by
/// default the server's 503), and so is a pending one when the server stops; a completion after that, or after
/// the client left, changes nothing.
public final class DeferredResponse: Sendable {
    public static let defaultTimeout = Duration.seconds(10)

    public let timeout: Duration
    private let timeoutResponse: (@Sendable () -> HTTPResponse)?

    private struct State {
        var completed = false
        var build: (@Sendable () -> HTTPResponse)?
        /// The one party told of the completion: the server (resume the connection) or `wait`.
        var notify: (@Sendable () -> Void)?
        var observe: (@Sendable (HTTPResponse) -> Void)?
    }
    /// Inline (not `Locked`, an object and a mutex of their own): one is made per deferred answer.
    private let state = Mutex(State())

    /// - Parameters:
    ///   - timeout: how long the answer may take; then `timeoutResponse` answers instead.
    ///   - timeoutResponse: the answer when none came in time or the server is stopping (by default a 503 in the
    ///     server's own error format).
    public init(timeout: Duration = defaultTimeout, timeoutResponse: (@Sendable () -> HTTPResponse)? = nil) {
        self.timeout = timeout
        self.timeoutResponse = timeoutResponse
    }

    /// Answers with `response`. False when an answer was already given (this one is dropped).
    @discardableResult
    public func complete(_ response: HTTPResponse) -> Bool {
        complete(building: { response })
    }

    /// Answers with the response `build` makes: it runs on the thread that sends the answer (a server worker),
    /// so the completing thread only hands it over. False when an answer was already given.
    @discardableResult
    public func complete(building build: @escaping @Sendable () -> HTTPResponse) -> Bool {
        let (won, notify) = state.withLock { state -> (Bool, (@Sendable () -> Void)?) in
            if state.completed { return (false, nil) }
            state.completed = true
            state.build = build
            defer { state.notify = nil }
            return (true, state.notify)
        }
        notify?()
        return won
    }

    public var isCompleted: Bool { state.withLock { $0.completed } }

    /// `observe` sees the answer when it is built, on the thread that sends it (for metrics and logs).
    public func whenAnswered(_ observe: @escaping @Sendable (HTTPResponse) -> Void) {
        state.withLock { state in
            if let earlier = state.observe {
                state.observe = { answer in
                    earlier(answer)
                    observe(answer)
                }
            } else {
                state.observe = observe
            }
        }
    }

    /// Completes with the timeout answer (`fallback` when none was given). False when already completed.
    @discardableResult
    func expire(fallback: @escaping @Sendable () -> HTTPResponse) -> Bool {
        complete(building: timeoutResponse ?? fallback)
    }

    /// `notify` runs once on completion: at once, on this thread, when already completed. Set once.
    func onCompletion(_ notify: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.completed { return true }
            state.notify = notify
            return false
        }
        if now { notify() }
    }

    /// The answer, built now on this thread, and shown to the observers. Once, after completion.
    func takeResponse() -> HTTPResponse {
        let (build, observe) = state.withLock { state in
            defer {
                state.build = nil
                state.observe = nil
            }
            return (state.build, state.observe)
        }
        let response = build?() ?? HTTPResponse.plainText(status: 500, "500 Internal Server Error: no answer\n")
        observe?(response)
        return response
    }

    /// Waits for the answer, at most `timeout` (then the timeout answer): for callers without a server.
    public func wait() -> HTTPResponse {
        if isCompleted { return takeResponse() }
        let signal = OneShotSignal()
        onCompletion { signal.fire() }
        if !signal.wait(nanoseconds: nanoseconds(timeout)) {
            expire { HTTPResponse.plainText(status: 503, "503 Service Unavailable: no answer in time\n") }
        }
        return takeResponse()
    }
}

extension HTTPResponse {
    /// A response a handler gives later: see ``DeferredResponse``. Its status (0), headers and body are unused.
    public static func deferred(_ later: DeferredResponse) -> HTTPResponse {
        var response = HTTPResponse(status: 0)
        response.deferred = later
        return response
    }

    /// This response or, for a deferred one, its answer once given (waiting for it): for callers without a server.
    public func resolved() -> HTTPResponse {
        deferred?.wait() ?? self
    }
}

/// The connections suspended while their deferred answers are pending. Shared by the workers (suspend, and finish
/// once resumed), the completing threads (resume), a watchdog thread (timeouts) and the stop (answer the rest).
/// libmicrohttpd must not be stopped with a connection still suspended, so every entry is resumed before it is.
///
/// Locks: the registry's lock is never held while calling libmicrohttpd (MHD calls `finished` from its own
/// callbacks); each entry's lock is held around the MHD calls for that connection, so a resume cannot overtake
/// its suspend, and none can follow the stop.
final class Suspensions: Sendable {
    /// One suspended connection.
    final class Entry: Sendable {
        nonisolated(unsafe) let connection: OpaquePointer  // only passed to MHD, under `state`'s lock
        let deferred: DeferredResponse
        let deadline: UInt64

        private struct State {
            var suspended = false
            var resumed = false
            /// The answer came before the connection was suspended: resume right after suspending.
            var resumeWanted = false
            /// Retired by the stop: nothing may call MHD for this connection any more.
            var retired = false
        }
        private let state = Mutex(State())  // inline, as DeferredResponse's

        init(connection: OpaquePointer, deferred: DeferredResponse, deadline: UInt64) {
            self.connection = connection
            self.deferred = deferred
            self.deadline = deadline
        }

        /// Suspends the connection; false when the stop retired it first. In the access handler only.
        fileprivate func suspend() -> Bool {
            state.withLock { state in
                if state.retired { return false }
                MHD_suspend_connection(connection)
                state.suspended = true
                if state.resumeWanted {
                    state.resumed = true
                    MHD_resume_connection(connection)  // MHD resumes it right after this call of the handler
                }
                return true
            }
        }

        /// Resumes the connection once (thread-safe with MHD_USE_ITC: it wakes the connection's worker).
        fileprivate func resume() {
            state.withLock { state in
                if state.resumed || state.retired { return }
                if !state.suspended {
                    state.resumeWanted = true
                    return
                }
                state.resumed = true
                MHD_resume_connection(connection)
            }
        }

        /// For the stop: resumed if it is still suspended, and never touched again.
        fileprivate func retire() {
            state.withLock { state in
                if state.suspended && !state.resumed {
                    state.resumed = true
                    MHD_resume_connection(connection)
                }
                state.retired = true
            }
        }
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// Set when the stop begins: answers deferred from then on are waited for on their worker instead.
        var closed = false
        /// Set once libmicrohttpd is stopped: ends the watchdog.
        var daemonStopped = false
        var watchdogStarted = false
    }
    private let state = Locked(State())
    /// The answer for a deferred response that has no timeout answer of its own.
    private let fallback: @Sendable (_ why: String) -> HTTPResponse

    init(fallback: @escaping @Sendable (_ why: String) -> HTTPResponse) {
        self.fallback = fallback
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Suspends `connection` until `deferred` is completed. Nil when the server is stopping: the caller then waits
    /// for the answer on this thread (bounded by its timeout), since a connection suspended now might outlive MHD.
    /// Called in the access handler, the only place MHD allows suspending.
    func suspend(_ connection: OpaquePointer, until deferred: DeferredResponse) -> Entry? {
        let entry = Entry(
            connection: connection, deferred: deferred,
            deadline: monotonicNanoseconds() &+ nanoseconds(deferred.timeout))
        let (registered, startWatchdog) = state.withLock { state -> (Bool, Bool) in
            if state.closed { return (false, false) }
            state.entries[ObjectIdentifier(entry)] = entry
            defer { state.watchdogStarted = true }
            return (true, !state.watchdogStarted)
        }
        guard registered, entry.suspend() else {
            finished(entry)
            return nil
        }
        if startWatchdog { startWatchdogThread() }
        deferred.onCompletion { entry.resume() }  // possibly at once, here
        return entry
    }

    /// The connection was resumed (its answer is being queued) or closed: forget it.
    func finished(_ entry: Entry) {
        _ = state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(entry)) }
    }

    /// Answers every pending deferred response whose time is up with its timeout answer.
    func expire(now: UInt64) {
        let due = state.withLock { state in
            state.entries.values.filter { $0.deadline <= now }
        }
        for entry in due where !entry.deferred.isCompleted {
            entry.deferred.expire { [fallback, timeout = entry.deferred.timeout] in
                fallback("no answer within \(timeout)")
            }
        }
    }

    /// The stop's part: no more suspensions, every pending answer replaced by its timeout answer, and up to
    /// `waitNanoseconds` for the resumed connections to queue their answers. Afterwards every entry left has been
    /// resumed and retired, so libmicrohttpd may be stopped.
    func close(waitNanoseconds: UInt64) {
        let pending = state.withLock { state in
            state.closed = true
            return Array(state.entries.values)
        }
        for entry in pending {
            entry.deferred.expire { [fallback] in fallback("the server is stopping") }
        }
        let deadline = monotonicNanoseconds() &+ waitNanoseconds
        while count > 0 && monotonicNanoseconds() < deadline { usleep(1_000) }
        // A completion racing with this stop may not have resumed its connection yet: resume it here.
        for entry in state.withLock({ Array($0.entries.values) }) { entry.retire() }
    }

    /// After MHD_stop_daemon.
    func daemonStopped() {
        state.withLock { state in
            state.daemonStopped = true
            state.closed = true
            state.entries.removeAll()
        }
    }

    /// Checks the deadlines every 50 ms while the daemon runs; started at the first suspension (most servers never
    /// defer an answer). It holds only this registry, and ends when the daemon is stopped or the registry released.
    private func startWatchdogThread() {
        let started = startDetachedThread { [weak self] in
            while true {
                var pause = timespec(tv_sec: 0, tv_nsec: 50_000_000)
                var remaining = timespec()
                while nanosleep(&pause, &remaining) != 0 && errno == EINTR { pause = remaining }
                guard let self, !self.state.withLock({ $0.daemonStopped }) else { return }
                self.expire(now: monotonicNanoseconds())
            }
        }
        // No thread: timeouts are then not enforced, but answers still come; let the next suspension try again.
        if !started { state.withLock { $0.watchdogStarted = false } }
    }
}

/// A one-time event a thread can wait for, with a timeout.
private final class OneShotSignal: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var fired = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func fire() {
        pthread_mutex_lock(mutex)
        fired = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// True when fired within `nanoseconds`.
    func wait(nanoseconds: UInt64) -> Bool {
        let deadline = monotonicNanoseconds() &+ nanoseconds
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !fired {
            if !waitOnce(condition, mutex, until: deadline) { return false }
        }
        return true
    }
}

func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    return UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds) / 1_000_000_000)
}
