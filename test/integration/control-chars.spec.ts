/**
 * Control characters in every string a client can send: NUL, C0 controls, DEL, NEL, the Unicode
 * line/paragraph separators, a lone CRLF and a string made only of a NUL, in every string field of
 * every write route and login, in path ids (URL-encoded), in the product search and in the
 * Idempotency-Key header (as far as fetch lets a client send them).
 *
 * Each answer must be below 500 and, when it is an error, have the contract's error shape. A value
 * the shop takes must read back exactly as sent (fields the shop trims compare with the trimmed
 * value: the control characters sit inside the value, so trimming cannot hide a change to them).
 * Nothing stored before the barrage may change. Failures name the route, the field and the
 * character; a 5xx also carries the server's log line about it.
 */
import { APPROVED_TEST_CARD as APPROVED_CARD } from "../../lib/cards";
import { registerUser, type ApiAnswer } from "../support/shop";
import {
	allOrders,
	describeAnswer,
	errorShapeProblems,
	expectStatus,
	getProduct,
	paymentsOf,
	placeOrder,
	startShopWithAdmin,
	unique,
	type Client,
	type ProductBody
} from "./helpers";
import type { ShopProcess } from "../support/shop";

/** The characters, each put inside a value (`a<ch>b`), or after an id (`<id><ch>`). */
const CHARS: Array<[string, string]> = [
	["U+0000 NUL", "\u0000"],
	["U+0001 SOH", "\u0001"],
	["U+0007 BEL", "\u0007"],
	["U+0008 BS", "\b"],
	["U+0009 TAB", "\t"],
	["U+001B ESC", "\u001b"],
	["U+001F US", "\u001f"],
	["U+007F DEL", "\u007f"],
	["U+0085 NEL", "\u0085"],
	["U+2028 LS", "\u2028"],
	["U+2029 PS", "\u2029"],
	["CR LF", "\r\n"]
];

/** Whole values (not embedded in anything). */
const WHOLE: Array<[string, string]> = [
	['only "\\r\\n"', "\r\n"],
	['only "\\u0000"', "\u0000"]
];

interface Variant {
	/** e.g. `U+0000 NUL inside` */
	label: string;
	value: string;
	/** The character (for a whole value, the value itself). */
	ch: string;
}

/** Every hostile variant of a field whose ordinary value is `ordinary`; `inside` places the character. */
function variants(inside: (ch: string) => string): Variant[] {
	return [...CHARS.map(([name, ch]) => ({ label: name, value: inside(ch), ch })), ...WHOLE.map(([name, value]) => ({ label: name, value, ch: value }))];
}

/** `ab` with the character between its halves. */
const middle =
	(text: string, at = Math.floor(text.length / 2)) =>
	(ch: string) =>
		text.slice(0, at) + ch + text.slice(at);

const show = (value: unknown) => JSON.stringify(value);

