import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counters shared by libmicrohttpd's worker threads and the thread that stops the server:
/// requests begun (their per-slot numbers make cheap request ids) and ended (begun - ended = in flight, to know
/// when draining is done), and the draining flag. Each thread counts in its own slot (one cache line), so a request
/// writes no memory another worker writes; the sums are taken only to answer `requestsInFlight` and while draining.
/// One shared pair of atomics was two contended read-modify-writes per request on a line both workers wrote.
final class ServerState: @unchecked Sendable {
    /// Per-thread slots, each `slotStride` counters (128 bytes, a cache-line pair) apart: [begun, ended, unused...].
    private static let slotCount = 32
    private static let slotStride = 16
    private let counters: UnsafeMutablePointer<Atomic<UInt64>>
    private let draining = Atomic<Bool>(false)
    /// Only for `waitUntilIdle` to sleep on; requests take it only once draining has begun.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        let count = Self.slotCount * Self.slotStride
        counters = UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: 128)
            .bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for index in 0..<count { (counters + index).initialize(to: Atomic(0)) }
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(idle, nil)
    }

    deinit {
        counters.deinitialize(count: Self.slotCount * Self.slotStride)
        counters.deallocate()
        pthread_cond_destroy(idle)
        pthread_mutex_destroy(mutex)
        idle.deallocate()
        mutex.deallocate()
    }

    /// Counts a request as in flight; returns the calling thread's slot and the request's number in that slot
    /// (1, 2, ...): the pair is unique in this server and the number stays as short as the thread's own count.
    func requestBegan() -> (slot: UInt32, count: UInt64) {
        let slot = currentThreadIndex() % Self.slotCount
        let count = counters[slot * Self.slotStride].wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
        return (UInt32(truncatingIfNeeded: slot), count)
    }

    /// Counts a request out of flight in `slot`, the one its `requestBegan` returned: no second thread lookup
    /// (~65 instructions). Usually it ends on the thread it began on; where not, only the sums count.
    func requestEnded(slot: UInt32) {
        counters[Int(slot) * Self.slotStride + 1].wrappingAdd(1, ordering: .sequentiallyConsistent)
        // Sequentially consistent on both sides: either this sees `draining`, or the waiter (which sets it before
        // checking) sees this request ended.
        if draining.load(ordering: .sequentiallyConsistent) && requestsInFlight == 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(idle)
            pthread_mutex_unlock(mutex)
        }
    }

    private func sum(_ offset: Int) -> UInt64 {
        var total: UInt64 = 0
        for slot in 0..<Self.slotCount {
            total &+= counters[slot * Self.slotStride + offset].load(ordering: .sequentiallyConsistent)
        }
        return total
    }

    /// Connections taken from the listening socket's backlog at shutdown (by descriptor) whose first request has
    /// not begun: the stop waits for them too (see `HTTPServer.shutdown`). Touched only while draining.
    private let adopted = Mutex<Set<Int32>>([])

    func adoptionStarted(_ fd: Int32) { adopted.withLock { _ = $0.insert(fd) } }
    func adoptionFailed(_ fd: Int32) { adopted.withLock { _ = $0.remove(fd) } }
    /// A request began on `fd` while draining: it is now counted in flight, no longer as adopted.
    func requestBeganWhileDraining(onConnection fd: Int32) { adopted.withLock { _ = $0.remove(fd) } }
    var adoptedWaiting: Bool { adopted.withLock { !$0.isEmpty } }

    var isDraining: Bool {
        draining.load(ordering: .relaxed)
    }

    var requestsInFlight: Int {
        let endedSoFar = sum(1)  // first: begun, read after, never trails ended
        return Int(truncatingIfNeeded: sum(0) &- endedSoFar)
    }

    func beginDraining() {
        draining.store(true, ordering: .sequentiallyConsistent)
    }

    /// Blocks until no request is in flight or `timeoutNanoseconds` passed; true when idle.
    func waitUntilIdle(timeoutNanoseconds: UInt64) -> Bool {
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while requestsInFlight > 0 {
            if !waitOnce(idle, mutex, until: deadline) { return false }
        }
        return true
    }
}

/// Waits on `condition` (its `mutex` held) until signalled or the monotonic `deadline`; false once the deadline
/// passed. Callers re-check their predicate in a loop. Condition variables time out on the wall clock, so the wait
/// is cut into slices of at most 100 ms and the monotonic deadline re-checked after each.
func waitOnce(_ condition: UnsafeMutablePointer<pthread_cond_t>, _ mutex: UnsafeMutablePointer<pthread_mutex_t>,
              until deadline: UInt64) -> Bool {
    let now = monotonicNanoseconds()
    if now >= deadline { return false }
    let slice = min(deadline - now, 100_000_000)
    var wake = timespec()
    clock_gettime(CLOCK_REALTIME, &wake)
    let nanos = UInt64(wake.tv_nsec) + slice
    wake.tv_sec += Int(nanos / 1_000_000_000)
    wake.tv_nsec = Int(nanos % 1_000_000_000)
    pthread_cond_timedwait(condition, mutex, &wake)
    return true
}

/// Nanoseconds on the monotonic clock. Public for handlers that time themselves: `ContinuousClock.now` and the
/// `Duration` arithmetic around it cost ~400 instructions a request.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// A value behind a mutex, for state touched rarely from several threads (start, stop, port).
final class Locked<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
