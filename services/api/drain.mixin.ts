/**
 * The gateway's part of a clean stop: it is drained before any service stops.
 *
 * Moleculer 0.15 stops every local service at once (`broker.stop()` runs their `stopped` handlers
 * in parallel, whatever their dependencies), and moleculer-web closes its server only in its own
 * `stopped`: until then it kept taking requests that reached services whose databases were already
 * closed (500s). So the gateway registers a broker `stopping` hook, which Moleculer runs after the
 * node's goodbye to the other nodes and before any service stops. In it the gateway:
 *
 *   1. stops listening, and answers every request that still arrives on an open keep-alive
 *      connection with a 503 in the contract's shape, `Retry-After` and `Connection: close`;
 *   2. lets the requests in flight finish (answered with `Connection: close`), then closes the idle
 *      connections; after the broker's `tracking.shutdownTimeout` it closes what is left.
 *
 * Only then do the services stop, and their databases close last (mixins/db.mixin.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { ServiceBroker, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { ErrorType, type ErrorBody } from "../../lib/errors";

/** Seconds a client is asked to wait before it tries again (another node, or this one restarted). */
export const DRAIN_RETRY_AFTER_S = 2;

/** When the broker gives no tracking timeout. */
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

const STOPPING_BODY: ErrorBody = {
	name: "ServiceNotAvailableError",
	message: "The shop is restarting; please try again in a moment",
	code: 503,
	type: ErrorType.SERVICE_NOT_AVAILABLE,
	data: null
};

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

interface DrainVars {
	/** moleculer-web's HTTP server and its request handler (ApiGateway's). */
	server?: Server;
	httpHandler: RequestListener;
	/** Answers of the requests in flight. */
	inFlight: Set<ServerResponse>;
	draining: boolean;
	/** The request listener this mixin puts in place of moleculer-web's. */
	gatewayListener: RequestListener;
}

interface DrainMethods {
	drain(): Promise<void>;
	refuse(req: IncomingMessage, res: ServerResponse): void;
}

function drainTimeoutMs(broker: ServiceBroker): number {
	const tracking = broker.options.tracking;
	return tracking?.enabled && typeof tracking.shutdownTimeout === "number" ? tracking.shutdownTimeout : DEFAULT_DRAIN_TIMEOUT_MS;
}

const schema: ServiceSchema<ServiceSettingSchema, DrainMethods, DrainVars> = {
	name: "gateway-drain",

	methods: {
		/** A request that arrived after the stop began: a 503 that closes its connection. */
		refuse(req: IncomingMessage, res: ServerResponse): void {
			const body = JSON.stringify(STOPPING_BODY);
			res.writeHead(503, {
				"Content-Type": "application/json; charset=utf-8",
				"Content-Length": Buffer.byteLength(body),
				"Retry-After": String(DRAIN_RETRY_AFTER_S),
				Connection: "close"
			});
			res.end(body);
			// The request's body, if any, is not read: the connection closes after this answer.
			req.resume();
		},

		/** Stops taking requests, waits for those in flight, closes every connection. Safe to call twice. */
		async drain(): Promise<void> {
			const server = this.server;
			if (this.draining || !server) return;
			this.draining = true;
			const started = Date.now();
			const inFlight = this.inFlight.size;
			// Answers still to be written close their connection after them.
			for (const res of this.inFlight) if (!res.headersSent) res.setHeader("Connection", "close");
			const closed = new Promise<void>(resolve => {
				if (!server.listening) return resolve();
				// Resolves once every connection has ended; Node closes the idle ones at once.
				server.close(() => resolve());
			});
			server.closeIdleConnections();
			const timeoutMs = drainTimeoutMs(this.broker);
			let timer: NodeJS.Timeout | undefined;
			const timedOut = new Promise<boolean>(resolve => (timer = setTimeout(() => resolve(true), timeoutMs)));
			const late = await Promise.race([closed.then(() => false), timedOut]);
			clearTimeout(timer);
			if (late) {
				this.logger.warn(`Gateway: ${this.inFlight.size} request(s) still running after ${timeoutMs} ms; closing their connections`);
				server.closeAllConnections();
			}
			this.logger.info(`Gateway drained in ${Date.now() - started} ms (${inFlight} request(s) were in flight).`);
		}
	},

	created() {
		this.inFlight = new Set();
		this.draining = false;
		this.gatewayListener = (req, res) => {
			if (this.draining) return this.refuse(req, res);
			this.inFlight.add(res);
			res.once("close", () => {
				this.inFlight.delete(res);
				// A keep-alive connection that just became idle: closed now rather than at its timeout.
				if (this.draining) this.server?.closeIdleConnections();
			});
			this.httpHandler(req, res);
		};
		// Before any service stops (see above). Registered at run time: only the gateway knows its server.
		this.broker.middlewares.add({ name: "GatewayDrain", stopping: () => this.drain() });
	},

	started() {
		// In front of moleculer-web's handler, which its `created` gave the server.
		if (!this.server) return;
		this.server.removeListener("request", this.httpHandler);
		this.server.on("request", this.gatewayListener);
	}
};

// A mixin's `this` is the service that mixes it in; Moleculer's types cannot say so.
export const DrainMixin = schema as unknown as Partial<ServiceSchema>;
