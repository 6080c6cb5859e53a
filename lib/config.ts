/**
 * The shop's configuration, read once from the environment (see the env table in README.md).
 *
 * Everything an operator can get wrong is checked here, before the broker starts, so that a bad
 * configuration stops the node with one clear line instead of a crash later.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { Validators } from "moleculer";
import { parse as parsePostgresUrl } from "pg-connection-string";
import { parseSqliteTarget } from "./db/sqlite-url";
import { emailRule } from "./params";

/** Where moleculer-runner finds the services: one folder each, `services/<name>/<name>.service.{ts,js}`. */
export const SERVICES_DIR = path.resolve(__dirname, "../services");

/**
 * The services this build has, read from their folders: a new service is a new folder, and every
 * list of services (SERVICES names, the gateway's routes, readiness) follows.
 */
export const SERVICE_NAMES: readonly string[] = readdirSync(SERVICES_DIR, { withFileTypes: true })
	.filter(entry => entry.isDirectory() && [".js", ".ts"].some(ext => existsSync(path.join(SERVICES_DIR, entry.name, `${entry.name}.service${ext}`))))
	.map(entry => entry.name)
	.sort();

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ShopConfig {
	production: boolean;
	port: number;
	host: string;
	dataDir: string;
	transporterUrl: string | null;
	services: string[];
	nodeID: string | null;
	jwtSecret: string;
	/** True when no JWT_SECRET was given and a random one was made for this process. */
	jwtSecretGenerated: boolean;
	admin: { email: string; password: string } | null;
	logLevel: LogLevel;
	seedDemo: boolean;
	/** 0 turns the Prometheus endpoint off. */
	metricsPort: number;
	/** Logins allowed per client address and minute. */
	loginRateLimit: number;
	// --- Accounts and abuse limits (users service, gateway) ---
	/** Registrations allowed per client address in any minute (sliding window). */
	registerRateLimit: number;
	/**
	 * TRUSTED_PROXIES: addresses or subnets (`127.0.0.1`, `10.0.0.0/8`) of the load balancers in front
	 * of the gateway. Only from these is X-Forwarded-For believed, for the limits per client address.
	 */
	trustedProxies: string[];
	/** scrypt's cost as log2 of N for new password hashes (17: N = 131072, 128 MiB per hash). */
	passwordHashCost: number;
	/** How long the orders service waits for a payment before answering 202 pending. */
	paymentTimeoutMs: number;
	/** A service's own database: `<SERVICE>_DB`, or its SQLite file in DATA_DIR. */
	dbUrl(service: string): string;
	/** TRANSIT_KEY (32 bytes): Moleculer's transit encryption of every bus packet; null leaves the bus unencrypted. */
	transitKey: Buffer | null;
	/** Chaos may be switched on (lib/chaos.ts): always outside production, in production only with CHAOS_ALLOWED=true. */
	chaosAllowed: boolean;
	// --- Tracing (README "Operating the shop / Traces") ---
	tracing: TracingConfig;
}

export interface TracingConfig {
	/** TRACING_ZIPKIN_URL without credentials and trailing slash (spans go to `<url>/api/v2/spans`); null: no Zipkin export. */
	zipkinUrl: string | null;
	/** An `Authorization: Basic` header made from the URL's user and password, if it had them (fetch refuses URLs with credentials). */
	zipkinAuthorization: string | null;
	/** TRACING_SAMPLE_RATE: the fraction of requests traced, 0..1; 0 turns Moleculer's tracer off. */
	sampleRate: number;
}

/** A configuration mistake: its message is the one line printed before the node exits. */
export class ConfigError extends Error {
	override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function parseBoolean(env: Env, key: string, fallback: boolean): boolean {
	const raw = env[key];
	if (raw == null || raw === "") return fallback;
	if (/^(1|true|yes|on)$/i.test(raw)) return true;
	if (/^(0|false|no|off)$/i.test(raw)) return false;
	throw new ConfigError(`${key} must be true or false, got "${raw}"`);
}

function parsePort(env: Env, key: string, fallback: number): number {
	const raw = env[key];
	if (raw == null || raw === "") return fallback;
	const port = Number(raw);
	if (!Number.isInteger(port) || port < 0 || port > 65535) {
		throw new ConfigError(`${key} must be a port number between 0 and 65535, got "${raw}"`);
	}
	return port;
}

function parsePositiveInt(env: Env, key: string, fallback: number): number {
	const raw = env[key];
	if (raw == null || raw === "") return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < 1) {
		throw new ConfigError(`${key} must be a positive integer, got "${raw}"`);
	}
	return value;
}

