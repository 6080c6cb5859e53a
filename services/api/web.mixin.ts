/**
 * The gateway's browser side: the storefront at `/` and the back office at `/admin`, and the one
 * admin API the back office needs beyond the contract's (`GET /api/admin/cluster`).
 *
 * Static files: moleculer-web's own `assets` setting (serve-static) answers every URL no `/api`
 * route takes. Around it: gzip/brotli (`compression`), caching (Vite names every built asset by its
 * content hash, so those are `immutable` for a year; the HTML pages are `no-cache`, so a new build
 * is seen on the next load) and the single-page apps' fallback (an app's route is its index.html, so
 * a reload or a shared link of `/orders/<id>` or `/admin/cluster` works).
 *
 * The cluster view reads the broker's own registry (`$node.list` with services) and each live
 * node's metrics (`$node.metrics`, called on that node), so it shows what Moleculer itself sees.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import compression from "compression";
import type { Context, ServiceSchema } from "moleculer";
import type { ApiSettingsSchema } from "moleculer-web";
import { SERVICE_NAMES } from "../../lib/config";
import type { ShopMeta } from "../../lib/types";

/** The built front-end (`vite build` in `prepare`): dist/web, from the sources (ts-jest) or from dist/. */
const PROJECT_DIR = path.resolve(__dirname, "../..");
export const WEB_DIR = path.basename(PROJECT_DIR) === "dist" ? path.join(PROJECT_DIR, "web") : path.join(PROJECT_DIR, "dist", "web");

/** Content-hashed build output: never changes under its name. */
const IMMUTABLE = "public, max-age=31536000, immutable";
/** Pages: always revalidated (ETag), so a new build is picked up at once. */
const REVALIDATE = "no-cache";
/** Scripts, styles, images and API calls only from the shop itself: nothing from the internet. */
const CONTENT_SECURITY_POLICY =
	"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

function setCachingHeaders(res: ServerResponse, filePath: string): void {
	const relative = path.relative(WEB_DIR, filePath).split(path.sep);
	res.setHeader("Cache-Control", relative[0] === "assets" ? IMMUTABLE : REVALIDATE);
	res.setHeader("X-Content-Type-Options", "nosniff");
	if (filePath.endsWith(".html")) {
		res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
		res.setHeader("Referrer-Policy", "same-origin");
	}
}

/** The storefront's own routes (web/src/storefront/main.tsx); the back office routes everything under /admin. */
const STOREFRONT_ROUTES = /^\/(?:cart|login|register|orders|orders\/[^/]+|products\/[^/]+)$/;

/**
 * The page a client-side route is served by (a reload, or a link shared, of `/orders/<id>` or
 * `/admin/cluster`), or null: a file, or a path no app knows (a plain 404).
 */
export function spaFallback(url: string): string | null {
	const [pathname, query = ""] = url.split(/\?(.*)/s, 2);
	const page = pathname === "/admin" || pathname.startsWith("/admin/") ? "/admin/index.html" : STOREFRONT_ROUTES.test(pathname) ? "/index.html" : null;
	if (page === null || pathname.slice(pathname.lastIndexOf("/") + 1).includes(".")) return null;
	return query ? `${page}?${query}` : page;
}

