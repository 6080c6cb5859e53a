/**
 * api: the moleculer-web REST gateway on PORT, under /api.
 *
 * Routes come from the `rest` lines of the services' actions (see lib/rest-aliases.ts); every
 * error leaves through `onError`, which turns it into the contract's `{ name, message, code, type,
 * data }` body. Health and readiness are answered here, by the gateway itself.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import path from "node:path";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiRouteSchema, type ApiSettingsSchema, type IncomingRequest, type RateLimitSettings } from "moleculer-web";
import { SERVICE_NAMES, SERVICES_DIR, shopConfig } from "../../lib/config";
import { toErrorBody, validationError } from "../../lib/errors";
import { restAliases, type RestSource } from "../../lib/rest-aliases";
import { matchesIfNoneMatch, ProductCache, type CachedAnswer } from "../../lib/product-cache";
import { formatTraceparent, newTraceId, parseTraceparent, requestContext, type TraceParent } from "../../lib/tracing";
import type { Product, ShopMeta } from "../../lib/types";
import { AuthMixin } from "../../mixins/auth.mixin";
import { exportRestSource } from "../orders/export.mixin";
import { ChaosMixin, chaosRestSource } from "./chaos.mixin";
import { isTrusted, proxyList, unmapped } from "./proxies";
import { DrainMixin } from "./drain.mixin";
import { SlidingWindowStore } from "./rate-limit-store";
import { TracesMixin, tracesRestSource } from "./traces.mixin";
import { WebMixin, webRestSource } from "./web.mixin";

/** Every other service of this build: readiness means all of them answer. */
export const BACKEND_SERVICES = SERVICE_NAMES.filter(name => name !== "api");

/** The services' schemas, for their `rest` lines: loaded from their folders, as moleculer-runner loads them. */
function backendSchemas(): RestSource[] {
	// eslint-disable-next-line @typescript-eslint/no-require-imports -- which files exist is known only at run time
	return BACKEND_SERVICES.map(name => (require(path.join(SERVICES_DIR, name, `${name}.service`)) as { default: RestSource }).default);
}

const config = shopConfig();
const aliases = restAliases([
	{ name: "api", settings: { rest: "/health" }, actions: { health: { rest: "GET /" }, ready: { rest: "GET /ready" } } },
	webRestSource,
	chaosRestSource,
	tracesRestSource,
	exportRestSource,
	...backendSchemas()
]);
const aliasTable = (filter: (action: string) => boolean) =>
	Object.fromEntries(aliases.filter(alias => filter(alias.action)).map(alias => [alias.route, alias.action]));

/**
 * Actions limited per client address, each on a route of its own with its own count: login
 * (password guessing) and register (each one hashes a password, and floods of them slowed the shop).
 */
const RATE_LIMITED_ROUTES = [
	{ name: "login", action: "users.login", limit: config.loginRateLimit },
	{ name: "register", action: "users.register", limit: config.registerRateLimit }
];
const RATE_LIMITED_ACTIONS = new Set(RATE_LIMITED_ROUTES.map(route => route.action));

/** The load balancers in front of this gateway (TRUSTED_PROXIES). */
const trustedProxies = proxyList(config.trustedProxies);

/**
 * The client's address, for the limits per address: the socket's, unless it is a trusted proxy's;
 * then the last X-Forwarded-For hop that is not a trusted proxy (nginx appends the address it saw,
 * so the hops to its left are the client's to forge).
 */
export function clientAddress(req: { socket: { remoteAddress?: string }; headers: IncomingHttpHeaders }): string {
	const socket = unmapped(req.socket.remoteAddress ?? "unknown");
	if (!isTrusted(trustedProxies, socket)) return socket;
	const forwarded = String(req.headers["x-forwarded-for"] ?? "")
		.split(",")
		.map(hop => unmapped(hop.trim()))
		.filter(hop => isIP(hop) !== 0);
	for (let i = forwarded.length - 1; i >= 0; i--) if (!isTrusted(trustedProxies, forwarded[i])) return forwarded[i];
	return forwarded[0] ?? socket;
}

