/**
 * api: the moleculer-web REST gateway on PORT, under /api.
 *
 * Routes come from the `rest` lines of the services' actions (see mixins/rest-aliases.ts); every
 * error leaves through `onError`, which turns it into the contract's `{ name, message, code, type,
 * data }` body. Health and readiness are answered here, by the gateway itself.
 */
import type { ServerResponse } from "node:http";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiRouteSchema, type ApiSettingsSchema, type IncomingRequest } from "moleculer-web";
import { shopConfig } from "../lib/config";
import type { ShopMeta } from "../lib/types";
import { AuthMixin } from "../mixins/auth.mixin";
import { toErrorBody } from "../mixins/errors";
import { restAliases } from "../mixins/rest-aliases";
import InventoryService from "./inventory.service";
import OrdersService from "./orders.service";
import PaymentsService from "./payments.service";
import UsersService from "./users.service";

/** The services a request may need: readiness means all of them answer. */
export const BACKEND_SERVICES = ["users", "inventory", "orders", "payments"] as const;

/** Actions limited per client address (brute force on passwords). */
const RATE_LIMITED_ACTIONS = new Set(["users.login"]);

const config = shopConfig();
const aliases = restAliases([
	{ name: "api", settings: { rest: "/health" }, actions: { health: { rest: "GET /" }, ready: { rest: "GET /ready" } } },
	UsersService,
	InventoryService,
	OrdersService,
	PaymentsService
]);
const aliasTable = (filter: (action: string) => boolean) =>
	Object.fromEntries(aliases.filter(alias => filter(alias.action)).map(alias => [alias.route, alias.action]));

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

const commonRoute: ApiRouteSchema = {
	path: "/",
	mappingPolicy: "restrict",
	authentication: true,
	authorization: true,
	bodyParsers: { json: { strict: true, limit: "1mb", reviver: jsonReviver }, urlencoded: false },
	onBeforeCall(ctx: Context<unknown, ShopMeta>, _route: unknown, req: IncomingRequest) {
		const key = req.headers["idempotency-key"];
		if (typeof key === "string") ctx.meta.idempotencyKey = key;
	}
};

export interface ReadyAnswer {
	status: "ready" | "degraded";
	services: Record<(typeof BACKEND_SERVICES)[number], boolean>;
}

const ApiService: ServiceSchema<ApiSettingsSchema> = {
	name: "api",
	mixins: [ApiGateway, AuthMixin],

	settings: {
		port: config.port,
		ip: config.host,
		path: "/api",
		log4XXResponses: false,
		logRequest: "debug",
		logResponse: "debug",
		// Never: request params carry card numbers and passwords, answers carry tokens.
		logRequestParams: null,
		logResponseData: null,
		routes: [
			{
				...commonRoute,
				name: "login",
				aliases: aliasTable(action => RATE_LIMITED_ACTIONS.has(action)),
				rateLimit: {
					window: 60_000,
					limit: config.loginRateLimit,
					headers: true,
					// The socket's address: X-Forwarded-For is the client's to forge.
					key: req => req.socket.remoteAddress ?? "unknown"
				}
			},
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
			if (body.code === 429) res.setHeader("Retry-After", "60");
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
			timeout: 0
		},

		health: {
			handler() {
				return { status: "ok", nodeID: this.broker.nodeID, uptime: Math.round(process.uptime()) };
			}
		},

		ready: {
			handler(ctx: Context<unknown, ShopMeta>): ReadyAnswer {
				const available = new Set(
					this.broker.registry
						.getServiceList({ onlyAvailable: true, skipInternal: true })
						.map((service: { name: string }) => service.name)
				);
				const services = Object.fromEntries(BACKEND_SERVICES.map(name => [name, available.has(name)])) as ReadyAnswer["services"];
				const ready = Object.values(services).every(Boolean);
				if (!ready) ctx.meta.$statusCode = 503;
				return { status: ready ? "ready" : "degraded", services };
			}
		}
	}
};

export default ApiService;
