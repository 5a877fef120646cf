extension Array {
    /// `count` copies of `value`, like `Array(repeating:count:)` but allocated through `reserveCapacity`, which is
    /// specialised in this module. `Array(repeating:count:)` and `Array(unsafeUninitializedCapacity:)` allocate in
    /// a non-inlinable, unspecialised standard-library function that looks the storage class up at run time:
    /// ~800 instructions an array, six arrays of every small `POST /evaluate`.
    @inline(__always)
    static func filled(with value: Element, count: Int) -> [Element] {
        var array: [Element] = []
        array.reserveCapacity(count)
        array.append(contentsOf: repeatElement(value, count: count))
        return array
    }
}