const API_PREFIX = /^\/api(?:[/?#]|$)/;

type Serve = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

// --- The cluster view ----------------------------------------------------------------------------

/** One node as `$node.list({ withServices: true })` answers it (the fields read here). */
interface RegistryNode {
	id: string;
	available: boolean;
	local: boolean;
	hostname?: string;
	cpu?: number | null;
	lastHeartbeatTime?: number | null;
	services?: Array<{ name: string }>;
}

/** A metric as `$node.metrics` answers it. */
interface MetricSnapshot {
	name: string;
	values: Array<{ labels: Record<string, unknown>; value: number }>;
}

export interface ClusterNode {
	id: string;
	/**
	 * Sends heartbeats: false (grey) once none arrived within the heartbeat timeout. Moleculer's
	 * registry applies that rule on a timer of the same period (so it notices between one and two
	 * timeouts late); here it is applied to the registry's own heartbeat times when asked.
	 */
	available: boolean;
	/** Seconds since its last heartbeat arrived (0 for the gateway itself). */
	silentFor: number;
	/** The node answering this request (the gateway). */
	local: boolean;
	hostname: string | null;
	cpu: number | null;
	/** When its last heartbeat arrived. */
	lastSeen: string | null;
	services: string[];
	/** Requests this node handled since it started (its own counters); null when it cannot be asked. */
	requests: number | null;
	errors: number | null;
	/** Requests handled per action, e.g. `payments.capture`: how the load is shared. */
	actions: Record<string, number>;
}

export interface ClusterAnswer {
	gateway: string;
	/** Seconds without a heartbeat after which a node counts as gone. */
	heartbeatTimeout: number;
	/** Each service of the shop and the live nodes that run it: ready when every one has some. */
	services: Record<string, string[]>;
	ready: boolean;
	nodes: ClusterNode[];
	at: string;
}

const isShopService = (name: string) => !name.startsWith("$");

/** Sums a node's local request counters (its own handling, not the calls it made), internal `$node` calls left out. */
function requestCounts(metrics: MetricSnapshot[]): Pick<ClusterNode, "requests" | "errors" | "actions"> {
	let requests = 0;
	let errors = 0;
	const actions: Record<string, number> = {};
	for (const metric of metrics) {
		for (const { labels, value } of metric.values) {
			const action = String(labels.action ?? "");
			if (labels.type !== "local" || !isShopService(action)) continue;
			if (metric.name === "moleculer.request.total") {
				requests += value;
				actions[action] = (actions[action] ?? 0) + value;
			} else if (metric.name === "moleculer.request.error.total") errors += value;
		}
	}
	return { requests, errors, actions };
}

/** The registry stamps heartbeats with this process's `Math.round(process.uptime())`: as a date. */
const fromUptime = (seconds: number | null | undefined) =>
	typeof seconds === "number" ? new Date(Date.now() - (process.uptime() - seconds) * 1000).toISOString() : null;

// --- The mixin -------------------------------------------------------------------------------------

export const WebMixin: Partial<ServiceSchema<ApiSettingsSchema>> = {
	settings: {
		assets: {
			folder: WEB_DIR,
			options: { index: ["index.html"], redirect: false, fallthrough: true, setHeaders: setCachingHeaders }
		}
	},

	actions: {
		cluster: {
			rest: "GET /cluster",
			auth: "admin",
			cache: false,
			async handler(ctx: Context<unknown, ShopMeta>): Promise<ClusterAnswer> {
				const listed = await ctx.call<RegistryNode[], { withServices: boolean }>("$node.list", { withServices: true });
				const timeout = this.broker.options.heartbeatTimeout ?? 15;
				const nodes = await Promise.all(
					listed.map(async (node): Promise<ClusterNode> => {
						const services = (node.services ?? []).map(service => service.name).filter(isShopService);
						const silentFor = node.local || node.lastHeartbeatTime == null ? 0 : Math.max(0, Math.round(process.uptime()) - node.lastHeartbeatTime);
						const available = node.available && silentFor <= timeout;
						const counted = available
							? await ctx
									.call<MetricSnapshot[], { includes: string[] }>(
										"$node.metrics",
										{ includes: ["moleculer.request.total", "moleculer.request.error.total"] },
										{ nodeID: node.id, timeout: 1500, retries: 0 }
									)
									.then(requestCounts, () => null)
							: null;
						return {
							id: node.id,
							available,
							silentFor,
							local: node.local,
							hostname: node.hostname ?? null,
							cpu: typeof node.cpu === "number" ? node.cpu : null,
							lastSeen: node.local ? new Date().toISOString() : fromUptime(node.lastHeartbeatTime),
							services,
							requests: counted?.requests ?? null,
							errors: counted?.errors ?? null,
							actions: counted?.actions ?? {}
						};
					})
				);
				nodes.sort((a, b) => a.id.localeCompare(b.id));
				const services = Object.fromEntries(
					SERVICE_NAMES.map(name => [name, nodes.filter(node => node.available && node.services.includes(name)).map(node => node.id)])
				);
				return {
					gateway: this.broker.nodeID,
					heartbeatTimeout: timeout,
					services,
					ready: Object.values(services).every(ids => ids.length > 0),
					nodes,
					at: new Date().toISOString()
				};
			}
		}
	},

	started() {
		// moleculer-web builds `this.serve` (serve-static over `settings.assets`) in its `created`; wrapped here, once every `created` has run.
		const serve = (this as unknown as { serve?: Serve }).serve;
		if (!serve) return;
		const compress = compression() as unknown as Serve;
		(this as unknown as { serve: Serve }).serve = (req, res, next) => {
			// moleculer-web has cut a matching route's prefix off `req.url`: the path as the client sent it.
			const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? "/";
			// What /api's routes do not know stays the API's 404, never a page.
			if (API_PREFIX.test(url)) return next();
			req.url = (req.method === "GET" || req.method === "HEAD" ? spaFallback(url) : null) ?? url;
			compress(req, res, err => (err ? next(err) : serve(req, res, next)));
		};
	}
};

/** The alias table's source for the actions above (see lib/rest-aliases.ts): `/api/admin/...`. */
export const webRestSource = { name: "api", settings: { rest: "/admin" }, actions: WebMixin.actions };
