import Foundation
import Hummingbird
import Logging
import NIOCore
import RedlineClient
import RedlineCore
import RedlineSync

/// The console's HTTP side, on Hummingbird, bound to 127.0.0.1 only.
///
/// Routes (every one behind the `Gate`):
/// - `GET /` the page (with `?token=` it sets the cookie and redirects to `/`, so the token
///   leaves the address bar and the history);
/// - `GET /fragments` every section as JSON (the page's script, on each event);
/// - `GET /events` server-sent events: the daemon's events and the link state;
/// - `POST /approve`, `/deny`, `/release`, `/escalation/clear` the operator actions, form
///   encoded; JSON back for the script (`Accept: application/json`), else a redirect to `/`.
public final class ConsoleServer: Sendable {
    public let link: DaemonLink
    public let feed: EventFeed
    public let token: String
    public let requestedPort: Int
    private let gate = Lock<Gate?>(nil)
    private let site: String?

    public init(operatorSocket: String, port: Int, token: String = Gate.newToken(), site: String?) {
        link = DaemonLink(operatorSocket: operatorSocket)
        feed = EventFeed(operatorSocket: operatorSocket)
        self.token = token
        requestedPort = port
        self.site = site
    }

    /// Runs until the process ends; `onListening` gets the URL to print once the port is bound.
    public func run(onListening: @escaping @Sendable (Gate) -> Void) async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: GateMiddleware(server: self))
        routes(router)
        feed.start()
        let keepAlive = Task { [feed] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(15))
                feed.broadcast(.keepAlive)
            }
        }
        defer { keepAlive.cancel() }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: requestedPort), serverName: nil),
            onServerRunning: { [self] channel in
                let g = Gate(token: token, port: channel.localAddress?.port ?? requestedPort)
                gate.withLock { $0 = g }
                onListening(g)
            },
            logger: {
                var l = Logger(label: "redline-console")
                l.logLevel = .warning
                return l
            }()
        )
        // SIGINT and SIGTERM end the process at once (main installs that): the SSE streams never
        // end on their own, and the console keeps no state worth a graceful stop.
        try await app.runService(gracefulShutdownSignals: [])
    }

    var currentGate: Gate? { gate.withLock { $0 } }

    private func routes(_ router: Router<BasicRequestContext>) {
        router.get("/") { [self] req, _ -> Response in
            if req.uri.queryParameters.get("token") != nil {
                // The gate let it in (the token is right): keep it in the cookie, drop it from the URL.
                var h = HTTPFields()
                h[.location] = "/"
                h[.setCookie] = currentGate?.setCookie ?? ""
                h[.cacheControl] = "no-store"
                return Response(status: .seeOther, headers: h)
            }
            let snap = await link.snapshot()
            return html(Pages.page(snap, site: snap.status?["site"]?.stringValue ?? site))
        }
        router.get("/fragments") { [self] _, _ -> Response in
            let snap = await link.snapshot()
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: Pages.fragmentsJSON(snap))))
        }
        router.get("/events") { [self] _, _ -> Response in
            let (id, stream) = feed.subscribe()
            let feed = self.feed
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    defer { feed.unsubscribe(id) }
                    try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
                    for await m in stream {
                        try await writer.write(ByteBuffer(string: ConsoleServer.sse(m)))
                    }
                    try await writer.finish(nil)
                })
        }
        router.post("/approve") { [self] req, _ in
            try await act(req) { f in
                let id = try field(f, "requestId")
                let r = try await link.call("approvals.approve", .obj([("requestId", .string(id))]))
                return ("Request \(id): \(r["outcome"]?.stringValue ?? "?") — \(r["explanation"]?.stringValue ?? "")", r)
            }
        }
        router.post("/deny") { [self] req, _ in
            try await act(req) { f in
                let id = try field(f, "requestId")
                let reason = f["reason"].flatMap { $0.isEmpty ? nil : $0 }
                let r = try await link.call("approvals.deny", .obj([("requestId", .string(id)), ("reason", reason.map { .string($0) })]))
                return ("Request \(id): \(r["outcome"]?.stringValue ?? "?")", r)
            }
        }
        router.post("/release") { [self] req, _ in
            try await act(req) { f in
                let name = try field(f, "agent")
                let r = try await link.call("agents.release", .obj([("agent", .string(name))]))
                return (r["released"]?.boolValue == true ? "\(name) released" : "\(name) was not quarantined", r)
            }
        }
        router.post("/escalation/clear") { [self] req, _ in
            try await act(req) { _ in
                let r = try await link.call("escalation.clear")
                return (r["cleared"]?.boolValue == true ? "agents-held cleared" : "the site was not in agents-held", r)
            }
        }
    }

    struct MissingField: Error { let name: String }

    private func field(_ f: [String: String], _ name: String) throws -> String {
        guard let v = f[name], !v.isEmpty else { throw MissingField(name: name) }
        return v
    }

    /// One operator action: parse the form, call the daemon, answer JSON or redirect.
    private func act(_ request: Request, _ body: ([String: String]) async throws -> (String, JSON)) async throws -> Response {
        var req = request
        let wantsJSON = req.headers[.accept]?.contains("application/json") == true
        let form: [String: String]
        do {
            form = FormBody.parse(String(buffer: try await req.collectBody(upTo: 16 * 1024)))
        } catch {
            return answer(.contentTooLarge, "the form is too large", nil, json: wantsJSON)
        }
        do {
            let (message, result) = try await body(form)
            return answer(.ok, message, result, json: wantsJSON)
        } catch let e as MissingField {
            return answer(.badRequest, "missing \(e.name)", nil, json: wantsJSON)
        } catch let ClientError.rpc(code, message, _) {
            return answer(.conflict, "refused by redlined: \(message) (error \(code))", nil, json: wantsJSON)
        } catch {
            return answer(.badGateway, "redlined unreachable: \(error)", nil, json: wantsJSON)
        }
    }

    private func answer(_ status: HTTPResponse.Status, _ message: String, _ result: JSON?, json: Bool) -> Response {
        if json {
            let body = JSON.obj([("ok", .bool(status == .ok)), ("message", .string(message)), ("result", result)]).encoded()
            return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        // Without the script: back to the page, which shows the new state.
        return Response(status: .seeOther, headers: [.location: "/"])
    }

    private func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// One server-sent event.
    static func sse(_ m: EventFeed.Message) -> String {
        switch m {
        case .event(let e): return "event: redline\ndata: \(e.encoded())\n\n"
        case .link(let c, let why): return "event: link\ndata: \(JSON.obj([("connected", .bool(c)), ("why", .string(why))]).encoded())\n\n"
        case .keepAlive: return ": keep-alive\n\n"
        }
    }
}

/// Every request passes the gate first: 401 without the token, 403 from elsewhere.
struct GateMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: ConsoleServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let gate = server.currentGate else {
            return refuse(.serviceUnavailable, "starting")
        }
        let r = Gate.Request(
            method: request.method.rawValue, host: request.head.authority,
            queryToken: request.uri.queryParameters.get("token"),
            cookieHeader: request.headers[values: .cookie].joined(separator: "; "),
            authorization: request.headers[.authorization],
            origin: request.headers[.origin], referer: request.headers[.referer])
        switch gate.check(r) {
        case .allowed:
            var response = try await next(request, context)
            response.headers[.init("Referrer-Policy")!] = "no-referrer"
            response.headers[.xContentTypeOptions] = "nosniff"
            response.headers[.contentSecurityPolicy] = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
            return response
        case .unauthorized(let why): return refuse(.unauthorized, why)
        case .forbidden(let why): return refuse(.forbidden, why)
        }
    }

    private func refuse(_ status: HTTPResponse.Status, _ why: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: "redline-console: \(status.code) \(why)\n")))
    }
}
