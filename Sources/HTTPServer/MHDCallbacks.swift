import CMicroHTTPD
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// libmicrohttpd's callbacks. They are plain named, non-isolated functions on purpose: a closure written in
// top-level code would be inferred @MainActor and trap when MHD calls it from a pool thread.

/// MHD's access handler, called several times per request: once when the headers are in (create the context,
/// refuse an oversized Content-Length), once per body chunk (consume it), and once more with no data (answer).
/// Answering on the first call would make MHD close the connection, so normal answers wait for the last call.
func mhdAccessHandler(
    cls: UnsafeMutableRawPointer?,
    connection: OpaquePointer?,
    url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?,
    version: UnsafePointer<CChar>?,
    uploadData: UnsafePointer<CChar>?,
    uploadDataSize: UnsafeMutablePointer<Int>?,
    conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let conCls, let uploadDataSize else { return MHD_Result.NO }
    // Borrowed, never retained (the core outlives the daemon): one object shared by every worker thread, its
    // reference count was a contended atomic twice per callback (perf: swift_retain ~4% of a GET's CPU).
    return Unmanaged<ServerCore>.fromOpaque(cls)._withUnsafeGuaranteedRef { core in
        handleAccess(core: core, connection: connection, url: url, method: method, uploadData: uploadData,
                     uploadDataSize: uploadDataSize, conCls: conCls)
    }
}

private func handleAccess(
    core: ServerCore,
    connection: OpaquePointer,
    url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?,
    uploadData: UnsafePointer<CChar>?,
    uploadDataSize: UnsafeMutablePointer<Int>,
    conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>
) -> MHD_Result {
    guard let stored = conCls.pointee else {
        return beginRequest(core: core, connection: connection, url: url, method: method, conCls: conCls)
    }
    let context = Unmanaged<RequestContext>.fromOpaque(stored).takeUnretainedValue()

    let chunkSize = uploadDataSize.pointee
    if chunkSize > 0 {
        uploadDataSize.pointee = 0
        return receiveChunk(core: core, context: context, data: uploadData, count: chunkSize)
    }
    if context.responded { return MHD_Result.YES }
    if let suspension = context.suspension {  // resumed: the deferred answer is in
        context.suspension = nil
        core.suspensions.finished(suspension)
        let answer = validated(suspension.deferred.takeResponse(), core)
        return queue(answer, core: core, context: context, connection: connection)
    }

    if context.bodyTooLarge {
        let refusal = core.errorResponder(413, bodyTooLargeDetail(core))
        return queue(refusal, core: core, context: context, connection: connection)
    }
    let body = context.body
    context.body = []  // the request owns the only reference: no copy
    let headerFields = context.headerFields
    context.headerFields = HeaderFields()
    let request = HTTPRequest(
        method: context.method,
        path: context.path,
        query: connectionValues(connection, kind: .GET_ARGUMENT_KIND),
        headerFields: headerFields,
        body: body,
        requestID: context.requestID,
        startNanoseconds: context.startNanoseconds)
    var response = core.handler(request)
    if let later = response.deferred {
        if !later.isCompleted, let suspension = core.suspensions.suspend(connection, until: later) {
            context.suspension = suspension  // answered when MHD calls again, once resumed
            return MHD_Result.YES
        }
        response = later.wait()  // already answered, or the server is stopping
    }
    return queue(validated(response, core), core: core, context: context, connection: connection)
}

/// The handler's response, or a 500 when its status cannot be a final answer (1xx, or beyond 599: not HTTP).
private func validated(_ response: consuming HTTPResponse, _ core: ServerCore) -> HTTPResponse {
    if (200...599).contains(response.status) { return response }
    return core.errorResponder(500, "the handler answered with invalid status \(response.status)")
}

