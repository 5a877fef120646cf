import HTTPServer

/// The browser page (`/`, its script and style), served from the binary with a strict CSP and ETags.
enum PageRoutes {
    /// The page loads only its own script and style, and talks only to this origin.
    static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

    static func register(in router: inout Router) {
        for asset in PageAssets.all {
            let body = Array(asset.body.utf8)
            let handler: Router.Handler = { request in respond(to: request, asset: asset, body: body) }
            router.get(asset.path, handler)
            if asset.path == "/" { router.get("/index.html", handler) }
        }
    }

    static func respond(to request: HTTPRequest, asset: PageAssets.Asset, body: [UInt8]) -> HTTPResponse {
        var headers: [(String, String)] = [
            ("Content-Type", asset.contentType),
            ("Content-Security-Policy", contentSecurityPolicy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("ETag", asset.etag),
            ("Cache-Control", "no-cache"),
        ]
        if let match = request.header("If-None-Match"),
           match.split(separator: ",").contains(where: { $0.trimmingSpaces() == asset.etag || $0.trimmingSpaces() == "*" }) {
            headers.removeFirst()
            return HTTPResponse(status: 304, headers: headers)
        }
        return HTTPResponse(status: 200, headers: headers, body: body)
    }
}
