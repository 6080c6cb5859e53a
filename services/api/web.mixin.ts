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
 * The cluster view (lib/cluster-view.ts, shared with the REPL's `cluster` command) reads the broker's
 * own registry and each live node's metrics, so it shows what Moleculer itself sees.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import compression from "compression";
import type { Context, ServiceSchema } from "moleculer";
import type { ApiSettingsSchema } from "moleculer-web";
import { clusterView, type ClusterAnswer } from "../../lib/cluster-view";
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
			handler(ctx: Context<unknown, ShopMeta>): Promise<ClusterAnswer> {
				return clusterView(this.broker, ctx);
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