function parseServices(raw: string | undefined): string[] {
	if (raw == null || raw.trim() === "" || raw.trim() === "*") return [...SERVICE_NAMES];
	const names = raw
		.split(",")
		.map(name => name.trim())
		.filter(Boolean);
	if (names.length === 0) throw new ConfigError(`SERVICES names no service: "${raw}" (known: ${SERVICE_NAMES.join(", ")})`);
	const unknown = names.filter(name => !SERVICE_NAMES.includes(name));
	if (unknown.length > 0) {
		throw new ConfigError(`SERVICES has unknown service name(s): ${unknown.join(", ")} (known: ${SERVICE_NAMES.join(", ")})`);
	}
	return [...new Set(names)];
}

/** TRANSPORTER read: the NATS servers to try (`host:port`) and the one user a node logs in to all of them as. */
export interface NatsServers {
	servers: string[];
	/** Empty when the URLs carry no user (an open bus, development only). */
	user: string;
	password: string;
}

/** What a TRANSPORTER URL looks like in a message: never with its credentials (as for the database URLs). */
const maskCredentials = (text: string) => text.replace(/\/\/[^@/,]*@/g, "//***@");

/**
 * TRANSPORTER: one `nats://[user:password@]host:port` URL, or a comma-separated list of them, one per
 * server of a NATS cluster (the form Moleculer's own NATS transporter reads). The user and password
 * may be written on every URL or on one only; written more than once, they must be the same, since a
 * node logs in to whichever server it reaches as one user.
 */
export function parseNatsServers(raw: string): NatsServers {
	const parts = raw.split(",").map(part => part.trim());
	const servers: string[] = [];
	const credentials = new Set<string>();
	let user = "";
	let password = "";
	for (const part of parts) {
		if (part === "")
			throw new ConfigError(`TRANSPORTER has an empty entry in its list: "${maskCredentials(raw)}" (expected nats://host:4222,nats://host2:4222)`);
		let url: URL;
		try {
			url = new URL(part);
		} catch {
			throw new ConfigError(`TRANSPORTER is not a valid URL: "${maskCredentials(part)}" (expected e.g. nats://127.0.0.1:4222)`);
		}
		if (url.protocol !== "nats:" || url.hostname === "") {
			throw new ConfigError(`TRANSPORTER must be a nats:// URL with a host (or a comma-separated list of them), got "${maskCredentials(part)}"`);
		}
		if (servers.includes(url.host)) throw new ConfigError(`TRANSPORTER lists ${url.host} twice`);
		servers.push(url.host);
		if (url.username || url.password) {
			user = decodeURIComponent(url.username);
			password = decodeURIComponent(url.password);
			credentials.add(`${url.username}:${url.password}`);
		}
	}
	if (credentials.size > 1) {
		throw new ConfigError("TRANSPORTER's URLs carry different users or passwords: a node logs in to every NATS server of its list as one user");
	}
	return { servers, user, password };
}

function parseTransporter(raw: string | undefined): string | null {
	if (raw == null || raw.trim() === "") return null;
	parseNatsServers(raw);
	return raw
		.split(",")
		.map(part => part.trim())
		.join(",");
}

// --- The message bus: TRANSPORTER's credentials and TRANSIT_KEY (README "Security and trust") ----

/**
 * TRANSIT_KEY, 64 hex characters (`openssl rand -hex 32`). In production a node on a transporter
 * must have it, and must log in to NATS (a user in TRANSPORTER's URL): nothing joins the bus, and
 * nothing crosses it readable, without the shop's secrets.
 */
function parseBus(env: Env, production: boolean, transporterUrl: string | null): Buffer | null {
	const raw = env.TRANSIT_KEY?.trim();
	let key: Buffer | null = null;
	if (raw) {
		// The value is a secret: the message never shows it.
		if (!/^[0-9a-fA-F]{64}$/.test(raw))
			throw new ConfigError(`TRANSIT_KEY must be 64 hex characters (32 bytes, e.g. openssl rand -hex 32), got ${raw.length} characters`);
		key = Buffer.from(raw, "hex");
	}
	if (production && transporterUrl) {
		if (!key) throw new ConfigError("TRANSIT_KEY is required when TRANSPORTER is set and NODE_ENV=production (64 hex characters, e.g. openssl rand -hex 32)");
		const { user, password } = parseNatsServers(transporterUrl);
		if (!user || !password) {
			throw new ConfigError("TRANSPORTER must carry this node's NATS user and password (nats://user:password@host:port) when NODE_ENV=production");
		}
	}
	return key;
}

