/**
 * Starts the real shop (`moleculer-runner` with the built config, as `npm start` does) as a child
 * process on free ports with its own DATA_DIR, and talks to it over HTTP. Used by the integration
 * and cluster tests and by the benchmark (compiled to dist/test/support/).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { NODE_ARGS, nodeArgsOf, ROOT } from "../../scripts/paths";

export { ROOT };

export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.on("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

export function tempDataDir(prefix = "shop-test-"): string {
	return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface ShopProcess {
	baseUrl: string;
	port: number;
	metricsPort: number;
	dataDir: string;
	child: ChildProcess;
	/** Everything the process printed so far. */
	output(): string;
	/** SIGTERM, and wait for the exit; resolves with the exit code. */
	stop(): Promise<number | null>;
	/** SIGKILL, and wait for the exit. */
	kill(): Promise<void>;
	exited: Promise<number | null>;
}

export interface StartOptions {
	env?: Record<string, string | undefined>;
	dataDir?: string;
	port?: number;
	/** Wait for /api/health/ready (default) or only for /api/health, or not at all (a node without api). */
	waitFor?: "ready" | "health" | "none";
	timeoutMs?: number;
	/** Another checkout to start the node from (its node_modules/ and dist/; a benchmark's "before"); default this one. */
	root?: string;
	/** Node's own options before the runner (e.g. `--cpu-prof`). */
	nodeArgs?: string[];
}

/**
 * Spawns a shop node; resolves once it answers (see `waitFor`). A free port can be taken by another
 * process (an outgoing connection's ephemeral port) between `freePort` and the node's listen: a node
 * that stops on EADDRINUSE with ports chosen here is started again on others.
 */
export async function startShop(options: StartOptions = {}): Promise<ShopProcess> {
	for (let attempt = 1; ; attempt++) {
		try {
			return await startShopOnce(options, options.port ?? (await freePort()), await freePort());
		} catch (err) {
			if (options.port !== undefined || attempt >= 3 || !String(err).includes("EADDRINUSE")) throw err;
		}
	}
}

async function startShopOnce(options: StartOptions, port: number, metricsPort: number): Promise<ShopProcess> {
	const dataDir = options.dataDir ?? tempDataDir();
	const root = options.root ?? ROOT;
	const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...(root === ROOT ? NODE_ARGS : nodeArgsOf(root))], {
		cwd: root,
		env: {
			...process.env,
			NODE_ENV: "test",
			PORT: String(port),
			METRICS_PORT: String(metricsPort),
			DATA_DIR: dataDir,
			LOG_LEVEL: "warn",
			SERVICEDIR: "",
			SERVICES: "",
			// Suites register many accounts from 127.0.0.1; the one that tests the limit unsets this.
			REGISTER_RATE_LIMIT: "100000",
			// scrypt at 2^14, not the default 2^17 (~8x cheaper): suites register hundreds of accounts, many at once.
			PASSWORD_HASH_COST: "14",
			...options.env
		},
		stdio: ["ignore", "pipe", "pipe"]
	});
	let output = "";
	child.stdout!.on("data", chunk => (output += chunk));
	child.stderr!.on("data", chunk => (output += chunk));
	const exited = new Promise<number | null>(resolve => child.once("exit", code => resolve(code)));

	const shop: ShopProcess = {
		baseUrl: `http://127.0.0.1:${port}`,
		port,
		metricsPort,
		dataDir,
		child,
		output: () => output,
		exited,
		async stop() {
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
			return exited;
		},
		async kill() {
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
			await exited;
		}
	};

	const waitFor = options.waitFor ?? "ready";
	if (waitFor !== "none") {
		const deadline = Date.now() + (options.timeoutMs ?? 30_000);
		const url = `${shop.baseUrl}/api/health${waitFor === "ready" ? "/ready" : ""}`;
		for (;;) {
			if (child.exitCode !== null) throw new Error(`Shop exited with ${child.exitCode} before it was ready:\n${output}`);
			try {
				const res = await fetch(url);
				if (res.status === 200) break;
			} catch {
				// not listening yet
			}
			if (Date.now() > deadline) {
				await shop.kill();
				throw new Error(`Shop not ready after ${options.timeoutMs ?? 30_000} ms:\n${output}`);
			}
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	}
	return shop;
}