/** `limit` a minute per client address, in a sliding window (see rate-limit-store.ts). */
const perAddressLimit = (limit: number): RateLimitSettings => ({
	window: 60_000,
	limit,
	headers: true,
	key: clientAddress,
	StoreFactory: SlidingWindowStore
});

/**
 * The X-Request-ID (or X-Correlation-ID) a client sent, if it is one we can echo and pass on: 1 to
 * 128 visible ASCII characters (no spaces, no control characters, nothing a log or a header could
 * choke on). Anything else is not refused (it is tracing metadata, not the request: a proxy adding
 * a long id must not break a valid call, and the contract has no error for headers), it is replaced
 * by the id Moleculer generates for the call, and never logged.
 */
export const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
function requestIdOf(req: IncomingMessage): string | undefined {
	const sent = req.headers["x-correlation-id"] ?? req.headers["x-request-id"];
	return typeof sent === "string" && REQUEST_ID.test(sent) ? sent : undefined;
}

/**
 * A request's trace, decided as it arrives (README "Traces"): a valid W3C `traceparent` continues
 * the client's trace (its trace id becomes the request id, its parent-id the parent of the
 * gateway's span, its sampled flag is followed); else a sane X-Request-ID is the request id, as
 * before; else a fresh 32-hex id. The request id is the trace id: answered as X-Request-ID and in
 * `traceparent`, carried to every node, printed on every log line.
 */
interface RequestTrace {
	requestID: string;
	parent: TraceParent | null;
}
type TracedRequest = IncomingMessage & { $trace?: RequestTrace };

function requestTraceOf(req: IncomingMessage): RequestTrace {
	const parent = parseTraceparent(req.headers.traceparent);
	if (parent) return { requestID: parent.traceId, parent };
	return { requestID: requestIdOf(req) ?? newTraceId(), parent: null };
}

/** The request path without its query string (which a span must not carry). */
const pathOf = (url: string | undefined) => (url ?? "/").split("?", 1)[0];

/** The HTTP request of moleculer-web's `rest` action. */
const requestOf = (ctx: Context) => (ctx.params as { req: IncomingMessage }).req;