/** TRUSTED_PROXIES: a comma list of IP addresses or CIDR subnets; empty trusts no proxy. */
function parseTrustedProxies(raw: string | undefined): string[] {
	const entries = (raw ?? "")
		.split(",")
		.map(entry => entry.trim())
		.filter(Boolean);
	for (const entry of entries) {
		const [address, prefix] = entry.split("/");
		const family = isIP(address);
		const maxPrefix = family === 6 ? 128 : 32;
		if (family === 0 || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= maxPrefix))) {
			throw new ConfigError(`TRUSTED_PROXIES must be IP addresses or subnets (e.g. 127.0.0.1,10.0.0.0/8), got "${entry}"`);
		}
	}
	return entries;
}

// --- Chaos on purpose (lib/chaos.ts, README "Operating the shop / Chaos") ------------------------

/**
 * CHAOS_ALLOWED: whether this node accepts injected faults. Default: yes in development and tests,
 * no when NODE_ENV=production (a node of a production shop refuses chaos unless this says true).
 */
function parseChaos(env: Env, production: boolean): boolean {
	return parseBoolean(env, "CHAOS_ALLOWED", !production);
}

// --- Tracing: TRACING_ZIPKIN_URL and TRACING_SAMPLE_RATE (README "Operating the shop / Traces") ---

/** TRACING_SAMPLE_RATE's default: chosen from the measured cost of tracing (README "Traces"). */
export const DEFAULT_TRACING_SAMPLE_RATE = 0.1;

function parseTracing(env: Env): TracingConfig {
	const rawRate = env.TRACING_SAMPLE_RATE?.trim();
	let sampleRate = DEFAULT_TRACING_SAMPLE_RATE;
	if (rawRate) {
		sampleRate = Number(rawRate);
		if (!/^(\d+(\.\d*)?|\.\d+)$/.test(rawRate) || !(sampleRate >= 0 && sampleRate <= 1)) {
			throw new ConfigError(`TRACING_SAMPLE_RATE must be a number from 0 to 1 (the fraction of requests traced), got "${rawRate}"`);
		}
	}
	const rawUrl = env.TRACING_ZIPKIN_URL?.trim();
	if (!rawUrl) return { zipkinUrl: null, zipkinAuthorization: null, sampleRate };
	const shown = rawUrl.replace(/\/\/[^@/]*@/, "//***@");
	let url: URL;
	try {
		url = new URL(rawUrl);
	} catch {
		throw new ConfigError(`TRACING_ZIPKIN_URL is not a valid URL: "${shown}" (expected e.g. http://127.0.0.1:9411)`);
	}
	if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "" || url.search !== "" || url.hash !== "") {
		throw new ConfigError(`TRACING_ZIPKIN_URL must be an http:// or https:// base URL without query, got "${shown}"`);
	}
	const zipkinAuthorization = url.username
		? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`
		: null;
	url.username = "";
	url.password = "";
	return { zipkinUrl: url.href.replace(/\/+$/, ""), zipkinAuthorization, sampleRate };
}

/** Whether node-postgres can read the URL (its own parser, which the PostgreSQL adapter's pool uses). */
function parsesAsPostgresUrl(raw: string): boolean {
	try {
		parsePostgresUrl(raw);
		return true;
	} catch {
		return false;
	}
}

function checkDbUrl(key: string, raw: string): string {
	const shown = raw.replace(/\/\/[^@]*@/, "//***@");
	if (!/^(sqlite|postgres|postgresql):/.test(raw)) {
		throw new ConfigError(`${key} must be a sqlite: or postgres:// URL, got "${shown}"`);
	}
	// What the database layer would refuse only once the service starts (with a stack trace), refused here.
	if (raw.startsWith("sqlite:")) {
		try {
			parseSqliteTarget(raw.slice("sqlite:".length));
		} catch (err) {
			throw new ConfigError(`${key}: ${err instanceof Error ? err.message : String(err)}`);
		}
	} else if (!parsesAsPostgresUrl(raw)) {
		throw new ConfigError(`${key} is not a valid URL: "${shown}" (expected e.g. postgres://user:password@host:5432/db)`);
	}
	return raw;
}

/** The lowest and highest PASSWORD_HASH_COST: 2^14 was this shop's first cost; 2^20 needs 1 GiB a hash. */
export const PASSWORD_HASH_COST_RANGE = { min: 14, max: 20, default: 17 } as const;

