#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The pthread key holding each thread's tape storage. Its destructor releases the owning ``Tape`` (which
/// frees the storage) when the thread exits.
@usableFromInline
let currentTapeKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { pointer in
        guard let pointer else { return }
        pointer.assumingMemoryBound(to: TapeStorage.self).pointee.owner.unsafelyUnwrapped.release()
    }
    precondition(status == 0, "pthread_key_create failed: \(status)")
    return key
}()

extension TapeHandle {
    /// This thread's tape, without touching reference counts: one `pthread_getspecific`.
    @inlinable @inline(__always)
    static var current: TapeHandle {
        if let pointer = pthread_getspecific(currentTapeKey) {
            return TapeHandle(pointer.assumingMemoryBound(to: TapeStorage.self))
        }
        return makeCurrent()
    }

    @usableFromInline @inline(never)
    static func makeCurrent() -> TapeHandle {
        let tape = Tape()
        _ = Unmanaged.passRetained(tape)  // owned by the thread from now on; released by the key's destructor
        let status = pthread_setspecific(currentTapeKey, tape.handle.storage)
        precondition(status == 0, "pthread_setspecific failed: \(status)")
        return tape.handle
    }
}

extension Tape {
    /// This thread's tape, created on first use, where `Value(2.0)` puts its leaves.
    ///
    /// It lives as long as its thread (the main thread's for the whole process), so a ``Value`` on it can
    /// never dangle. Values must not cross threads; in `async` code, which may resume on another thread after
    /// an `await`, make values on a tape of your own (`Value(x, on: tape)`) instead.
    public static var current: Tape { TapeHandle.current.tape }
}

extension Tape {
    /// Nodes of capacity this thread's tape keeps after ``withCurrentEmptied(_:)``: enough for the common graph
    /// to reuse its memory, while one huge graph does not pin its memory in a long-lived thread.
    public static let retainedCapacity = 1 << 18

    /// Runs `body` on this thread's tape, emptied first (its capacity kept); afterwards a tape grown past
    /// ``retainedCapacity`` gives its memory back. For servers and tools that run one graph after another.
    public static func withCurrentEmptied<R, E: Error>(_ body: (Tape) throws(E) -> R) throws(E) -> R {
        let tape = current
        tape.removeAll(keepingCapacity: true)
        defer { if tape.capacity > retainedCapacity { tape.removeAll(keepingCapacity: false) } }
        return try body(tape)
    }
}