/** Methods whose input is the body: the query string may not add to it or override it. */
const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * A write's params, rebuilt from the body and the path's `:params` only (moleculer-web merges the
 * query string over the body, so `?email=` replaced the body's email). Path params win, as in
 * moleculer-web: `PATCH /products/:id` changes the product its path names, whatever the body says.
 */
function writeParams(
	req: IncomingRequest & { body?: unknown; $params?: Record<string, unknown> },
	alias: { keys?: Array<{ name: string | number }> } | undefined
) {
	// As moleculer-web takes a body (any object: an array's items become "0", "1", ... and fail the schema).
	const params: Record<string, unknown> = { ...(typeof req.body === "object" && req.body !== null ? (req.body as Record<string, unknown>) : {}) };
	for (const { name } of alias?.keys ?? []) {
		if (req.$params && name in req.$params) params[name] = req.$params[name];
	}
	return params;
}

/** A UTF-16 code unit of a surrogate pair without its other half: not Unicode text. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Applied to every JSON body as it is parsed. Drops `__proto__` keys: moleculer-web merges the body
 * into the params with Object.assign, which would make one the params' prototype, and the validator
 * would then accept fields that were never sent. Refuses (400) strings with a lone surrogate: stored
 * as UTF-8 they silently become U+FFFD, so the answer would not be what is stored, and two different
 * passwords would hash alike.
 */
function jsonReviver(key: string, value: unknown): unknown {
	if (key === "__proto__") return undefined;
	if (LONE_SURROGATE.test(key) || (typeof value === "string" && LONE_SURROGATE.test(value))) {
		throw new SyntaxError("The request body has a string with an unpaired UTF-16 surrogate");
	}
	return value;
}

/**
 * The path of the first string with a NUL in a request's params (body, query or path), or null.
 * PostgreSQL cannot store U+0000 in text, and no field of the shop has a use for it: a 422 on every
 * dialect, rather than a value one database keeps and another refuses.
 */
function fieldWithNul(value: unknown, at = ""): string | null {
	if (typeof value === "string") return value.includes("\u0000") ? at || "params" : null;
	if (value === null || typeof value !== "object") return null;
	for (const [key, item] of Object.entries(value)) {
		if (key.includes("\u0000")) return at ? `${at}.${key}` : key;
		const found = fieldWithNul(item, Array.isArray(value) ? `${at}[${key}]` : at ? `${at}.${key}` : key);
		if (found !== null) return found;
	}
	return null;
}

const API_PATH = "/api";

// --- Product reads from the gateway's cache (lib/product-cache.ts; README "Catalogue reads") ----------

/** The read whose answers the gateway keeps. */
const PRODUCT_READ = "inventory.get";
/** Where it is served: `GET /api/products/<id>`. */
const PRODUCT_PATH = `${API_PATH}/products/`;
/**
 * A product's answer may be stored by a client or a proxy, but revalidated before every use: its
 * `stock` changes with every order, so no freshness lifetime would be honest. The revalidation is
 * cheap: `If-None-Match` with the answer's ETag gets a 304 without a body while the product is unchanged.
 */
export const PRODUCT_CACHE_CONTROL = "no-cache";
const JSON_TYPE = "application/json; charset=utf-8";

/** The gateway's own state: its cache of product answers. */
interface GatewayVars {
	productCache: ProductCache;
}
type GatewayRequest = IncomingRequest & { $productEpoch?: number; $alias?: { action?: string } };

/** A relayed write's answer: the product it changed (inventory), or the order lines whose stock it moved (orders). */
function productsChangedBy(action: string | undefined, data: unknown): string[] {
	if (typeof data !== "object" || data === null || !action) return [];
	if (action.startsWith("inventory.")) {
		const id = (data as { id?: unknown }).id;
		return typeof id === "string" ? [id] : [];
	}
	if (action.startsWith("orders.")) {
		const items = (data as { items?: unknown }).items;
		return Array.isArray(items) ? items.map(item => (item as { productId?: unknown }).productId).filter((id): id is string => typeof id === "string") : [];
	}
	return [];
}

/** The answer's headers, as every API answer has them (traceparent, X-Request-ID), plus the cache's. */
function writeCachedAnswer(res: ServerResponse, answer: CachedAnswer, ifNoneMatch: string | undefined, requestID: string, traceparent: string): void {
	if (matchesIfNoneMatch(ifNoneMatch, answer.etag)) {
		res.writeHead(304, ["traceparent", traceparent, "X-Request-ID", requestID, "ETag", answer.etag, "Cache-Control", PRODUCT_CACHE_CONTROL]);
		res.end();
		return;
	}
	res.writeHead(200, [
		"traceparent",
		traceparent,
		"X-Request-ID",
		requestID,
		"Content-Type",
		JSON_TYPE,
		"ETag",
		answer.etag,
		"Cache-Control",
		PRODUCT_CACHE_CONTROL,
		"Content-Length",
		String(answer.bytes)
	]);
	res.end(answer.body);
}

const commonRoute: ApiRouteSchema = {
	path: "/",
	mappingPolicy: "restrict",
	authentication: true,
	authorization: true,
	bodyParsers: { json: { strict: true, limit: "1mb", reviver: jsonReviver }, urlencoded: false },
	onBeforeCall(
		this: GatewayVars,
		ctx: Context<unknown, ShopMeta>,
		_route: unknown,
		req: GatewayRequest & { $params?: Record<string, unknown> },
		_res: ServerResponse,
		alias?: { action?: string; keys?: Array<{ name: string | number }> }
	) {
		if (WRITE_METHODS.has(req.method ?? "")) req.$params = writeParams(req, alias);
		// The cache's epoch as the read begins: its answer is kept only if no product changed meanwhile.
		else if (alias?.action === PRODUCT_READ) req.$productEpoch = this.productCache.epoch;
		const field = fieldWithNul(req.$params);
		if (field !== null) throw validationError(field, "Text must not contain the NUL character (U+0000)", "stringNul");
		const key = req.headers["idempotency-key"];
		if (typeof key === "string") ctx.meta.idempotencyKey = key;
	},
	// Services name what they created relative to their own base path (`/orders/<id>`); clients get it under the gateway's.
	// A product read: its bytes kept for the next ones, with an ETag (and a 304 to a matching If-None-Match, below).
	// A write: the products it changed dropped from this gateway's cache before its answer leaves (read-your-writes).
	onAfterCall(this: GatewayVars, ctx: Context<unknown, ShopMeta>, _route: unknown, req: GatewayRequest, res: ServerResponse, data: unknown) {
		if (ctx.meta.$location?.startsWith("/")) ctx.meta.$location = `${API_PATH}${ctx.meta.$location}`;
		const action = req.$alias?.action;
		if (action === PRODUCT_READ && req.$productEpoch !== undefined && typeof data === "object" && data !== null) {
			const answer = this.productCache.store(data as Product, req.$productEpoch);
			res.setHeader("ETag", answer.etag);
			res.setHeader("Cache-Control", PRODUCT_CACHE_CONTROL);
			res.setHeader("Content-Length", answer.bytes);
			(ctx.meta as { $responseType?: string }).$responseType = JSON_TYPE;
			// A 304 whenever If-None-Match names it (RFC 9110 13.1.2), as on the cached path; moleculer-web's
			// own check (the `fresh` package) would answer 200 to a request with `Cache-Control: no-cache`, which
			// fetch() adds to every request with If-None-Match.
			if (matchesIfNoneMatch(req.headers["if-none-match"] as string | undefined, answer.etag)) ctx.meta.$statusCode = 304;
			return answer.body;
		}
		if (WRITE_METHODS.has(req.method ?? "")) {
			const changed = productsChangedBy(action, data);
			if (changed.length > 0) this.productCache.drop(changed);
		}
		return data;
	}
};

/** Seconds until the limited route lets this client in again (its sliding window's oldest hit expires). */
function retryAfterSeconds(req: IncomingRequest): number {
	const limit = (req as IncomingRequest & { $route?: { rateLimit?: { store?: unknown } } }).$route?.rateLimit;
	const seconds = limit?.store instanceof SlidingWindowStore ? limit.store.retryAfterSeconds(clientAddress(req)) : 0;
	return seconds > 0 ? seconds : 60;
}

export interface ReadyAnswer {
	status: "ready" | "degraded";
	services: Record<(typeof BACKEND_SERVICES)[number], boolean>;
}

/** The cache's figures at /metrics (refreshed every second, not per request). */
const PRODUCT_CACHE_METRICS = {
	hits: { name: "shop.gateway.product_cache.hits", type: "counter", description: "Product reads answered from the gateway's cache" },
	misses: { name: "shop.gateway.product_cache.misses", type: "counter", description: "Product reads the gateway's cache could not answer" },
	entries: { name: "shop.gateway.product_cache.entries", type: "gauge", description: "Product answers in the gateway's cache" },
	bytes: { name: "shop.gateway.product_cache.bytes", type: "gauge", description: "Bytes of the product answers in the gateway's cache" }
} as const;

interface Tracer {
	isEnabled(): boolean;
	shouldSample(span: { priority: number }): boolean;
	startSpan(name: string, opts: object): { id: string; finish(): void };
}

const ApiService: ServiceSchema<ApiSettingsSchema> = {
	name: "api",
	mixins: [ApiGateway, AuthMixin, WebMixin, ChaosMixin, TracesMixin, DrainMixin],

	settings: {
		port: config.port,
		ip: config.host,
		path: API_PATH,
		log4XXResponses: false,
		logRequest: "debug",
		logResponse: "debug",
		// Never: request params carry card numbers and passwords, answers carry tokens.
		logRequestParams: null,
		logResponseData: null,
		// The request's trace (see requestTraceOf, decided in httpHandler below): its id, and the client's span as parent.
		rootCallOptions: function (
			this: unknown,
			options: { requestID?: string; parentSpan?: { id: string; traceID: string; sampled: boolean } },
			req: TracedRequest
		) {
			const trace = req.$trace ?? requestTraceOf(req);
			options.requestID = trace.requestID;
			if (trace.parent) options.parentSpan = { id: trace.parent.parentId, traceID: trace.requestID, sampled: trace.parent.sampled };
		} as unknown as ApiSettingsSchema["rootCallOptions"],
		routes: [
			...RATE_LIMITED_ROUTES.map(({ name, action, limit }) => ({
				...commonRoute,
				name,
				aliases: aliasTable(candidate => candidate === action),
				rateLimit: perAddressLimit(limit)
			})),
			{
				...commonRoute,
				name: "rest",
				aliases: aliasTable(action => !RATE_LIMITED_ACTIONS.has(action))
			}
		],

		onError(req: IncomingRequest, res: ServerResponse, err: Error) {
			const body = toErrorBody(err, (req as IncomingRequest & { $alias?: { action?: string } }).$alias?.action);
			if (body.code >= 500 && body.code !== 503) {
				this.logger.error(`${req.method} ${req.originalUrl ?? req.url} failed:`, err);
			} else if (body.code === 503) {
				this.logger.warn(`${req.method} ${req.originalUrl ?? req.url}: ${body.message} (${err.name})`);
			}
			if (res.headersSent) return;
			res.setHeader("Content-Type", "application/json; charset=utf-8");
			if (body.code === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="shop"');
			if (body.code === 429) res.setHeader("Retry-After", String(retryAfterSeconds(req)));
			res.writeHead(body.code);
			res.end(JSON.stringify(body));
		}
	},

	actions: {
		/**
		 * moleculer-web's own HTTP entry action. Never retried as a whole: it consumes the request
		 * body, so a second run would find nothing to route (a 404). The calls it makes to the
		 * services are retried, one by one, by the broker's retry policy.
		 */
		rest: {
			retryPolicy: { enabled: false },
			// No timeout of its own: each call it makes has its action's timeout (orders.create's is longer).
			timeout: 0,
			// moleculer-web's own tags carry the URL with its query; these carry the method and the path only, never a header.
			tracing: {
				spanName: (ctx: Context) => `${requestOf(ctx).method} ${pathOf(requestOf(ctx).url)}`,
				tags: (ctx: Context, ...answer: unknown[]) => (answer.length > 0 ? {} : { http: { method: requestOf(ctx).method, path: pathOf(requestOf(ctx).url) } })
			}
		},

		health: {
			handler() {
				return { status: "ok", nodeID: this.broker.nodeID, uptime: Math.round(process.uptime()) };
			}
		},

		ready: {
			handler(ctx: Context<unknown, ShopMeta>): ReadyAnswer {
				const available = new Set(
					this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }).map((service: { name: string }) => service.name)
				);
				const services = Object.fromEntries(BACKEND_SERVICES.map(name => [name, available.has(name)])) as ReadyAnswer["services"];
				const ready = Object.values(services).every(Boolean);
				if (!ready) ctx.meta.$statusCode = 503;
				return { status: ready ? "ready" : "degraded", services };
			}
		}
	},

	events: {
		/** A product changed (inventory broadcasts it to every node, this one included): its cached answer goes. */
		"product.updated"(this: GatewayVars, ctx: Context<{ ids?: unknown }>) {
			const ids = ctx.params?.ids;
			if (Array.isArray(ids) && ids.every(id => typeof id === "string")) this.productCache.drop(ids);
			else this.productCache.clear();
		},
		/** Back on the bus after a disconnection: events may have been missed while away. */
		"$transporter.connected"(this: GatewayVars) {
			this.productCache.clear();
		}
	},

	hooks: {
		before: {
			// The trace's W3C header on every answer: the client (or a proxy) continues or looks up the trace with it.
			rest(ctx: Context<{ res: ServerResponse }>) {
				if (!ctx.params.res.headersSent)
					ctx.params.res.setHeader("traceparent", formatTraceparent(ctx.requestID ?? ctx.id, ctx.span?.id ?? ctx.id, ctx.tracing === true));
			}
		}
	},

	created() {
		this.productCache = new ProductCache();
	},

	started() {
		const metrics = this.broker.metrics;
		if (!this.broker.isMetricsEnabled()) return;
		for (const metric of Object.values(PRODUCT_CACHE_METRICS)) metrics.register({ ...metric } as Parameters<typeof metrics.register>[0]);
		this.productCacheTimer = setInterval(() => {
			const stats = (this.productCache as ProductCache).stats();
			for (const [key, metric] of Object.entries(PRODUCT_CACHE_METRICS)) metrics.set(metric.name, stats[key as keyof typeof stats]);
		}, 1000);
		this.productCacheTimer.unref();
	},

	stopped() {
		clearInterval(this.productCacheTimer);
	},

	methods: {
		/**
		 * `GET /api/products/<id>` from the gateway's cache, when it holds that product (else false:
		 * the request takes moleculer-web's path). No context, no call, no JSON.stringify: the request
		 * id and trace are decided as on the full path and answered in the same headers; a request the
		 * tracer samples gets one span of its own (tagged `fromCache`). Chaos is not applied, as with
		 * Moleculer's cacher, whose hits skip the middlewares inside it (README "Chaos").
		 */
		serveCachedProduct(req: TracedRequest, res: ServerResponse): boolean {
			const id = req.url!.slice(PRODUCT_PATH.length);
			const answer = (this.productCache as ProductCache).lookup(id);
			if (!answer) return false;
			const trace = requestTraceOf(req);
			const tracer = this.broker.tracer as unknown as Tracer | undefined;
			const sampled = tracer?.isEnabled() === true && (trace.parent ? trace.parent.sampled : tracer.shouldSample({ priority: 5 }));
			const span = sampled
				? tracer!.startSpan(`GET ${pathOf(req.url)}`, {
						type: "action",
						traceID: trace.requestID,
						parentID: trace.parent?.parentId ?? null,
						sampled: true,
						service: { name: this.name, fullName: this.fullName },
						tags: { http: { method: "GET", path: pathOf(req.url) }, fromCache: true, params: { id } }
					})
				: null;
			const traceparent = formatTraceparent(trace.requestID, span?.id ?? newTraceId().slice(16), sampled);
			writeCachedAnswer(res, answer, req.headers["if-none-match"], trace.requestID, traceparent);
			span?.finish();
			return true;
		},

		/**
		 * moleculer-web's HTTP entry, inside the request's log context from its first line (its
		 * error handler logs after the `rest` action has returned, outside that action's context).
		 */
		httpHandler(req: TracedRequest, res: ServerResponse, next?: (err?: unknown) => void) {
			if (req.method === "GET" && req.url?.startsWith(PRODUCT_PATH) && this.serveCachedProduct(req, res)) return;
			const trace = requestTraceOf(req);
			req.$trace = trace;
			const handle = (ApiGateway.methods as { httpHandler(this: unknown, ...args: unknown[]): Promise<void> }).httpHandler;
			return requestContext.run(trace.requestID, () => handle.call(this, req, res, next));
		}
	}
};

export default ApiService;
