import Micrograd

/// The answer to a batch: `{"graph": gid, "rows": n, "output": id, "value": [...], "gradients": {id: [...] or sum}}`
/// (`graph` omitted for a graph that is not registered). Numbers as everywhere: shortest round-trip, non-finite
/// as "NaN", "Infinity", "-Infinity".
public enum BatchEncoder {
    public static func json(graphID: String?, outputID: String, gradientIDs: [String], result: BatchResult) -> [UInt8] {
        json(graphID: graphID, outputID: outputID, gradientIDs: gradientIDs, result: result, pool: .shared)
    }

    /// `pool`: the threads long columns are written by (the bytes are the same with any pool, or none).
    static func json(graphID: String?, outputID: String, gradientIDs: [String], result: BatchResult,
                     pool: WorkerPool?) -> [UInt8] {
        // Written in place at an upper bound of its size: a number and its comma take at most `maxLength` + 1
        // bytes (and the last one `room` to be written), a string at most 6 bytes per byte (escapes) and its
        // quotes, punctuation and member names under 64; and a column written in parts needs room for `maxParts`
        // more numbers and their `room`.
        let numbers = result.rows + gradientIDs.count * result.gradientLength
        var stringBytes = (graphID?.utf8.count ?? 0) + outputID.utf8.count
        for id in gradientIDs { stringBytes += id.utf8.count + 8 }
        let columns = 1 + gradientIDs.count
        let bound = 64 + 6 * stringBytes + numbers * (ShortestDecimal.maxLength + 1) + gradientIDs.count * 8
            + columns * ByteWriter.maxParts * (ShortestDecimal.maxLength + 1 + ShortestDecimal.room) + ShortestDecimal.room
        return ByteWriter.bytes(bound: bound) {
            write(graphID: graphID, outputID: outputID, gradientIDs: gradientIDs, result: result, pool: pool, to: &$0)
        }
    }

    static func write(graphID: String?, outputID: String, gradientIDs: [String], result: BatchResult, pool: WorkerPool?,
                      to w: inout ByteWriter) {
        w.ascii("{")
        if let graphID {
            w.ascii("\"graph\":")
            w.jsonString(graphID)
            w.ascii(",")
        }
        w.ascii("\"rows\":")
        w.int(result.rows)
        w.ascii(",\"output\":")
        w.jsonString(outputID)
        w.ascii(",\"value\":")
        result.storage.withUnsafeBufferPointer { storage in
            w.jsonNumberArray(UnsafeBufferPointer(rebasing: storage[0..<result.rows]), pool: pool)
            w.ascii(",\"gradients\":{")
            let length = result.gradientLength
            for (j, id) in gradientIDs.enumerated() {
                if j > 0 { w.byte(UInt8(ascii: ",")) }
                w.jsonString(id)
                w.byte(UInt8(ascii: ":"))
                let start = result.rows + j * length
                if result.reduction == .sum {
                    w.jsonNumber(storage[start])
                } else {
                    w.jsonNumberArray(UnsafeBufferPointer(rebasing: storage[start..<start + length]), pool: pool)
                }
            }
        }
        w.ascii("}}")
    }
}
