/// The representations an evaluated graph can be served in.
public enum GraphFormat: String, Sendable, CaseIterable {
    case json, dot, jgf, svg

    public var contentType: String {
        switch self {
        case .json: "application/json"
        case .dot: "text/vnd.graphviz; charset=utf-8"
        case .jgf: "application/vnd.jgf+json"
        case .svg: "image/svg+xml"
        }
    }

    /// Media types (lowercase, no parameters) that select this format in `Accept`.
    var mediaTypes: [String] {
        switch self {
        case .json: ["application/json"]
        case .dot: ["text/vnd.graphviz"]
        case .jgf: ["application/vnd.jgf+json"]
        case .svg: ["image/svg+xml"]
        }
    }

    /// Chooses a format from `?format=` (wins when present) or an `Accept` header (RFC 9110 q-values;
    /// ties go to the order listed; `*/*` and `application/*` mean the default). Nil: nothing acceptable.
    public static func negotiate(formatParameter: String?, accept: String?, default fallback: GraphFormat, allowed: [GraphFormat])
        -> GraphFormat?
    {
        if let formatParameter {
            guard let format = GraphFormat(rawValue: formatParameter.lowercased()), allowed.contains(format) else { return nil }
            return format
        }
        guard let accept, !accept.allSatisfy({ $0 == " " }) else { return fallback }
        var best: (format: GraphFormat, quality: Double)?
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            guard let first = parts.first else { continue }
            let mediaType = first.trimmingSpaces().lowercased()
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].trimmingSpaces().lowercased() == "q",
                   let q = Double(pair[1].trimmingSpaces()), q >= 0, q <= 1 { quality = q }
            }
            guard quality > 0 else { continue }
            let candidate: GraphFormat?
            switch mediaType {
            case "*/*", "application/*": candidate = allowed.contains(fallback) ? fallback : allowed.first
            case "text/*": candidate = allowed.contains(.dot) ? .dot : nil
            case "image/*": candidate = allowed.contains(.svg) ? .svg : nil
            default: candidate = allowed.first { $0.mediaTypes.contains(mediaType) }
            }
            if let candidate, quality > (best?.quality ?? 0) { best = (candidate, quality) }
        }
        return best?.format
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
