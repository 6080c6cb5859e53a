/**
 * Helpers shared by the HTTP integration suites (not a suite itself: only `*.spec.ts` files run).
 * Everything goes through the public HTTP API of a shop started by test/support/shop.ts.
 */
import { spawn } from "node:child_process";
import { NODE_ARGS, ROOT } from "../../scripts/paths";
import { allOrders } from "../support/books";
import { client, freePort, startShop, tempDataDir, type ApiAnswer, type RequestOptions, type ShopProcess } from "../support/shop";
import { APPROVED_TEST_CARD } from "../../lib/cards";

export type Client = ReturnType<typeof client>;

export const ADMIN = { email: "admin@shop.test", password: "admin-password-123" } as const;
export const ADMIN_ENV = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password };

/** The contract's error table: the type(s) each status may carry. */
export const TYPES_BY_STATUS: Record<number, string[]> = {
	400: ["INVALID_REQUEST_BODY"],
	401: ["UNAUTHORIZED"],
	402: ["PAYMENT_DECLINED"],
	403: ["FORBIDDEN"],
	404: ["NOT_FOUND"],
	409: ["OUT_OF_STOCK", "ALREADY_EXISTS", "INVALID_STATE"],
	413: ["PAYLOAD_TOO_LARGE"],
	422: ["VALIDATION_ERROR"],
	429: ["RATE_LIMIT_EXCEEDED"],
	503: ["SERVICE_NOT_AVAILABLE"]
};

/** Short text of an answer for failure messages. */
export function describeAnswer(res: ApiAnswer): string {
	const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
	return `HTTP ${res.status} ${String(text).slice(0, 600)}`;
}

/** Fails with the answer's body in the message when the status is not the expected one. */
export function expectStatus(res: ApiAnswer, status: number): void {
	expect({ status: res.status, body: res.body }).toMatchObject({ status });
}

/** What is wrong with an error answer's shape (empty when it is the contract's `{ name, message, code, type, data }`). */
export function errorShapeProblems(res: ApiAnswer): string[] {
	const problems: string[] = [];
	const body = res.body as Record<string, unknown> | null;
	if (body === null || typeof body !== "object" || Array.isArray(body)) return [`body is not a JSON object: ${describeAnswer(res)}`];
	const keys = Object.keys(body).sort();
	if (keys.join(",") !== "code,data,message,name,type") problems.push(`keys are [${keys.join(",")}], not exactly name,message,code,type,data`);
	if (typeof body.name !== "string" || body.name === "") problems.push("name is not a non-empty string");
	if (typeof body.message !== "string" || body.message === "") problems.push("message is not a non-empty string");
	if (body.code !== res.status) problems.push(`code ${String(body.code)} differs from the HTTP status ${res.status}`);
	const allowed = TYPES_BY_STATUS[res.status];
	if (!allowed) problems.push(`status ${res.status} is not in the contract's error table`);
	else if (!allowed.includes(body.type as string))
		problems.push(`type ${String(body.type)} is not the contract's type for ${res.status} (${allowed.join("|")})`);
	if (body.data === undefined) problems.push("data is missing");
	if (/\n\s+at |node_modules|\.js:\d+/.test(JSON.stringify(body))) problems.push("the body leaks a stack trace or file path");
	if (!/^application\/json/.test(res.headers.get("content-type") ?? "")) problems.push(`content-type is ${res.headers.get("content-type")}`);
	return problems;
}

/** Asserts the status, the type and the exact error body shape. */
export function expectError(res: ApiAnswer, status: number, type: string): void {
	expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { code: status, type } });
	expect(errorShapeProblems(res)).toEqual([]);
}

let uniqueCounter = 0;
/** A value unique within this test process and across processes started at the same time. */
export function unique(prefix: string): string {
	return `${prefix}-${process.pid}-${Date.now().toString(36)}-${uniqueCounter++}`;
}

/** A shop started with the admin account, a client of it and the admin's token: most suites' setup. */
export async function startShopWithAdmin(env: Record<string, string> = {}): Promise<{ shop: ShopProcess; api: Client; admin: string }> {
	const shop = await startShop({ env: { ...ADMIN_ENV, ...env } });
	const api = client(shop.baseUrl);
	return { shop, api, admin: await adminToken(api) };
}

