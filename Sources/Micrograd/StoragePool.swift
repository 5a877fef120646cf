#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Recycles tape headers (``TapeStorage``, a few dozen bytes) instead of freeing them.
///
/// A ``Value`` does not keep its tape alive (that is what makes it free of reference counting), so a value can
/// outlive its tape by mistake, for instance `let v = Value(1, on: Tape())`. Because a released tape's header is
/// emptied (count 0) and kept, such a value traps with "index out of range" instead of reading freed memory; if
/// a new tape reuses the header, the stale value reads that tape's nodes, always within bounds. The pool is as
/// large as the most tapes ever alive at once; node buffers themselves are freed.
final class StoragePool: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var free: [UnsafeMutablePointer<TapeStorage>] = []

    init() { pthread_mutex_init(&mutex, nil) }

    static let shared = StoragePool()

    /// An empty header, recycled or new.
    func take() -> UnsafeMutablePointer<TapeStorage> {
        pthread_mutex_lock(&mutex)
        let recycled = free.popLast()
        pthread_mutex_unlock(&mutex)
        if let recycled { return recycled }
        let storage = UnsafeMutablePointer<TapeStorage>.allocate(capacity: 1)
        storage.initialize(to: TapeStorage(nodes: nil, count: 0, capacity: 0, constants: [], labels: [:],
                                           highestLabelled: -1, owner: nil))
        return storage
    }

    /// Takes back a header whose node buffer was freed and whose count is 0.
    func give(_ storage: UnsafeMutablePointer<TapeStorage>) {
        pthread_mutex_lock(&mutex)
        free.append(storage)
        pthread_mutex_unlock(&mutex)
    }
}