private func beginRequest(
    core: ServerCore,
    connection: OpaquePointer,
    url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?,
    conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>
) -> MHD_Result {
    let (slot, sequence) = core.state.requestBegan()
    if core.state.isDraining { core.state.requestBeganWhileDraining(onConnection: mhd_shim_connection_fd(connection)) }
    let context = RequestContext(
        startNanoseconds: monotonicNanoseconds(),
        slot: slot,
        method: method.map(methodName) ?? "",
        path: url.map { String(cString: $0) } ?? "")
    conCls.pointee = Unmanaged.passRetained(context).toOpaque()  // released in mhdRequestCompleted

    // One pass over the headers (they are all in by now): the request's fields, its id and its Content-Length.
    // The fields are noted as MHD's (pointer, count) pairs, valid during this call, and packed in one copy after.
    var scan = HeaderScan()
    let count = Int(MHD_get_connection_values(connection, .HEADER_KIND, nil, nil))
    if count > 0 {
        withUnsafeTemporaryAllocation(of: (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer).self,
                                      capacity: count) { fields in
            scan.fields = fields
            withUnsafeMutablePointer(to: &scan) { pointer in
                _ = MHD_get_connection_values_n(connection, .HEADER_KIND, scanHeader, UnsafeMutableRawPointer(pointer))
            }
            context.headerFields = HeaderFields(
                packing: UnsafeMutableBufferPointer(rebasing: fields[..<scan.fieldCount]), byteCount: scan.byteCount)
            scan.fields = UnsafeMutableBufferPointer(start: nil, count: 0)
        }
    }
    context.requestID = core.requestID(clientValue: scan.requestID, slot: slot, sequence: sequence)

    guard let lengthText = scan.contentLength else { return MHD_Result.YES }
    if scan.contentLengthConflict {
        // A framing error: the body's end is ambiguous, so answer and let MHD close the connection.
        context.bodyTooLarge = true  // discard whatever body MHD still passes
        let refusal = core.errorResponder(400, "The request has several Content-Length headers with different values.")
        return queue(refusal, core: core, context: context, connection: connection)
    }
    // MHD has already rejected a malformed Content-Length with 400; a value too big for Int is certainly too large.
    let declared = Int(lengthText) ?? Int.max
    if declared > core.configuration.maxBodyBytes {
        // Refusing before the body is read (and before any 100 Continue) is the one deliberate early answer;
        // MHD closes this connection afterwards, which is right since the body will not be read.
        context.bodyTooLarge = true  // should MHD still pass body chunks, they are discarded
        let refusal = core.errorResponder(413, bodyTooLargeDetail(core))
        return queue(refusal, core: core, context: context, connection: connection)
    }
    // Reserve what was declared only up to a bound: a client can declare 64 MB and send nothing, and 1000 such
    // connections would otherwise reserve 64 GB of address space. Larger bodies grow as they arrive (receiveChunk).
    context.body.reserveCapacity(min(declared, 1 << 20))
    context.declaredBodyBytes = declared
    return MHD_Result.YES
}

/// The method as a String; the common ones are literals (no parsing or copying of the C string).
private func methodName(_ method: UnsafePointer<CChar>) -> String {
    if strcmp(method, "GET") == 0 { return "GET" }
    if strcmp(method, "POST") == 0 { return "POST" }
    if strcmp(method, "HEAD") == 0 { return "HEAD" }
    return String(cString: method)
}

/// What one pass over the request headers collects.
private struct HeaderScan {
    /// Room for every field MHD counted (on the stack), the first `fieldCount` noted, `byteCount` to pack them.
    var fields = UnsafeMutableBufferPointer<(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)>(
        start: nil, count: 0)
    var fieldCount = 0
    var byteCount = 0
    var requestID: String?
    var contentLength: String?
    /// Content-Length sent more than once with different values (RFC 9112 6.3: a framing error that must be
    /// refused, since a proxy reading the other value would split the stream differently); MHD uses the first.
    var contentLengthConflict = false
}