describe("control characters in every string a client sends", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;
	let customer: { token: string; id: string; email: string };
	const CUSTOMER_PASSWORD = "correct horse battery"; // registerUser's password
	/** Made before any hostile request: none of it may change. */
	let bystander: ProductBody;
	let bystanderOrder: any;
	let bystanderPayments: any[];
	/** The product orders are placed on (its stock moves only by accepted orders). */
	let stockItem: ProductBody;
	/** Names taken with control characters by POST /api/products, to search for. */
	const storedNames: Array<{ where: string; id: string; name: string }> = [];
	/** What fetch would not send (not a failure of the shop). */
	const notSendable: string[] = [];
	/** Every answer's status, printed at the end with CTL_TRACE=1 (to see what the shop takes and refuses). */
	const trace: string[] = [];

	/** The server's log lines printed since `mark` that explain a failure (SQL errors, "failed:"). */
	function logSince(mark: number): string {
		const lines = shop
			.output()
			.slice(mark)
			// eslint-disable-next-line no-control-regex
			.replace(/\u001b\[[0-9;]*m/g, "")
			.split("\n")
			.map(line => line.trim())
			.filter(line => /failed:|Error\b.*:|SQLITE/.test(line))
			.slice(0, 3);
		return lines.length ? ` | server log: ${lines.join(" / ")}` : " | server log: (nothing)";
	}

	/** One request; a 5xx answer comes back with the server's log lines about it. */
	async function call(
		method: string,
		urlPath: string,
		body?: unknown,
		token?: string,
		headers: Record<string, string> = {}
	): Promise<{ res: ApiAnswer; log: string }> {
		const mark = shop.output().length;
		const res = await api.request(method, urlPath, { body, token, headers });
		let log = "";
		if (res.status >= 500) {
			await new Promise(resolve => setTimeout(resolve, 50)); // the log line may come just after the answer
			log = logSince(mark);
		}
		return { res, log };
	}

	/**
	 * Problems with one answer: a 5xx, an error without the contract's shape, or (with `refuse`) a 2xx
	 * where the value must not be taken. `allowed`: the statuses the call may answer.
	 */
	function judge(where: string, { res, log }: { res: ApiAnswer; log: string }, allowed?: number[]): string[] {
		const at = `${where}: ${describeAnswer(res)}`;
		if (process.env.CTL_TRACE) trace.push(`${res.status} ${where}`);
		if (res.status >= 500) return [`5xx — ${at}${log}`];
		const problems: string[] = [];
		if (res.status >= 400) problems.push(...errorShapeProblems(res).map(problem => `${problem} — ${at}`));
		if (allowed && !allowed.includes(res.status)) problems.push(`status ${res.status} is not one of ${allowed.join("|")} — ${at}`);
		return problems;
	}

	/** A field of the answer and of the stored record must be `expected`. */
	function readBack(where: string, field: string, expected: string, answered: unknown, stored: unknown): string[] {
		if (answered === expected && stored === expected) return [];
		return [`silent change — ${where}: sent ${show(expected)}, answered ${field} ${show(answered)}, stored ${show(stored)}`];
	}

	beforeAll(async () => {
		({ shop, api, admin } = await startShopWithAdmin({ LOGIN_RATE_LIMIT: "100000", LOG_LEVEL: "warn", CI: "1" }));
		customer = await registerUser(shop.baseUrl, "ctl");
		bystander = (
			await api.post(
				"/api/products",
				{ sku: unique("CTL-BYSTANDER"), name: "Bystander", description: "Do not touch", price: 1234, stock: 50 },
				{ token: admin }
			)
		).body;
		stockItem = (await api.post("/api/products", { sku: unique("CTL-STOCK"), name: "Stock", price: 100, stock: 1000 }, { token: admin })).body;
		const order = await placeOrder(api, customer.token, [{ productId: bystander.id, quantity: 2 }]);
		expectStatus(order, 201);
		bystanderOrder = order.body;
		bystander = await getProduct(api, bystander.id);
		bystanderPayments = await paymentsOf(api, customer.token, bystanderOrder.id);
		expect(bystander.stock).toBe(48);
	});

	afterAll(async () => {
		if (trace.length) console.info(trace.join("\n"));
		if (notSendable.length) console.info(`Not sendable by fetch (not a shop failure):\n${notSendable.join("\n")}`);
		await shop?.stop();
	});

	it("POST /api/users/register: email, password, name", async () => {
		const problems: string[] = [];
		const fields: Array<[string, (ch: string) => string]> = [
			["email", ch => `ctl${ch}${unique("x")}@example.test`],
			["password", middle("ctl-password-1")],
			["name", middle("Ctl name")]
		];
		for (const [field, inside] of fields) {
			for (const { label, value, ch } of variants(inside)) {
				const where = `POST /api/users/register ${field} ${label}`;
				const email = field === "email" ? value : `${unique("ctl")}@example.test`;
				const body = { email, password: "ctl-password-1", name: "Ctl", [field]: value };
				const answer = await call("POST", "/api/users/register", body);
				problems.push(...judge(where, answer, [201, 409, 422]));
				if (answer.res.status !== 201) continue;
				const me = await call("GET", "/api/users/me", undefined, answer.res.body.token);
				problems.push(...judge(`${where} (then GET /api/users/me)`, me, [200]));
				if (field === "email") {
					// The email rule normalizes (trim, lower case); the character inside must survive.
					problems.push(...readBack(where, "email", value.trim().toLowerCase(), answer.res.body.user?.email, me.res.body?.email));
				}
				if (field === "name") problems.push(...readBack(where, "name", value.trim(), answer.res.body.user?.name, me.res.body?.name));
				// The account opens with exactly what was sent, and a password without the character does not open it.
				const login = await call("POST", "/api/users/login", { email: body.email, password: body.password });
				problems.push(...judge(`${where} (then login with the same email and password)`, login, [200]));
				if (field === "password") {
					const impostor = value.split(ch).join("");
					const wrong = await call("POST", "/api/users/login", { email: body.email, password: impostor });
					problems.push(...judge(`${where} (then login with the password without the character, ${show(impostor)})`, wrong, [401]));
				}
			}
		}
		expect(problems).toEqual([]);
	});

	it("POST /api/users/login: email, password", async () => {
		const problems: string[] = [];
		const fields: Array<[string, (ch: string) => string]> = [
			["email", ch => customer.email.replace("@", `${ch}@`)],
			["password", middle(CUSTOMER_PASSWORD)]
		];
		for (const [field, inside] of fields) {
			for (const { label, value } of variants(inside)) {
				const answer = await call("POST", "/api/users/login", { email: customer.email, password: CUSTOMER_PASSWORD, [field]: value });
				// Not the customer's email or password: a wrong one (401), or a refused one (422).
				problems.push(...judge(`POST /api/users/login ${field} ${label}`, answer, [401, 422]));
			}
		}
		expect(problems).toEqual([]);
	});

	it("POST /api/products: sku, name, description", async () => {
		const problems: string[] = [];
		const fields: Array<[string, (ch: string) => string]> = [
			["sku", ch => `${unique("CTL")}${ch}X`],
			["name", middle("Ctl name")],
			["description", middle("Ctl description")]
		];
		for (const [field, inside] of fields) {
			for (const { label, value } of variants(inside)) {
				const where = `POST /api/products ${field} ${label}`;
				const body = { sku: unique("CTL"), name: "Ctl", description: "ctl", price: 100, stock: 1, [field]: value };
				const answer = await call("POST", "/api/products", body, admin);
				problems.push(...judge(where, answer, [201, 409, 422]));
				if (answer.res.status !== 201) continue;
				const stored = await call("GET", `/api/products/${encodeURIComponent(answer.res.body.id)}`);
				problems.push(...judge(`${where} (then GET it)`, stored, [200]));
				const expected = field === "description" ? value : value.trim();
				problems.push(...readBack(where, field, expected, answer.res.body[field], stored.res.body?.[field]));
				if (field === "name") storedNames.push({ where, id: answer.res.body.id, name: expected });
			}
		}
		expect(problems).toEqual([]);
	});

	it("PATCH /api/products/:id: id in the path, name, description", async () => {
		const problems: string[] = [];
		for (const { label, value } of variants(ch => `${bystander.id}${ch}`)) {
			const answer = await call("PATCH", `/api/products/${encodeURIComponent(value)}`, { name: "Not the bystander" }, admin);
			problems.push(...judge(`PATCH /api/products/:id id ${label}`, answer, [404, 422]));
		}
		const scratch = (
			await api.post("/api/products", { sku: unique("CTL-SCRATCH"), name: "Scratch", description: "scratch", price: 100, stock: 1 }, { token: admin })
		).body as ProductBody;
		const fields: Array<[string, (ch: string) => string]> = [
			["name", middle("Patched name")],
			["description", middle("Patched description")]
		];
		for (const [field, inside] of fields) {
			for (const { label, value } of variants(inside)) {
				const where = `PATCH /api/products/:id ${field} ${label}`;
				const before = await getProduct(api, scratch.id);
				const answer = await call("PATCH", `/api/products/${scratch.id}`, { [field]: value }, admin);
				problems.push(...judge(where, answer, [200, 422]));
				const stored = await call("GET", `/api/products/${scratch.id}`);
				if (answer.res.status === 200) {
					const expected = field === "description" ? value : value.trim();
					problems.push(...readBack(where, field, expected, answer.res.body[field], stored.res.body?.[field]));
				} else if (show(stored.res.body) !== show(before)) {
					problems.push(`refused (${answer.res.status}) but the product changed — ${where}: ${show(before)} → ${show(stored.res.body)}`);
				}
			}
		}
		expect(problems).toEqual([]);
	});

	it("POST /api/products/:id/restock: id in the path, quantity as a string", async () => {
		const problems: string[] = [];
		for (const { label, value } of variants(ch => `${bystander.id}${ch}`)) {
			const answer = await call("POST", `/api/products/${encodeURIComponent(value)}/restock`, { quantity: 1 }, admin);
			// Not the product's id: nothing to restock.
			problems.push(...judge(`POST /api/products/:id/restock id ${label}`, answer, [404, 422]));
		}
		for (const { label, value } of variants(ch => `1${ch}`)) {
			const answer = await call("POST", `/api/products/${bystander.id}/restock`, { quantity: value }, admin);
			problems.push(...judge(`POST /api/products/:id/restock quantity ${label}`, answer, [422]));
		}
		expect(problems).toEqual([]);
		expect(await getProduct(api, bystander.id)).toEqual(bystander);
	});

	it("POST /api/orders: items[].productId, items[].quantity, payment.card, Idempotency-Key", async () => {
		const problems: string[] = [];
		const valid = () => ({ items: [{ productId: stockItem.id, quantity: 1 }], payment: { card: APPROVED_CARD } });
		const cases: Array<[string, (value: string) => unknown, (ch: string) => string]> = [
			["items[].productId", v => ({ ...valid(), items: [{ productId: v, quantity: 1 }] }), ch => `${stockItem.id}${ch}`],
			["items[].quantity", v => ({ ...valid(), items: [{ productId: stockItem.id, quantity: v }] }), ch => `1${ch}`],
			["payment.card", v => ({ ...valid(), payment: { card: v } }), middle(APPROVED_CARD)]
		];
		for (const [field, body, inside] of cases) {
			for (const { label, value } of variants(inside)) {
				const answer = await call("POST", "/api/orders", body(value), customer.token);
				problems.push(...judge(`POST /api/orders ${field} ${label}`, answer, [404, 422]));
			}
		}
		const stockBefore = (await getProduct(api, stockItem.id)).stock;
		let accepted = 0;
		for (const { label, value } of variants(middle("ctl-key-" + unique("k")))) {
			const where = `POST /api/orders Idempotency-Key ${label}`;
			let first: { res: ApiAnswer; log: string };
			try {
				first = await call("POST", "/api/orders", valid(), customer.token, { "idempotency-key": value });
			} catch (err) {
				// fetch refusing the header before sending anything (its TypeError comes from another realm
				// than jest's: compare by name). Any other failure (a connection the shop dropped) is one.
				const e = err as Error & { cause?: { code?: string; message?: string } };
				const refusedByClient = e?.name === "TypeError" && (e.cause === undefined || e.cause.code === "UND_ERR_INVALID_ARG");
				if (!refusedByClient) {
					problems.push(`no answer — ${where}: ${e?.message} (${e?.cause?.code ?? ""} ${e?.cause?.message ?? ""})`);
					continue;
				}
				notSendable.push(`${where}: ${e.cause?.message ?? e.message}`);
				continue;
			}
			problems.push(...judge(where, first, [201, 422]));
			if (first.res.status !== 201) continue;
			accepted++;
			// The same key again answers the same order: the key was kept exactly.
			const again = await call("POST", "/api/orders", valid(), customer.token, { "idempotency-key": value });
			problems.push(...judge(`${where} (replayed)`, again, [201]));
			if (again.res.body?.id !== first.res.body.id)
				problems.push(`replay with the same key made another order — ${where}: ${first.res.body.id} then ${show(again.res.body?.id)}`);
		}
		expect(problems).toEqual([]);
		expect((await getProduct(api, stockItem.id)).stock).toBe(stockBefore - accepted);
	});

	it("POST /api/orders/:id/cancel: id in the path", async () => {
		const problems: string[] = [];
		for (const { label, value } of variants(ch => `${bystanderOrder.id}${ch}`)) {
			const answer = await call("POST", `/api/orders/${encodeURIComponent(value)}/cancel`, undefined, customer.token);
			problems.push(...judge(`POST /api/orders/:id/cancel id ${label}`, answer, [404, 422]));
		}
		expect(problems).toEqual([]);
		expect((await api.get(`/api/orders/${bystanderOrder.id}`, { token: customer.token })).body.status).toBe("confirmed");
	});

	it("GET /api/products?search=", async () => {
		const problems: string[] = [];
		for (const { label, value } of variants(middle("Ctl name"))) {
			const answer = await call("GET", `/api/products?search=${encodeURIComponent(value)}&pageSize=100`);
			problems.push(...judge(`GET /api/products?search= ${label}`, answer, [200, 422]));
		}
		// A name stored with a control character is found by searching for it.
		for (const { where, id, name } of storedNames) {
			if (name === "") continue;
			const answer = await call("GET", `/api/products?search=${encodeURIComponent(name)}&pageSize=100`);
			problems.push(...judge(`GET /api/products?search= for the name of ${where}`, answer, [200]));
			if (answer.res.status === 200 && !answer.res.body.rows.some((row: ProductBody) => row.id === id))
				problems.push(`search for ${show(name)} does not find the product stored with it (${where}): ${describeAnswer(answer.res)}`);
		}
		expect(problems).toEqual([]);
	});

	it("GET /api/products/:id, GET /api/orders/:id, GET /api/payments?orderId=", async () => {
		const problems: string[] = [];
		for (const { label, value } of variants(ch => `${bystander.id}${ch}`)) {
			const answer = await call("GET", `/api/products/${encodeURIComponent(value)}`);
			problems.push(...judge(`GET /api/products/:id id ${label}`, answer, [404, 422]));
		}
		for (const { label, value } of variants(ch => `${bystanderOrder.id}${ch}`)) {
			const mine = await call("GET", `/api/orders/${encodeURIComponent(value)}`, undefined, customer.token);
			problems.push(...judge(`GET /api/orders/:id id ${label} (owner)`, mine, [404, 422]));
			const asAdmin = await call("GET", `/api/orders/${encodeURIComponent(value)}`, undefined, admin);
			problems.push(...judge(`GET /api/orders/:id id ${label} (admin)`, asAdmin, [404, 422]));
			const payments = await call("GET", `/api/payments?orderId=${encodeURIComponent(value)}`, undefined, customer.token);
			problems.push(...judge(`GET /api/payments?orderId= ${label} (owner)`, payments, [404, 422]));
			// An admin may list the payments of any id; one that is not the order's has none.
			const adminPayments = await call("GET", `/api/payments?orderId=${encodeURIComponent(value)}`, undefined, admin);
			problems.push(...judge(`GET /api/payments?orderId= ${label} (admin)`, adminPayments, [200, 404, 422]));
			if (adminPayments.res.status === 200 && adminPayments.res.body.rows.length > 0)
				problems.push(`GET /api/payments?orderId= ${label} (admin): payments of another order — ${describeAnswer(adminPayments.res)}`);
		}
		expect(problems).toEqual([]);
	});

	it("nothing stored before the barrage changed", async () => {
		expect(await getProduct(api, bystander.id)).toEqual(bystander);
		expectStatus(await api.post("/api/users/login", { email: customer.email, password: CUSTOMER_PASSWORD }), 200);
		const orders = await allOrders(api, admin);
		const { id, status, total, items, updatedAt } = bystanderOrder;
		expect(orders.find(o => o.id === id)).toMatchObject({ id, status, total, items, updatedAt });
		expect(await paymentsOf(api, admin, bystanderOrder.id)).toEqual(bystanderPayments);
		const health = await api.get("/api/health/ready");
		expectStatus(health, 200);
	});
});