// `any` by default: JSON answers are shaped by the contract, and each test checks what it reads.
export interface ApiAnswer<T = any> {
	status: number;
	body: T;
	headers: Headers;
}

export interface RequestOptions {
	token?: string;
	body?: unknown;
	/** A raw body sent as is (for malformed JSON). */
	rawBody?: string | Buffer;
	headers?: Record<string, string>;
}

/** One HTTP call to the shop; the body is parsed as JSON when it is JSON. */
export async function request<T = any>(baseUrl: string, method: string, urlPath: string, options: RequestOptions = {}): Promise<ApiAnswer<T>> {
	const headers: Record<string, string> = { ...options.headers };
	if (options.token) headers.authorization = `Bearer ${options.token}`;
	let body: string | Buffer | undefined;
	if (options.rawBody !== undefined) body = options.rawBody;
	else if (options.body !== undefined) body = JSON.stringify(options.body);
	if (body !== undefined && !Object.keys(headers).some(h => h.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
	const res = await fetch(baseUrl + urlPath, { method, headers, body });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text === "" ? null : JSON.parse(text);
	} catch {
		// not JSON: keep the text
	}
	return { status: res.status, body: parsed as T, headers: res.headers };
}

/** A client bound to one shop. */
export function client(baseUrl: string) {
	return {
		get: <T = any>(urlPath: string, options?: RequestOptions) => request<T>(baseUrl, "GET", urlPath, options),
		post: <T = any>(urlPath: string, body?: unknown, options?: RequestOptions) => request<T>(baseUrl, "POST", urlPath, { ...options, body }),
		patch: <T = any>(urlPath: string, body?: unknown, options?: RequestOptions) => request<T>(baseUrl, "PATCH", urlPath, { ...options, body }),
		request: <T = any>(method: string, urlPath: string, options?: RequestOptions) => request<T>(baseUrl, method, urlPath, options)
	};
}

let userCounter = 0;
/** Registers a fresh customer and answers its token and id. */
export async function registerUser(baseUrl: string, prefix = "buyer"): Promise<{ token: string; id: string; email: string }> {
	const email = `${prefix}-${process.pid}-${Date.now()}-${userCounter++}@example.test`;
	let res = await request(baseUrl, "POST", "/api/users/register", { body: { email, password: "correct horse battery", name: prefix } });
	// A 503 is the contract's "try again": users refuses a hash it could not finish in time (many
	// registrations at once on a loaded machine); like a real client, wait and retry.
	for (let attempt = 1; res.status === 503 && attempt <= 10; attempt++) {
		await new Promise(resolve => setTimeout(resolve, 250 * attempt));
		res = await request(baseUrl, "POST", "/api/users/register", { body: { email, password: "correct horse battery", name: prefix } });
	}
	if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
	return { token: res.body.token, id: res.body.user.id, email };
}

/**
 * The sum of a Prometheus metric's samples at a node's `/metrics` (on `metricsPort`), of those whose
 * labels contain `labels` (e.g. `action="payments.capture"`); 0 when it has none.
 */
export async function metricSum(metricsPort: number, name: string, labels = ""): Promise<number> {
	const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
	return text
		.split("\n")
		.filter(line => (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(labels))
		.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

export async function loginAs(baseUrl: string, email: string, password: string): Promise<string> {
	const res = await request(baseUrl, "POST", "/api/users/login", { body: { email, password } });
	if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
	return res.body.token;
}

/** Waits until `check` answers true, or fails after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 200): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await check()) return;
		if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
		await new Promise(resolve => setTimeout(resolve, intervalMs));
	}
}
