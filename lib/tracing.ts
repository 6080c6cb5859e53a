/**
 * Distributed tracing on Moleculer's own tracer (README "Operating the shop / Traces").
 *
 * - Spans: Moleculer's tracing middleware makes one per action call on the node that runs it; the
 *   ids cross the bus in every request packet (`requestID` = the trace, `parentID` = the caller's
 *   span), so a request's spans on every node form one tree. Their tags are an allow-list
 *   (`actionTags`): Moleculer's default copies every param into the span, card numbers and
 *   passwords included.
 * - Ids: the trace id is the request id (`ctx.requestID`, the `X-Request-ID` a client gets back).
 *   Outside the process they are written as W3C/Zipkin hex: 32 hex characters for a trace, 16 for
 *   a span (`traceIdHex`, `spanIdHex`), the same in `traceparent`, in Zipkin and in the back office.
 * - Exporters: `RecentSpans`, a bounded ring of this node's recent sampled spans, read through the
 *   `$tracing.spans` action on every node (the back office's waterfall); and Moleculer's Zipkin v2
 *   exporter when TRACING_ZIPKIN_URL is set (`ShopZipkinExporter`: full 128-bit trace ids, a
 *   bounded queue, a last flush at stop).
 * - Logs: `RequestLogContext` runs each local action and event handler inside an
 *   AsyncLocalStorage holding its request id, and `traceLogFormatter` (the Console logger's
 *   formatter) prints it on every line written while that request is handled, on every node.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, randomUUID } from "node:crypto";
import { TracerExporters } from "moleculer";
import type { ActionSchema, BrokerOptions, Context, Middleware, ServiceBroker, ServiceSchema, Span, TracerOptions } from "moleculer";
import { builtinMiddlewares, type ActionHook, type CallHandler } from "./moleculer-internals";
import type { TracingConfig } from "./config";
import type { SpanRecord } from "./types";

// --- Ids ------------------------------------------------------------------------------------------

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ALL_ZERO = /^0+$/;

/**
 * A fresh trace id (and request id) for a request that came without one: 32 hex characters, from
 * Node's pooled UUIDs (`randomBytes(16)` is a system call per request: 5% of a cached read's CPU in a
 * profile; `randomUUID` draws from a pool).
 */
export const newTraceId = (): string => randomUUID().replace(/-/g, "");

const hashHex = (text: string, length: number) => createHash("sha256").update(text).digest("hex").slice(0, length);

/**
 * A request id as a W3C/Zipkin trace id (32 hex characters): itself when it is one (Moleculer's own
 * UUIDs, once their dashes are dropped, are), else a hash of it (a client's `X-Request-ID: order-42`).
 */
export function traceIdHex(requestID: string): string {
	const bare = requestID.includes("-") ? requestID.replace(/-/g, "") : requestID;
	return HEX32.test(bare) && !ALL_ZERO.test(bare) ? bare : hashHex(requestID, 32);
}

/** A span id (Moleculer's context ids are UUIDs) as 16 hex characters: a W3C parent-id, a Zipkin span id. */
export function spanIdHex(id: string): string {
	if (HEX16.test(id)) return id;
	const bare = id.replace(/-/g, "");
	return /^[0-9a-f]{16,}$/.test(bare) ? bare.slice(0, 16) : hashHex(id, 16);
}

