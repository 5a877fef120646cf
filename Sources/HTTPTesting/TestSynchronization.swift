// Small helpers the socket-level tests share: threads for blocking I/O, a locked value, bounded polling.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(i)` for i in 0..<count, each on its own thread (blocking socket I/O must not sit on the
/// cooperative pool), and waits for all of them.
public func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

/// A value shared between test threads.
public final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
    public var current: Value { lock.withLock { value } }
}

/// Polls `condition` every millisecond until it holds; false after `seconds` (a hang guard, not a timing window).
public func eventually(seconds: Double = 60, _ condition: () -> Bool) -> Bool {
    let deadline = DispatchTime.now() + seconds
    while !condition() {
        if DispatchTime.now() > deadline { return false }
        usleep(1_000)
    }
    return true
}

/// True when a connection to `port` is refused (the server no longer listens there).
public func isRefused(_ port: Int) -> Bool {
    (try? TestConnection(port: port, timeoutSeconds: 5)) == nil
}
