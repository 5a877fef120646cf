#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGTERM/SIGINT handled synchronously: block them in every thread, then one thread waits in `sigwait`.
/// No handler runs in signal context and nothing polls.
public enum TerminationSignals {
    /// Blocks SIGTERM and SIGINT for the calling thread and every thread it creates later.
    /// Call it first thing in `main`, before any thread exists (threads inherit the mask when created).
    public static func block() {
        var set = terminationSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Sleeps until SIGTERM or SIGINT arrives and returns its number (-1 if `sigwait` itself failed, which only
    /// an invalid signal set can cause). Requires `block()` to have run first.
    public static func wait() -> Int32 {
        var set = terminationSet()
        var signal: Int32 = 0
        return sigwait(&set, &signal) == 0 ? signal : -1
    }

    /// Like `wait()`, but gives up after `timeout` and returns nil. (Where `sigtimedwait` is missing, as on
    /// Darwin, it only sleeps for `timeout` and returns nil: a signal meanwhile stays pending.)
    public static func wait(timeout: Duration) -> Int32? {
        let (seconds, attoseconds) = timeout.components
        #if os(Linux)
        var set = terminationSet()
        var remaining = timespec(tv_sec: Int(max(0, seconds)), tv_nsec: Int(max(0, attoseconds) / 1_000_000_000))
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let signal = sigtimedwait(&set, nil, &remaining)
            if signal > 0 { return signal }
            guard errno == EINTR else { return nil }  // EAGAIN: the time is up
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return nil }
            remaining = timespec(tv_sec: Int(left.components.seconds), tv_nsec: Int(left.components.attoseconds / 1_000_000_000))
        }
        #else
        var pause = timespec(tv_sec: Int(max(0, seconds)), tv_nsec: Int(max(0, attoseconds) / 1_000_000_000))
        while nanosleep(&pause, &pause) != 0 && errno == EINTR {}
        return nil
        #endif
    }

    private static func terminationSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }
}
