/**
 * Broker options for every node of the shop, read by moleculer-runner (`npm start`).
 *
 * The same file serves one process (no transporter) and a cluster on NATS (TRANSPORTER set): the
 * fault-tolerance settings below are tuned so that a dead node costs a client about a second, not
 * the default of hanging until a long timeout.
 */
import type { BrokerOptions, Errors, Middleware, ServiceBroker } from "moleculer";
import { natsReconnects, natsTransporter, transitEncryption } from "./lib/bus";
import { shopMiddlewares } from "./lib/broker-middlewares";
import { BoundedCacher, CACHE_LIMITS, validatedKeygen } from "./lib/cacher";
import { chaosMiddleware } from "./lib/chaos";
import { ConfigError, SERVICES_DIR, shopConfig, type ShopConfig } from "./lib/config";
import { RefusedRetryMiddleware } from "./lib/refused-retry";
import { replCommands } from "./lib/repl";
import { shopTracing, traceLogFormatter } from "./lib/tracing";

function configOrExit(): ShopConfig {
	try {
		return shopConfig();
	} catch (err) {
		if (err instanceof ConfigError) {
			// One clear line and a non-zero exit, as the contract asks of a bad configuration.
			process.stderr.write(`Configuration error: ${err.message}\n`);
			process.exit(1);
		}
		throw err;
	}
}

const config = configOrExit();

// moleculer-runner replaces any option named by an environment variable (TRANSPORTER -> transporter)
// with the variable's raw text: the URL, credentials and all, then readable by any node through
// `$node.options`. The transporter below is built from it (credentials in an authenticator), so the
// runner must not see it.
delete process.env.TRANSPORTER;

// `npm run repl` with TRANSPORTER and no SERVICES: an operator's console joining a running shop (as
// the `ops` NATS user), which runs none of the shop's services itself. moleculer-runner loads nothing
// when neither SERVICES nor SERVICEDIR is set.
const replConsole = process.argv.slice(2).some(arg => arg === "--repl" || arg === "-r") && config.transporterUrl !== null && !process.env.SERVICES;
if (replConsole) {
	delete process.env.SERVICEDIR;
	delete process.env.SERVICES;
} else {
	// moleculer-runner resolves the SERVICES names (`SERVICES=orders,api`) against SERVICEDIR.
	process.env.SERVICEDIR ||= SERVICES_DIR;
	process.env.SERVICES ||= config.services.join(",");
}

// The bus (README "Security and trust"): the node logs in to NATS with TRANSPORTER's user, and every
// packet is encrypted with TRANSIT_KEY by Moleculer's own middleware (required in production).
function busMiddlewares(): Middleware[] {
	if (!config.transporterUrl) return [];
	if (config.transitKey) return [natsReconnects(), transitEncryption(config.transitKey)];
	const warning: Middleware = {
		name: "UnencryptedBus",
		created(broker: ServiceBroker) {
			broker.logger.warn("TRANSIT_KEY is not set: packets cross the bus unencrypted (refused when NODE_ENV=production).");
		}
	};
	return [natsReconnects(), warning];
}

// Traces (README "Operating the shop / Traces"): Moleculer's tracer, and the request id in every log line.
const tracing = shopTracing(config.tracing);

const isServerError = (err: Errors.MoleculerError | Error | undefined) => err != null && "code" in err && typeof err.code === "number" && err.code >= 500;

const brokerConfig: BrokerOptions = {
	namespace: "shop",
	nodeID: config.nodeID ?? undefined,

	logger: {
		type: "Console",
		options: { level: config.logLevel, colors: !process.env.CI, moduleColors: false, formatter: traceLogFormatter as never, autoPadding: false }
	},
	logLevel: config.logLevel,

	transporter: config.transporterUrl ? natsTransporter(config.transporterUrl, { name: config.nodeID ?? undefined }) : null,
	serializer: "JSON",
	// The bus (lib/bus.ts); tracing (lib/tracing.ts); chaos on purpose (lib/chaos.ts): off until switched
	// on, refused where CHAOS_ALLOWED is false; a call a stopping node refused unrun goes to another
	// node, even where retries are off (lib/refused-retry.ts). Then Moleculer's own, listed here with
	// three replaced by cheaper ones (lib/broker-middlewares.ts: timeouts, tracing, metrics), hence
	// `internalMiddlewares: false`: a broker built from these options with other `middlewares` must
	// pass them through `shopMiddlewares` too.
	middlewares: shopMiddlewares([...busMiddlewares(), ...tracing.middlewares, chaosMiddleware({ allowed: config.chaosAllowed }), RefusedRetryMiddleware()]),
	internalMiddlewares: false,

	// The shop's commands in `npm run repl` (lib/repl/): orders, books, cluster, chaos.
	replOptions: { customCommands: replCommands },

	// A call that gets no answer in 5 s fails; the order flow uses its own, shorter timeout for payments.
	// Timed (lib/call-timeouts.ts): every remote call, and the local calls a handler makes with no
	// deadline of its own (each call the gateway makes for a request); not every local call.
	requestTimeout: 5000,
	// Only errors Moleculer marks retryable (timeouts, a node that vanished mid-call) are retried;
	// every internal write action is idempotent per order id, so a retry is safe.
	retryPolicy: {
		enabled: true,
		retries: 2,
		delay: 50,
		maxDelay: 400,
		factor: 2,
		check: (err: Errors.MoleculerError | Error) => err != null && "retryable" in err && Boolean(err.retryable)
	},

	// Fast failure detection: a node killed with -9 sends no goodbye, so its peers notice it from
	// missing heartbeats; 1 s / 4 s keeps that under five seconds.
	heartbeatInterval: 1,
	heartbeatTimeout: 4,

	// Graceful stop: wait for requests in flight, longer than the longest action timeout
	// (orders.create's 12 s), so no handler has its database closed under it; docker-compose.yml
	// gives a node 20 s (stop_grace_period) before it kills it.
	tracking: { enabled: true, shutdownTimeout: 15_000 },

	registry: { strategy: "RoundRobin", preferLocal: true },

	// Stop sending calls to an endpoint that keeps failing; half-open again after 2 s.
	circuitBreaker: {
		enabled: true,
		threshold: 0.5,
		minRequestCount: 4,
		windowTime: 10,
		halfOpenTime: 2000,
		check: isServerError
	},

	bulkhead: { enabled: false },

	// Catalogue reads are cached where they are served; product changes clean it on every node.
	// Bounded (lib/cacher.ts: an LRU of at most 5,000 entries and 8 MB of JSON, entries dropped at
	// their TTL even when read) and keyed on the params as validated, so no client can fill memory.
	// maxParamsLength: long keys (access tokens) are hashed, so no token appears in a cache key or its log line.
	cacher: new BoundedCacher({ ...CACHE_LIMITS, ttl: 30, maxParamsLength: 60, keygen: validatedKeygen() }),

	validator: true,

	metrics: {
		enabled: config.metricsPort > 0,
		reporter: config.metricsPort > 0 ? [{ type: "Prometheus", options: { host: config.host, port: config.metricsPort, path: "/metrics" } }] : []
	},

	tracing: tracing.options
};

export = brokerConfig;