private func scanHeader(
    cls: UnsafeMutableRawPointer?, kind: MHD_ValueKind,
    key: UnsafePointer<CChar>?, keySize: Int, value: UnsafePointer<CChar>?, valueSize: Int
) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let scan = cls.assumingMemoryBound(to: HeaderScan.self)
    // Sizes from MHD: no strlen. Kept as bytes; only the two fields the server reads itself become Strings.
    let valueBytes = UnsafeRawBufferPointer(start: value, count: value == nil ? 0 : valueSize)
    if keySize == 12 && strcasecmp(key, "X-Request-Id") == 0 {
        if scan.pointee.requestID == nil { scan.pointee.requestID = String(decoding: valueBytes, as: UTF8.self) }
    } else if keySize == 14 && strcasecmp(key, "Content-Length") == 0 {
        let text = String(decoding: valueBytes, as: UTF8.self)
        if let first = scan.pointee.contentLength {
            if first != text { scan.pointee.contentLengthConflict = true }
        } else {
            scan.pointee.contentLength = text
        }
    }
    let index = scan.pointee.fieldCount
    if index < scan.pointee.fields.count {  // MHD counted them all just before; never more, but stay in bounds
        scan.pointee.fields[index] = (UnsafeRawBufferPointer(start: key, count: keySize), valueBytes)
        scan.pointee.fieldCount = index + 1
        scan.pointee.byteCount += 8 + keySize + valueBytes.count
    }
    return MHD_Result.YES
}

private func receiveChunk(
    core: ServerCore, context: RequestContext, data: UnsafePointer<CChar>?, count: Int
) -> MHD_Result {
    let limit = core.configuration.maxBodyBytes
    if !context.bodyTooLarge {
        if context.body.count + count <= limit {
            if let data {
                let needed = context.body.count + count
                if needed > context.body.capacity, context.declaredBodyBytes > needed {
                    // Straight to the declared size, but at most 8x what has arrived: one copy of what is there
                    // instead of one per doubling (1 + 2 + 4 MB for a 5 MB body), and still no more address space
                    // than a client has earned by sending.
                    context.body.reserveCapacity(min(context.declaredBodyBytes, 8 * needed))
                }
                context.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: count))
            }
            return MHD_Result.YES
        }
        // A chunked (or lying) body went past the limit: MHD cannot answer mid-body, so discard the rest and
        // answer 413 at the end. Free the partial body now.
        context.bodyTooLarge = true
        context.discardedBytes = context.body.count
        context.body = []
    }
    context.discardedBytes += count
    // A client that keeps streaming far past the limit is cut off instead of being read forever.
    return context.discardedBytes > 2 * limit + (1 << 20) ? MHD_Result.NO : MHD_Result.YES
}

private func bodyTooLargeDetail(_ core: ServerCore) -> String {
    "the request body exceeds the limit of \(core.configuration.maxBodyBytes) bytes"
}

/// Hands `response` to MHD. The body is passed without copying: MHD keeps a retained box holding the array and
/// releases it when it is done sending.
private func queue(
    _ response: HTTPResponse, core: ServerCore, context: RequestContext, connection: OpaquePointer
) -> MHD_Result {
    context.responded = true
    context.status = response.status
    // Length first: unequal small strings take the standard library's slow compare (~30 instructions).
    let isHead = context.method.utf8.count == 4 && context.method == "HEAD"
    context.responseBytes = isHead ? 0 : response.body.count  // body bytes actually sent
    guard let mhdResponse = makeMHDResponse(body: response.body, owner: context) else { return MHD_Result.NO }
    defer { MHD_destroy_response(mhdResponse) }

    var hasContentType = false
    for (name, value) in response.headers {
        // By length first (O(1)), and the usual spelling by `==` (one compare for small strings): two calls of the
        // case-insensitive compare per header were ~200 instructions a response.
        switch name.utf8.count {
        case 14 where asciiCaseInsensitiveEqual(name, "Content-Length"): continue  // MHD writes the real one
        case 12 where !hasContentType: hasContentType = name == "Content-Type" || asciiCaseInsensitiveEqual(name, "Content-Type")
        default: break
        }
        addHeader(mhdResponse, name, value)
    }
    if !hasContentType && !response.body.isEmpty {
        _ = MHD_add_response_header(mhdResponse, cString("Content-Type"), cString("application/octet-stream"))
    }
    context.requestID.withCString { _ = MHD_add_response_header(mhdResponse, cString("X-Request-Id"), $0) }
    if core.state.isDraining {
        _ = MHD_add_response_header(mhdResponse, cString("Connection"), cString("close"))
    }
    return MHD_queue_response(connection, UInt32(response.status), mhdResponse)
}

