import Micrograd

/// The answer to a batch: `{"graph": gid, "rows": n, "output": id, "value": [...], "gradients": {id: [...] or sum}}`
/// (`graph` omitted for a graph that is not registered). Numbers as everywhere: shortest round-trip, non-finite
/// as "NaN", "Infinity", "-Infinity".
public enum BatchEncoder {
    public static func json(graphID: String?, outputID: String, gradientIDs: [String], result: BatchResult) -> [UInt8] {
        // ~24 bytes per number is the common worst case (-1.2345678901234567e-100,); the writer grows past it.
        var w = ByteWriter(capacity: 64 + (result.rows + gradientIDs.count * result.gradientLength) * 24)
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
        w.ascii(",\"value\":[")
        result.storage.withUnsafeBufferPointer { storage in
            for r in 0..<result.rows {
                if r > 0 { w.byte(UInt8(ascii: ",")) }
                w.jsonNumber(storage[r])
            }
            w.ascii("],\"gradients\":{")
            let length = result.gradientLength
            for (j, id) in gradientIDs.enumerated() {
                if j > 0 { w.byte(UInt8(ascii: ",")) }
                w.jsonString(id)
                w.byte(UInt8(ascii: ":"))
                let start = result.rows + j * length
                if result.reduction == .sum {
                    w.jsonNumber(storage[start])
                } else {
                    w.byte(UInt8(ascii: "["))
                    for r in 0..<length {
                        if r > 0 { w.byte(UInt8(ascii: ",")) }
                        w.jsonNumber(storage[start + r])
                    }
                    w.byte(UInt8(ascii: "]"))
                }
            }
        }
        w.ascii("}}")
        return w.take()
    }
}