export interface TraceParent {
	traceId: string;
	parentId: string;
	sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * A W3C Trace Context `traceparent` header (https://www.w3.org/TR/trace-context/#traceparent-header),
 * or null when it is absent or invalid (an invalid one is ignored, as the spec asks: the request
 * then starts a trace of its own). Version 00 has exactly four fields; later versions may add some.
 */
export function parseTraceparent(header: string | string[] | undefined): TraceParent | null {
	if (typeof header !== "string" || header.length > 512) return null;
	const match = TRACEPARENT.exec(header.trim());
	if (!match) return null;
	const [, version, traceId, parentId, flags, rest] = match;
	if (version === "ff" || (version === "00" && rest !== undefined)) return null;
	if (ALL_ZERO.test(traceId) || ALL_ZERO.test(parentId)) return null;
	return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** The `traceparent` of a span: what the gateway answers, for the client to continue the trace. */
export const formatTraceparent = (requestID: string, spanID: string, sampled: boolean): string =>
	`00-${traceIdHex(requestID)}-${spanIdHex(spanID)}-${sampled ? "01" : "00"}`;

// --- Span tags: an allow-list -----------------------------------------------------------------------

/**
 * The only params a span carries (ids and a status: nothing secret, nothing personal). Moleculer's
 * default is every param (`tags: { params: true }`): a card number in `orders.create` and
 * `payments.capture`, a password in `users.login`, a token in `users.resolveToken`.
 */
export const TRACED_PARAMS: readonly string[] = ["id", "orderId", "productId", "status"];

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The tags of every action's span (the tracer's global `tags.action`): the allow-listed params, and
 * `orderId` on the order's own spans (from the params, or from the answer of `orders.create`).
 * Moleculer adds the action, the node, the caller's node and the request id itself.
 * Called twice per span: with the context when it starts, with the answer too when it ends.
 */
export function actionTags(ctx: Context, ...answer: unknown[]): Record<string, unknown> {
	const orders = ctx.service?.name === "orders";
	if (answer.length > 0) {
		const res = answer[0];
		return orders && isRecord(res) && typeof res.id === "string" ? { orderId: res.id } : {};
	}
	const params: Record<string, string | number> = {};
	if (isRecord(ctx.params)) {
		for (const key of TRACED_PARAMS) {
			const value = ctx.params[key];
			if (typeof value === "string" || typeof value === "number") params[key] = value;
		}
	}
	const orderId = typeof params.orderId === "string" ? params.orderId : orders && typeof params.id === "string" ? params.id : undefined;
	return orderId ? { params, orderId } : { params };
}

// --- The request id in every log line ---------------------------------------------------------------

/** The request id of the handler running now (AsyncLocalStorage follows it through every await). */
export const requestContext = new AsyncLocalStorage<string>();

type Handler = (ctx: Context, ...rest: unknown[]) => Promise<unknown>;

/** Runs `handler` inside the request's log context, unless it already is (a local call inside the same request). */
function withRequestId(handler: Handler): Handler {
	return function (this: unknown, ctx: Context, ...rest: unknown[]) {
		const id = ctx.requestID;
		if (!id || requestContext.getStore() === id) return handler.call(this, ctx, ...rest);
		return requestContext.run(id, () => handler.call(this, ctx, ...rest));
	};
}

/** A broker with no logger (`logger: false`, as in the benchmark and most unit tests) prints no line to put a request id in. */
const logs = (broker: ServiceBroker) => Boolean(broker.options.logger);

/**
 * Every local action and event handler runs inside its request's log context: remote calls bring
 * their request id in the packet, so this holds on every node. Cheap: one `run` per handler (none
 * for a local call within the same request), and the formatter reads one value per line. Nothing
 * on a broker without a logger: there the handlers are left unwrapped (Node's AsyncLocalStorage,
 * once used, also slows every promise of the process on Node 20).
 */
export const RequestLogContext: Middleware = {
	name: "RequestLogContext",
	localAction(this: ServiceBroker, handler: Handler) {
		return logs(this) ? withRequestId(handler) : handler;
	},
	// Moleculer calls an event handler with the context too (its own tracing middleware reads it so).
	localEvent: function (this: ServiceBroker, handler: Handler) {
		return logs(this) ? withRequestId(handler) : handler;
	} as unknown as Middleware["localEvent"]
} as Middleware;

// --- Spans only for sampled requests ------------------------------------------------------------------

/**
 * Moleculer's Tracing middleware, less its cost for the requests it does not sample (90% at the
 * default TRACING_SAMPLE_RATE of 0.1). Moleculer's builds a span for every call, sampled or not (its
 * tags, a Span object with its id, timing and exporters' hooks), and only then drops the unsampled
 * one. Here the decision is taken first, as Moleculer takes it (the tracer's own `shouldSample` for
 * a request's first call; the caller's decision, `ctx.tracing`, for every call after it, on every
 * node), and an unsampled call goes straight to the handler. Sampled calls get Moleculer's span,
 * unchanged. What an unsampled call no longer gets is a span nobody sees: ids and the decision
 * still travel as before (`ctx.requestID`, `ctx.parentID` = the caller's context id, `ctx.tracing`).
 * Used in place of Moleculer's (lib/broker-middlewares.ts).
 */
export function SampledTracing(this: ServiceBroker, broker: ServiceBroker): Middleware {
	const builtin = builtinMiddlewares.Tracing.call(broker, broker);
	const traced = builtin.localAction as ActionHook | null | undefined;
	if (!traced) return { ...builtin, name: "Tracing" } as Middleware;
	const tracer = broker.tracer as unknown as { shouldSample(span: { priority: number }): boolean };
	// What `shouldSample` reads of a span: its priority (Moleculer's default, 5).
	const root = { priority: 5 };
	return {
		...builtin,
		name: "Tracing",
		localAction(this: ServiceBroker, next: CallHandler, action: ActionSchema): CallHandler {
			const withSpan = traced.call(this, next, action);
			if (withSpan === next) return next;
			return function sampledTracing(ctx: Context) {
				ctx.tracing ??= tracer.shouldSample(root);
				return ctx.tracing ? withSpan(ctx) : next(ctx);
			};
		}
	} as Middleware;
}

/** What Moleculer's formatted logger hands a formatter function (moleculer/src/loggers/formatted.js). */
interface FormatterThis {
	levelColorStr?: Record<string, string>;
}

/**
 * The Console logger's formatter: Moleculer's `short` layout (`[time] LEVEL MODULE: message`) with
 * the request id after the module when the line is written while a request is handled:
 * `[10:41:07.215Z] WARN  ORDERS: [req 4bf92f3577b34da6a3ce929d0e0e4736] payment timed out ...`.
 */
export function traceLogFormatter(
	this: FormatterThis,
	type: string,
	args: unknown[],
	bindings: { mod?: string } | undefined,
	helpers: { printArgs(args: unknown[]): unknown[] }
): unknown[] {
	const line = [
		`[${new Date().toISOString().substring(11)}]`,
		this.levelColorStr?.[type] ?? type.toUpperCase().padEnd(5),
		`${(bindings?.mod ?? "").toUpperCase()}:`
	];
	const id = requestContext.getStore();
	if (id) line.push(`[req ${id}]`);
	return [...line, ...helpers.printArgs(args)];
}

export type { SpanRecord };

// --- Exporters ----------------------------------------------------------------------------------------

export interface SpanQuery {
	traceIds?: string[];
	orderId?: string;
}

/** How many finished spans a node keeps for the back office: at ~0.5 kB each, about 2 MB. */
export const RECENT_SPANS = 4096;

/**
 * Moleculer trace exporter keeping this node's last `size` sampled spans in a ring (fixed memory,
 * no I/O), for the back office's waterfall. Older spans are overwritten: a trace is viewable there
 * while it is recent; Zipkin keeps them longer.
 */
export class RecentSpans extends TracerExporters.Base {
	private readonly ring: Array<KeptSpan | undefined>;
	private next = 0;

	constructor(readonly size = RECENT_SPANS) {
		super({});
		this.ring = new Array<KeptSpan | undefined>(size);
	}

	/**
	 * Keeps what the record needs as it is (ids, tags object, times): a sampled call pays for no hex
	 * conversion nor tag flattening, which are done when the back office asks (`find`), rarely.
	 */
	override spanFinished(span: Span): void {
		this.ring[this.next] = {
			traceID: span.traceID,
			id: span.id,
			parentID: span.parentID ?? null,
			name: span.name,
			service: span.service?.name ?? null,
			startTime: span.startTime ?? 0,
			duration: span.duration ?? 0,
			error: span.error ? String((span.error as Error).name ?? "Error") : null,
			tags: span.tags,
			record: undefined
		};
		this.next = (this.next + 1) % this.size;
	}

	/** As `$node.options` shows it over the bus (Moleculer JSON-serialises the broker options): the size, never the kept spans. */
	toJSON(): object {
		return { type: "RecentSpans", size: this.size };
	}

	/** The kept spans of the given traces, and those tagged with the given order. */
	find(query: SpanQuery): SpanRecord[] {
		const traces = new Set(query.traceIds ?? []);
		const found: SpanRecord[] = [];
		for (const kept of this.ring) {
			if (kept === undefined) continue;
			const span = this.recordOf(kept);
			if (traces.has(span.traceId) || (query.orderId != null && span.orderId === query.orderId)) found.push(span);
		}
		return found;
	}

	private recordOf(kept: KeptSpan): SpanRecord {
		kept.record ??= {
			traceId: traceIdHex(kept.traceID),
			id: spanIdHex(kept.id),
			parentId: kept.parentID ? spanIdHex(kept.parentID) : null,
			name: kept.name,
			service: kept.service,
			nodeID: this.broker.nodeID,
			startTime: kept.startTime,
			duration: kept.duration,
			error: kept.error,
			orderId: typeof kept.tags.orderId === "string" ? kept.tags.orderId : null,
			tags: (this.flattenTags(kept.tags, true) ?? {}) as Record<string, string>
		};
		return kept.record;
	}
}

/** A finished span as `RecentSpans` keeps it, and its record once made. */
interface KeptSpan {
	traceID: string;
	id: string;
	parentID: string | null;
	name: string;
	service: string | null;
	startTime: number;
	duration: number;
	error: string | null;
	tags: Record<string, unknown>;
	record: SpanRecord | undefined;
}

/** Zipkin spans waiting for the next post, at most: beyond it spans are dropped (and counted), never memory. */
const ZIPKIN_QUEUE_LIMIT = 20_000;

interface ZipkinOptions {
	baseURL: string;
	authorization: string | null;
	/** Seconds between posts. */
	interval: number;
}

/**
 * Moleculer's Zipkin v2 exporter (it posts JSON to `<baseURL>/api/v2/spans` with Node's own fetch),
 * with three changes: trace ids keep all 128 bits (Moleculer's cuts them to 64, so the id a client
 * got in `traceparent` would not be found), the queue between posts is bounded, and stopping the
 * node posts what is queued (Moleculer's drops it).
 */
export class ShopZipkinExporter extends TracerExporters.Zipkin {
	private dropped = 0;

	constructor(options: ZipkinOptions) {
		super({
			baseURL: options.baseURL,
			interval: options.interval,
			headers: { "Content-Type": "application/json", ...(options.authorization ? { Authorization: options.authorization } : {}) }
		});
	}

	/** As `$node.options` shows it over the bus: the URL, never the Authorization header nor the queued spans. */
	toJSON(): object {
		return { type: "Zipkin", baseURL: this.opts.baseURL };
	}

	override spanFinished(span: Span): void {
		if (this.queue.length < ZIPKIN_QUEUE_LIMIT) this.queue.push(span);
		else this.dropped++;
	}

	override makePayload(span: Span): Record<string, unknown> {
		const payload = super.makePayload(span);
		payload.traceId = traceIdHex(span.traceID);
		payload.id = spanIdHex(span.id);
		if (span.parentID) payload.parentId = spanIdHex(span.parentID);
		else delete payload.parentId;
		return payload;
	}

	override flush(): void {
		void this.post();
	}

	/** Posts the queued spans; resolves when Zipkin answered, or the post failed (logged). */
	private post(): Promise<void> {
		if (this.queue.length === 0) return Promise.resolve();
		const data = this.generateTracingData();
		this.queue.length = 0;
		if (this.dropped > 0) {
			this.logger.warn(`${this.dropped} spans were dropped: more than ${ZIPKIN_QUEUE_LIMIT} finished between two posts to Zipkin.`);
			this.dropped = 0;
		}
		return fetch(`${this.opts.baseURL}/api/v2/spans`, {
			method: "POST",
			body: JSON.stringify(data),
			headers: this.opts.headers,
			signal: AbortSignal.timeout(5000)
		})
			.then(res => {
				if (res.status >= 400) this.logger.warn(`Zipkin refused ${data.length} spans: ${res.status} ${res.statusText}`);
				void res.body?.cancel();
			})
			.catch((err: Error) => this.logger.warn(`Could not post ${data.length} spans to Zipkin: ${err.message}`));
	}

	// Moleculer awaits it: the tracer's stop() is Promise.all of its exporters' stop().
	// eslint-disable-next-line @typescript-eslint/no-misused-promises
	override stop(): Promise<void> {
		if (this.timer) clearInterval(this.timer);
		return this.post();
	}
}

// --- The $tracing service on every node ---------------------------------------------------------------

/**
 * `$tracing.spans` on every node: its kept spans of some traces or of an order. Internal (`$`), so it
 * is in no route of the gateway and not in the cluster view's list of services; the gateway's admin
 * action calls it on each node. Its own calls are not traced.
 */
function tracingService(recent: RecentSpans): ServiceSchema {
	return {
		name: "$tracing",
		actions: {
			spans: {
				visibility: "public",
				tracing: false,
				params: {
					traceIds: { type: "array", items: { type: "string", max: 32 }, max: 100, optional: true },
					orderId: { type: "string", max: 64, optional: true }
				},
				handler(ctx: Context<SpanQuery>): SpanRecord[] {
					return recent.find(ctx.params);
				}
			}
		}
	};
}

export interface ShopTracing {
	/** The broker's `tracing` option. */
	options: NonNullable<BrokerOptions["tracing"]>;
	/** The middlewares: the log context always, the `$tracing` service when tracing is on. */
	middlewares: Middleware[];
}

/** Tracing for a node, from TRACING_ZIPKIN_URL and TRACING_SAMPLE_RATE. A rate of 0 turns Moleculer's tracer off. */
export function shopTracing(config: TracingConfig): ShopTracing {
	if (config.sampleRate === 0) return { options: { enabled: false }, middlewares: [RequestLogContext] };
	const recent = new RecentSpans();
	const exporters = [
		recent,
		...(config.zipkinUrl ? [new ShopZipkinExporter({ baseURL: config.zipkinUrl, authorization: config.zipkinAuthorization, interval: 2 })] : [])
	];
	const options: TracerOptions = {
		enabled: true,
		sampling: { rate: config.sampleRate },
		actions: true,
		events: false,
		// Not `data`: a validation error's data holds the refused value (a malformed card number, say).
		errorFields: ["name", "message", "code", "type"],
		stackTrace: false,
		tags: { action: actionTags },
		// Moleculer takes exporter instances as well as names (tracing/exporters/index.js, resolve).
		exporter: exporters as unknown as TracerOptions["exporter"]
	};
	const services: Middleware = {
		name: "TracingService",
		created(broker: ServiceBroker) {
			broker.createService(tracingService(recent));
		}
	};
	return { options, middlewares: [RequestLogContext, services] };
}