/// Adds a header; MHD refuses (and we ignore) one containing CR/LF. Explicit `withCString`: the implicit
/// String-to-pointer conversion allocates a copy for every small (<= 15 byte) string, i.e. most header names.
private func addHeader(_ response: OpaquePointer, _ name: String, _ value: String) {
    name.withCString { name in
        value.withCString { value in _ = MHD_add_response_header(response, name, value) }
    }
}

/// A NUL-terminated C string for a literal, without the per-call copy a `String` argument would make.
@inline(__always)
private func cString(_ literal: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(literal.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// An MHD response over `body` without copying it: the request's context keeps the array (immutable from here on)
/// and MHD holds a reference to the context until it is done sending. No allocation of our own per response.
private func makeMHDResponse(body: [UInt8], owner context: RequestContext) -> OpaquePointer? {
    if body.isEmpty {
        return MHD_create_response_from_buffer(0, nil, .RESPMEM_PERSISTENT)
    }
    context.responseBody = body
    // A native Swift array's storage does not move while the array is alive and unmutated; the context does not
    // touch `responseBody` again, and it lives until MHD calls releaseResponseBody.
    let base = context.responseBody.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
    let retained = Unmanaged.passRetained(context).toOpaque()
    guard let response = MHD_create_response_from_buffer_with_free_callback_cls(
        body.count, base, releaseResponseBody, retained)
    else {
        Unmanaged<RequestContext>.fromOpaque(retained).release()
        return nil
    }
    return response
}

private func releaseResponseBody(_ cls: UnsafeMutableRawPointer?) {
    guard let cls else { return }
    Unmanaged<RequestContext>.fromOpaque(cls).release()
}

/// The (key, value) pairs of one kind (headers, query arguments), in order. Counted first (a nil iterator only
/// counts) so a request without any costs no allocation and the rest one exactly sized array.
private func connectionValues(_ connection: OpaquePointer, kind: MHD_ValueKind) -> [(name: String, value: String)] {
    let count = Int(MHD_get_connection_values(connection, kind, nil, nil))
    if count <= 0 { return [] }
    var pairs: [(name: String, value: String)] = []
    pairs.reserveCapacity(count)
    withUnsafeMutablePointer(to: &pairs) { pointer in
        _ = MHD_get_connection_values(connection, kind, collectPair, UnsafeMutableRawPointer(pointer))
    }
    return pairs
}

private func collectPair(
    cls: UnsafeMutableRawPointer?, kind: MHD_ValueKind, key: UnsafePointer<CChar>?, value: UnsafePointer<CChar>?
) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let pairs = cls.assumingMemoryBound(to: [(name: String, value: String)].self)
    pairs.pointee.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return MHD_Result.YES
}

/// Called once per request that reached the access handler, however it ended (answered, aborted, timed out):
/// logs it, releases its context and counts it out of flight.
func mhdRequestCompleted(
    cls: UnsafeMutableRawPointer?,
    connection: OpaquePointer?,
    conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    termination: MHD_RequestTerminationCode
) {
    guard let cls, let conCls, let stored = conCls.pointee else { return }
    conCls.pointee = nil
    let context = Unmanaged<RequestContext>.fromOpaque(stored).takeRetainedValue()
    Unmanaged<ServerCore>.fromOpaque(cls)._withUnsafeGuaranteedRef { core in  // borrowed: see mhdAccessHandler
        // Closed after it was resumed, before its answer was queued (the client left while it waited).
        if let suspension = context.suspension { core.suspensions.finished(suspension) }
        core.logAccess(context, termination: termination)
        core.state.requestEnded(slot: context.slot)
    }
}

/// libmicrohttpd's own messages (connection limit reached, malformed or oversized requests it refused itself, ...)
/// go to the server's logger instead of raw stderr.
func mhdLog(cls: UnsafeMutableRawPointer?, format: UnsafePointer<CChar>?, arguments: CVaListPointer?) {
    guard let cls, let format, let arguments else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    var buffer = [CChar](repeating: 0, count: 512)
    let written = max(0, min(Int(vsnprintf(&buffer, buffer.count, format, arguments)), buffer.count - 1))
    var message = String(decoding: buffer[..<written].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while message.last?.isNewline == true { message.removeLast() }
    core.logger.notice("libmicrohttpd: \(message)")
}