export async function adminToken(api: Client): Promise<string> {
	const res = await api.post("/api/users/login", { email: ADMIN.email, password: ADMIN.password });
	expectStatus(res, 200);
	expect(res.body.user.role).toBe("admin");
	return res.body.token;
}

export interface ProductBody {
	id: string;
	sku: string;
	name: string;
	description: string;
	price: number;
	currency: string;
	stock: number;
	createdAt: string;
	updatedAt: string;
}

/** Creates a product as the admin (a unique sku unless given) and answers it. */
export async function createProduct(api: Client, token: string, fields: Record<string, unknown> = {}): Promise<ProductBody> {
	const res = await api.post("/api/products", { sku: unique("SKU"), name: "Test product", price: 1000, stock: 10, ...fields }, { token });
	expectStatus(res, 201);
	return res.body;
}

export async function getProduct(api: Client, id: string): Promise<ProductBody> {
	const res = await api.get(`/api/products/${id}`);
	expectStatus(res, 200);
	return res.body;
}

export type Line = { productId: string; quantity: number };

/** POST /api/orders with the given lines and card; answers the raw answer (any status). */
export function placeOrder(
	api: Client,
	token: string,
	items: Line[],
	card: string = APPROVED_TEST_CARD,
	headers: Record<string, string> = {}
): Promise<ApiAnswer> {
	return api.post("/api/orders", { items, payment: { card } }, { token, headers });
}

/** Every order the token may see, all pages (the books audit's listing). */
export { allOrders };

export async function paymentsOf(api: Client, token: string, orderId: string): Promise<any[]> {
	const res = await api.get(`/api/payments?orderId=${encodeURIComponent(orderId)}`, { token });
	expectStatus(res, 200);
	return res.body.rows;
}

/** Runs `work` over `items` with at most `limit` at a time, answers in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
	const results = new Array<R>(items.length);
	let next = 0;
	const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
		while (next < items.length) {
			const index = next++;
			results[index] = await work(items[index], index);
		}
	});
	await Promise.all(workers);
	return results;
}

/** A raw request with full control of the headers (no JSON encoding, no default Content-Type). */
export async function rawRequest(
	baseUrl: string,
	method: string,
	urlPath: string,
	body: string | Buffer | undefined,
	headers: Record<string, string>,
	token?: string
): Promise<ApiAnswer> {
	const allHeaders: Record<string, string> = { ...headers };
	if (token) allHeaders.authorization = `Bearer ${token}`;
	const res = await fetch(baseUrl + urlPath, { method, headers: allHeaders, body });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text === "" ? null : JSON.parse(text);
	} catch {
		// not JSON
	}
	return { status: res.status, body: parsed, headers: res.headers };
}

export type { RequestOptions };

/** How a node that was started and expected to exit on its own ended. */
export interface Exit {
	code: number | null;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
	ms: number;
}

/**
 * Starts a shop node as `npm start` does, with `env` on top of a test environment, and waits for it
 * to exit by itself (a node with a bad configuration must). Killed after `timeoutMs` (then code null).
 */
export async function runUntilExit(env: Record<string, string | undefined>, timeoutMs = 15_000): Promise<Exit> {
	const started = Date.now();
	const child = spawn(process.execPath, [...NODE_ARGS], {
		cwd: ROOT,
		env: {
			...process.env,
			NODE_ENV: "test",
			PORT: String(await freePort()),
			METRICS_PORT: String(await freePort()),
			DATA_DIR: tempDataDir("shop-badconf-"),
			LOG_LEVEL: "warn",
			SERVICEDIR: "",
			SERVICES: "",
			...env
		},
		stdio: ["ignore", "pipe", "pipe"]
	});
	let stdout = "";
	let stderr = "";
	child.stdout.on("data", chunk => (stdout += chunk));
	child.stderr.on("data", chunk => (stderr += chunk));
	const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
	const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.once("exit", (c, s) => resolve([c, s])));
	clearTimeout(timer);
	return { code, signal, stdout, stderr, ms: Date.now() - started };
}