function parsePasswordHashCost(env: Env): number {
	const raw = env.PASSWORD_HASH_COST;
	if (raw == null || raw === "") return PASSWORD_HASH_COST_RANGE.default;
	const cost = Number(raw);
	if (!Number.isInteger(cost) || cost < PASSWORD_HASH_COST_RANGE.min || cost > PASSWORD_HASH_COST_RANGE.max) {
		throw new ConfigError(
			`PASSWORD_HASH_COST must be an integer from ${PASSWORD_HASH_COST_RANGE.min} to ${PASSWORD_HASH_COST_RANGE.max} (scrypt N = 2^cost), got "${raw}"`
		);
	}
	return cost;
}

export function loadConfig(env: Env = process.env): ShopConfig {
	const production = env.NODE_ENV === "production";

	const logLevel = (env.LOG_LEVEL || "info").toLowerCase();
	if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
		throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${env.LOG_LEVEL}"`);
	}

	const jwtSecretGiven = env.JWT_SECRET != null && env.JWT_SECRET !== "";
	if (production && !jwtSecretGiven) {
		throw new ConfigError("JWT_SECRET is required when NODE_ENV=production");
	}
	if (jwtSecretGiven && env.JWT_SECRET!.length < 16) {
		throw new ConfigError("JWT_SECRET must be at least 16 characters long");
	}

	const adminEmail = env.ADMIN_EMAIL?.trim();
	const adminPassword = env.ADMIN_PASSWORD;
	if (Boolean(adminEmail) !== Boolean(adminPassword)) {
		throw new ConfigError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together");
	}
	if (adminPassword != null && adminPassword !== "" && (adminPassword.length < 8 || adminPassword.length > 128)) {
		throw new ConfigError("ADMIN_PASSWORD must be 8 to 128 characters long");
	}
	// Else the admin account would exist under an address login refuses: an admin nobody can log in as.
	if (adminEmail && new Validators.Fastest().compile({ email: emailRule })({ email: adminEmail }) !== true) {
		throw new ConfigError(`ADMIN_EMAIL must be an email address as login accepts one, got "${adminEmail}"`);
	}

	const dataDir = path.resolve(env.DATA_DIR || "./data");
	const dbUrls = new Map<string, string>();
	for (const service of SERVICE_NAMES) {
		const key = `${service.toUpperCase()}_DB`;
		const raw = env[key];
		dbUrls.set(service, raw ? checkDbUrl(key, raw) : `sqlite:${path.join(dataDir, `${service}.sqlite`)}`);
	}

	const transporterUrl = parseTransporter(env.TRANSPORTER);
	const transitKey = parseBus(env, production, transporterUrl);

	return {
		production,
		port: parsePort(env, "PORT", 3000),
		host: env.HOST || "127.0.0.1",
		dataDir,
		transporterUrl,
		services: parseServices(env.SERVICES),
		nodeID: env.NODEID || null,
		jwtSecret: jwtSecretGiven ? env.JWT_SECRET! : randomBytes(32).toString("hex"),
		jwtSecretGenerated: !jwtSecretGiven,
		admin: adminEmail && adminPassword ? { email: adminEmail, password: adminPassword } : null,
		logLevel: logLevel as LogLevel,
		seedDemo: parseBoolean(env, "SEED_DEMO", !production),
		metricsPort: parsePort(env, "METRICS_PORT", 3030),
		loginRateLimit: parsePositiveInt(env, "LOGIN_RATE_LIMIT", 10),
		// Accounts and abuse limits
		registerRateLimit: parsePositiveInt(env, "REGISTER_RATE_LIMIT", 10),
		passwordHashCost: parsePasswordHashCost(env),
		trustedProxies: parseTrustedProxies(env.TRUSTED_PROXIES),
		paymentTimeoutMs: parsePositiveInt(env, "PAYMENT_TIMEOUT_MS", 1000),
		dbUrl: service => dbUrls.get(service) ?? `sqlite:${path.join(dataDir, `${service}.sqlite`)}`,
		transitKey,
		chaosAllowed: parseChaos(env, production),
		tracing: parseTracing(env)
	};
}

let current: ShopConfig | null = null;

/**
 * The environment, read and checked once per process: moleculer.config.ts reads it first (a bad
 * configuration stops the node there), and each service takes the defaults of its `settings` from
 * it when its module loads. Handlers read `this.settings`, never this; tests pass settings.
 */
export function shopConfig(): ShopConfig {
	current ??= loadConfig();
	return current;
}
