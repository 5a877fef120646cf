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
