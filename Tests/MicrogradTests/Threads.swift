#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Carries a closure across `pthread_create` (C function pointers cannot capture context).
private final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Where the thread leaves its result; read only after `pthread_join`, which orders the accesses.
private final class ResultSlot<R>: @unchecked Sendable {
    var value: R?
}

/// Runs `body` on a new thread whose stack is `stackBytes`, waits for it, and returns its result.
/// The thread's `Tape.current` (if it made one) is released when the thread exits.
func onNewThread<R>(stackBytes: Int, _ body: @escaping () -> R) -> R {
    var attributes = pthread_attr_t()
    precondition(pthread_attr_init(&attributes) == 0)
    defer { pthread_attr_destroy(&attributes) }
    precondition(pthread_attr_setstacksize(&attributes, stackBytes) == 0, "stack size \(stackBytes) refused")
    let slot = ResultSlot<R>()
    let context = Unmanaged.passRetained(ThreadBody { slot.value = body() }).toOpaque()
    #if canImport(Glibc)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let status = pthread_create(&thread, &attributes, { context in
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    precondition(status == 0, "pthread_create failed: \(status)")
    #if canImport(Glibc)
    pthread_join(thread, nil)
    #else
    pthread_join(thread!, nil)
    #endif
    return slot.value!
}
