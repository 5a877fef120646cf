import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small number for the calling thread, 0, 1, 2, ... in the order threads first ask, fixed for the thread's
/// life: for state split into per-thread slots (counters, buffers) so each thread writes memory no other thread
/// writes. Slot tables are taken modulo their size, so two threads may share a slot; their users stay correct
/// then (atomics, locks), only contended.
@inline(__always)
public func currentThreadIndex() -> Int {
    if let stored = pthread_getspecific(ThreadIndexKey.key) { return Int(bitPattern: stored) &- 1 }
    return ThreadIndexKey.assign()
}

private enum ThreadIndexKey {
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()
    static let next = Atomic<Int>(0)

    static func assign() -> Int {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        // Stored plus one: a thread's value starts as nil (0).
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: index &+ 1))
        return index
    }
}
