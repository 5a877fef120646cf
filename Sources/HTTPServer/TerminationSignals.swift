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

    private static func terminationSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }
}
