/// A growable buffer of plain values for the decoder's per-node and per-id columns.
///
/// `Array` checks uniqueness on every element write (copy-on-write) and bounds on every access; on the
/// decode path those checks are a measurable share of the time. A Column is owned by one reader, never copied while
/// in use, and freed by `release()`. Indices are trusted: callers only use indices they appended.
struct Column<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    func release() { base.deallocate() }

    /// Empties the column, keeping its memory (for reuse by the next request on this thread).
    mutating func removeAll() { count = 0 }

    @inline(__always)
    mutating func append(_ e: Element) {
        if count == capacity { grow() }
        base[count] = e
        count += 1
    }

    private mutating func grow() {
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity *= 2
    }

    @inline(__always)
    subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    /// The index of the first element satisfying `predicate`, or nil.
    func firstIndex(where predicate: (Element) -> Bool) -> Int? {
        for i in 0..<count where predicate(base[i]) { return i }
        return nil
    }
}
