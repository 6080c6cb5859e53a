/**
 * Hostile bodies on every write route: wrong types, objects where strings belong, arrays for
 * objects, huge strings, NaN-like strings, 2^53 and 1e308, negative and fractional quantities, NUL
 * bytes, unpaired surrogates, `__proto__`/`constructor` keys, empty/null/scalar bodies, wrong
 * Content-Type. Never a 5xx, always the error shape, and nothing stored changes.
 */
import { client, registerUser, startShop, type ApiAnswer, type ShopProcess } from "../support/shop";
import {
	ADMIN_ENV,
	adminToken,
	allOrders,
	createProduct,
	describeAnswer,
	errorShapeProblems,
	expectStatus,
	getProduct,
	mapLimit,
	paymentsOf,
	placeOrder,
	rawRequest,
	unique,
	type Client,
	type ProductBody
} from "./helpers";
import { APPROVED_TEST_CARD } from "../../lib/cards";

const HUGE = "x".repeat(100_000);

/** Values no string field may accept. */
const NOT_STRINGS: Array<[string, unknown]> = [
	["a number", 123],
	["zero", 0],
	["true", true],
	["null", null],
	["an empty array", []],
	["an array of strings", ["a", "b"]],
	["an empty object", {}],
	["an operator object", { $gt: "" }],
	["an object with toString", { toString: "x", valueOf: 1 }],
	["a nested object", { a: { b: { c: "d" } } }],
	["a 100 kB string", HUGE]
];

/** Values no integer field of the shop accepts (prices, stocks and quantities alike). */
const NOT_NUMBERS: Array<[string, unknown]> = [
	['"1"', "1"],
	['"NaN"', "NaN"],
	['"Infinity"', "Infinity"],
	['"-Infinity"', "-Infinity"],
	['"1e3"', "1e3"],
	['"0x10"', "0x10"],
	["an empty string", ""],
	["2^53", 2 ** 53],
	["2^53 + 2", 2 ** 53 + 2],
	["1e308", 1e308],
	["-1e308", -1e308],
	["-1", -1],
	["0.5", 0.5],
	["-0.5", -0.5],
	["1.0000001", 1.0000001],
	["5e-324", Number.MIN_VALUE],
	["true", true],
	["null", null],
	["[1]", [1]],
	["{}", {}],
	["{valueOf}", { valueOf: 1 }],
	["a 100 kB numeric string", "9".repeat(100_000)]
];

/** Raw JSON number literals JSON.stringify cannot produce. */
const RAW_NUMBERS = ["1e309", "-1e309", "9007199254740993", "-0.0", "1E400", "123456789012345678901234567890"];

/** Strings a text field may take or refuse, but must store exactly as answered if it takes them. */
const ODD_STRINGS: Array<[string, string]> = [
	["a NUL byte", "a\u0000b"],
	["only NUL", "\u0000"],
	["a lone high surrogate", "x\ud800y"],
	["a lone low surrogate", "\udfffz"],
	["a reversed pair", "\udc00\ud800"],
	['"NaN"', "NaN"],
	["emoji", "mug \u{1F37A} ok"],
	["control characters", "a\u0001\u001f\u007f\u2028b"]
];

interface Route {
	name: string;
	method: string;
	path: () => string;
	token: () => string | undefined;
	/** A valid body (fresh for each case). */
	base: () => Record<string, unknown>;
	strings: string[];
	numbers: string[];
	/** Paths of object or array values. */
	containers: Array<[string, "object" | "array"]>;
	/** Fields that may be left out (null may then mean "not given"). */
	optional: string[];
	/** A valid base is itself accepted (so whole-body junk must not fall back to it). */
	emptyBodyMayPass?: boolean;
}

interface Case {
	label: string;
	body?: unknown;
	raw?: string | Buffer;
	headers?: Record<string, string>;
	/** "reject": a 4xx; "any": anything but a 5xx (the route may ignore what it got). */
	expect: "reject" | "any";
}

function clone<T>(value: T): T {
	return JSON.parse(JSON.stringify(value)) as T;
}

/** The body with `path` (dotted, numeric parts index arrays) set to `value`. */
function withValue(base: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
	const body = clone(base);
	const parts = path.split(".");
	let holder: any = body;
	for (const part of parts.slice(0, -1)) holder = holder[part];
	holder[parts[parts.length - 1]] = value;
	return body;
}

/** The body as JSON text with `path` replaced by a raw literal. */
function withRaw(base: Record<string, unknown>, path: string, literal: string): string {
	const marker = "__RAW_LITERAL__";
	return JSON.stringify(withValue(base, path, marker)).replace(`"${marker}"`, literal);
}

function casesFor(route: Route): Case[] {
	const cases: Case[] = [];
	for (const field of route.strings) {
		for (const [label, value] of NOT_STRINGS) {
			const optionalNull = value === null && route.optional.includes(field);
			cases.push({ label: `${field} = ${label}`, body: withValue(route.base(), field, value), expect: optionalNull ? "any" : "reject" });
		}
	}
	for (const field of route.numbers) {
		for (const [label, value] of NOT_NUMBERS) {
			const optionalNull = value === null && route.optional.includes(field);
			cases.push({ label: `${field} = ${label}`, body: withValue(route.base(), field, value), expect: optionalNull ? "any" : "reject" });
		}
		for (const literal of RAW_NUMBERS) {
			// -0.0 is zero: a price or stock may be 0 (a real change, not hostile); a quantity may not.
			if (literal === "-0.0" && /price|stock/.test(field)) continue;
			cases.push({ label: `${field} = ${literal} (raw)`, raw: withRaw(route.base(), field, literal), expect: "reject" });
		}
	}
	for (const [field, kind] of route.containers) {
		const junk: Array<[string, unknown]> = [
			["a string", "x"],
			["a number", 1],
			["null", null],
			["true", true],
			kind === "array" ? ["an object", { 0: clone(route.base()) }] : ["an array", [clone(route.base())]],
			kind === "array" ? ["[null]", [null]] : ["an empty array", []],
			kind === "array" ? ["[[ ]]", [[]]] : ["a nested array", [[1]]],
			kind === "array" ? ['["id"]', ["id"]] : ["[the approved card]", [APPROVED_TEST_CARD]]
		];
		for (const [label, value] of junk) cases.push({ label: `${field} = ${label}`, body: withValue(route.base(), field, value), expect: "reject" });
	}

	// Prototype keys: a field given only by inheritance is not given.
	const valid = route.base();
	const mustHave = Object.keys(valid).filter(key => !route.optional.includes(key));
	if (mustHave.length > 0) {
		cases.push({ label: "required fields only under __proto__", raw: `{"__proto__": ${JSON.stringify(valid)}}`, expect: "reject" });
		cases.push({
			label: "required fields only under constructor.prototype",
			raw: `{"constructor": {"prototype": ${JSON.stringify(valid)}}}`,
			expect: "reject"
		});
		const [first, ...rest] = mustHave;
		const partial = Object.fromEntries(rest.map(key => [key, valid[key]]));
		cases.push({
			label: `${first} only under __proto__`,
			raw: JSON.stringify({ ...partial, x: 0 }).replace(/}$/, `, "__proto__": ${JSON.stringify({ [first]: valid[first] })}}`),
			expect: "reject"
		});
	}

	// Whole bodies.
	const strictMiss = route.emptyBodyMayPass ? "any" : "reject";
	cases.push(
		{ label: "an empty body", raw: "", expect: strictMiss },
		{ label: "no body and no Content-Type", raw: undefined, headers: {}, expect: strictMiss },
		{ label: "JSON null", raw: "null", expect: "reject" },
		{ label: "a JSON string", raw: '"hello"', expect: "reject" },
		{ label: "a JSON number", raw: "42", expect: "reject" },
		{ label: "JSON true", raw: "true", expect: "reject" },
		{ label: "an empty array", raw: "[]", expect: strictMiss },
		{ label: "the valid body inside an array", raw: JSON.stringify([valid]), expect: strictMiss },
		{ label: "malformed JSON", raw: JSON.stringify(valid).slice(0, -1), expect: "reject" },
		{ label: "valid JSON sent as text/plain", raw: JSON.stringify(valid), headers: { "content-type": "text/plain" }, expect: strictMiss },
		{
			label: "valid JSON sent as x-www-form-urlencoded",
			raw: JSON.stringify(valid),
			headers: { "content-type": "application/x-www-form-urlencoded" },
			expect: strictMiss
		},
		{
			label: "form fields",
			raw: new URLSearchParams(Object.entries(valid).map(([k, v]): [string, string] => [k, String(v)])).toString(),
			headers: { "content-type": "application/x-www-form-urlencoded" },
			expect: strictMiss
		},
		{
			label: "multipart",
			raw: '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
			headers: { "content-type": "multipart/form-data; boundary=b" },
			expect: strictMiss
		},
		{
			label: "UTF-8 bytes declared as UTF-16",
			raw: JSON.stringify(valid),
			headers: { "content-type": "application/json; charset=utf-16le" },
			expect: "reject"
		},
		{ label: "an unknown charset", raw: JSON.stringify(valid), headers: { "content-type": "application/json; charset=klingon" }, expect: "reject" },
		{
			label: "gzip garbage",
			raw: Buffer.from("definitely not gzip"),
			headers: { "content-type": "application/json", "content-encoding": "gzip" },
			expect: "reject"
		},
		{
			label: "an unknown Content-Encoding",
			raw: JSON.stringify(valid),
			headers: { "content-type": "application/json", "content-encoding": "zstd-ish" },
			expect: "reject"
		},
		{ label: "invalid UTF-8 bytes", raw: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]), expect: strictMiss },
		{ label: "20 000 nested arrays", raw: "[".repeat(20_000) + "]".repeat(20_000), expect: strictMiss },
		{
			label: "a 10 000 deep object in a field",
			raw: JSON.stringify(withValue(valid, Object.keys(valid)[0] ?? "x", "@@")).replace('"@@"', '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000)),
			expect: "reject"
		},
		{ label: "50 000 unknown keys", raw: JSON.stringify(Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]))), expect: strictMiss },
		{
			label: "duplicate keys, the last one bad",
			raw: JSON.stringify(valid).replace(/}$/, `, ${JSON.stringify(Object.keys(valid)[0] ?? "x")}: {"bad": true}}`),
			expect: Object.keys(valid).length ? "reject" : "any"
		}
	);
	return cases;
}

async function send(api: Client, baseUrl: string, route: Route, c: Case): Promise<ApiAnswer> {
	if ("raw" in c || c.headers) {
		const headers = c.headers ?? { "content-type": "application/json" };
		return rawRequest(baseUrl, route.method, route.path(), c.raw, headers, route.token());
	}
	return api.request(route.method, route.path(), { body: c.body, token: route.token() });
}

/** Problems with one answer (empty when fine). */
function judge(route: Route, c: Case, res: ApiAnswer): string[] {
	const where = `${route.name} / ${c.label}: ${describeAnswer(res)}`;
	if (res.status >= 500) return [`5xx — ${where}`];
	if (res.status >= 400) return errorShapeProblems(res).map(problem => `${problem} — ${where}`);
	if (c.expect === "reject") return [`accepted (${res.status}) what must be refused — ${where}`];
	return [];
}

describe("hostile bodies on every write route", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;
	let customer: { token: string; id: string; email: string };
	let other: { token: string; id: string; email: string };
	let product: ProductBody;
	let customerOrder: any;
	let otherOrder: any;
	const CUSTOMER_PASSWORD = "correct horse battery"; // registerUser's password

	/** What no hostile request may change. */
	async function snapshot() {
		return {
			product: await getProduct(api, product.id),
			productsTotal: (await api.get("/api/products")).body.total,
			customerOrders: (await allOrders(api, customer.token)).map(o => [o.id, o.status, o.total, o.updatedAt]),
			otherOrders: (await allOrders(api, other.token)).map(o => [o.id, o.status, o.total, o.updatedAt]),
			customerPayments: await paymentsOf(api, customer.token, customerOrder.id),
			me: (await api.get("/api/users/me", { token: customer.token })).body
		};
	}

	async function barrage(route: Route, cases = casesFor(route)): Promise<string[]> {
		const answers = await mapLimit(cases, 6, c => send(api, shop.baseUrl, route, c));
		return answers.flatMap((res, i) => judge(route, cases[i], res));
	}

	beforeAll(async () => {
		shop = await startShop({ env: { ...ADMIN_ENV, LOGIN_RATE_LIMIT: "100000" } });
		api = client(shop.baseUrl);
		admin = await adminToken(api);
		customer = await registerUser(shop.baseUrl, "hostile");
		other = await registerUser(shop.baseUrl, "bystander");
		product = await createProduct(api, admin, { name: "Target", description: "Do not touch", price: 1234, stock: 50 });
		const order = await placeOrder(api, customer.token, [{ productId: product.id, quantity: 2 }]);
		expectStatus(order, 201);
		customerOrder = order.body;
		const theirs = await placeOrder(api, other.token, [{ productId: product.id, quantity: 1 }]);
		expectStatus(theirs, 201);
		otherOrder = theirs.body;
		product = await getProduct(api, product.id);
		expect(product.stock).toBe(47);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("POST /api/users/register", async () => {
		const ghost = `${unique("ghost")}@example.test`;
		const route: Route = {
			name: "register",
			method: "POST",
			path: () => "/api/users/register",
			token: () => undefined,
			base: () => ({ email: ghost, password: "ghost-password-1", name: "Ghost" }),
			strings: ["email", "password", "name"],
			numbers: [],
			containers: [],
			optional: []
		};
		const before = await snapshot();
		expect(await barrage(route)).toEqual([]);
		expect(await snapshot()).toEqual(before);
		// None of it created the account: the address is still free.
		expectStatus(await api.post("/api/users/register", route.base()), 201);
	});

	it("POST /api/users/login", async () => {
		const route: Route = {
			name: "login",
			method: "POST",
			path: () => "/api/users/login",
			token: () => undefined,
			base: () => ({ email: customer.email, password: CUSTOMER_PASSWORD }),
			strings: ["email", "password"],
			numbers: [],
			containers: [],
			optional: []
		};
		const before = await snapshot();
		const cases = casesFor(route);
		// A byte order mark before the JSON may be skipped or refused, but is no 5xx.
		cases.push({ label: "a BOM before the JSON", raw: `\ufeff${JSON.stringify(route.base())}`, expect: "any" });
		expect(await barrage(route, cases)).toEqual([]);
		expect(await snapshot()).toEqual(before);
		expectStatus(await api.post("/api/users/login", route.base()), 200);
	});

	it("POST /api/products", async () => {
		const sku = unique("HOSTILE");
		const route: Route = {
			name: "products create",
			method: "POST",
			path: () => "/api/products",
			token: () => admin,
			base: () => ({ sku, name: "Hostile", description: "created by a hostile body", price: 100, stock: 5 }),
			strings: ["sku", "name", "description"],
			numbers: ["price", "stock"],
			containers: [],
			optional: ["description"]
		};
		// A null description may be read as "not given"; nothing else may pass. Keep the sku free for those.
		const cases = casesFor(route).map(c => (c.expect === "any" && c.body ? { ...c, body: { ...(c.body as object), sku: unique("HOSTILE-OK") } } : c));
		const before = await snapshot();
		const problems = await barrage(route, cases);
		expect(problems).toEqual([]);
		const after = await snapshot();
		expect({ ...after, productsTotal: 0 }).toEqual({ ...before, productsTotal: 0 });
		expect((await api.get(`/api/products?search=${sku}`)).body.total).toBe(0);
		// Whatever a null description was taken as, what is stored is a string.
		const created = (await api.get("/api/products?search=HOSTILE-OK&pageSize=100")).body.rows as ProductBody[];
		for (const row of created) expect(typeof row.description).toBe("string");
	});

	it("PATCH /api/products/:id", async () => {
		const route: Route = {
			name: "products patch",
			method: "PATCH",
			path: () => `/api/products/${product.id}`,
			token: () => admin,
			base: () => ({ price: product.price }),
			strings: ["name", "description"],
			numbers: ["price"],
			containers: [],
			optional: ["name", "description", "price"],
			emptyBodyMayPass: true
		};
		const before = await snapshot();
		expect(await barrage(route)).toEqual([]);
		const after = await snapshot();
		// A no-op patch may touch updatedAt; nothing else may change.
		const strip = (s: typeof before) => ({ ...s, product: { ...s.product, updatedAt: "" } });
		expect(strip(after)).toEqual(strip(before));
		expect(after.product).toMatchObject({ name: "Target", description: "Do not touch", price: 1234, stock: 47 });
		product = after.product;
	});

	it("POST /api/products/:id/restock", async () => {
		const route: Route = {
			name: "products restock",
			method: "POST",
			path: () => `/api/products/${product.id}/restock`,
			token: () => admin,
			base: () => ({ quantity: 1 }),
			strings: [],
			numbers: ["quantity"],
			containers: [],
			optional: []
		};
		const before = await snapshot();
		// Only the cases that must be refused: an accepted restock would change the stock.
		const cases = casesFor(route).filter(c => c.expect === "reject");
		expect(await barrage(route, cases)).toEqual([]);
		expect(await snapshot()).toEqual(before);
	});

	it("POST /api/orders", async () => {
		const route: Route = {
			name: "orders create",
			method: "POST",
			path: () => "/api/orders",
			token: () => customer.token,
			base: () => ({ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }),
			strings: ["items.0.productId", "payment.card"],
			numbers: ["items.0.quantity"],
			containers: [
				["items", "array"],
				["items.0", "object"],
				["payment", "object"]
			],
			optional: []
		};
		const before = await snapshot();
		expect(await barrage(route)).toEqual([]);
		expect(await snapshot()).toEqual(before);
		expect((await allOrders(api, admin)).length).toBe(2);
	});

	it("POST /api/orders/:id/cancel", async () => {
		// The body of a cancel means nothing: an `id` in it must not redirect the cancel.
		const missing: Route = {
			name: "cancel an unknown order",
			method: "POST",
			path: () => "/api/orders/no-such-order/cancel",
			token: () => customer.token,
			base: () => ({ id: customerOrder.id, orderId: customerOrder.id }),
			strings: ["id"],
			numbers: [],
			containers: [],
			optional: ["id", "orderId"],
			emptyBodyMayPass: false
		};
		const theirs: Route = { ...missing, name: "cancel another user's order", path: () => `/api/orders/${otherOrder.id}/cancel` };
		const before = await snapshot();
		const problems = [...(await barrage(missing)), ...(await barrage(theirs))];
		expect(problems).toEqual([]);
		expect(await snapshot()).toEqual(before);

		// The customer's own order, cancelled with a hostile body: once, and only once.
		const own: Route = { ...missing, name: "cancel own order", path: () => `/api/orders/${customerOrder.id}/cancel`, base: () => ({ id: otherOrder.id }) };
		const first = await rawRequest(
			shop.baseUrl,
			"POST",
			own.path(),
			`{"id": ${JSON.stringify(otherOrder.id)}, "__proto__": {"id": "x"}, "status": "confirmed"}`,
			{ "content-type": "application/json" },
			customer.token
		);
		expectStatus(first, 200);
		expect(first.body).toMatchObject({ id: customerOrder.id, status: "cancelled" });
		const again = casesFor(own).map(c => ({ ...c, expect: "reject" as const }));
		expect(await barrage(own, again)).toEqual([]);
		expect((await getProduct(api, product.id)).stock).toBe(before.product.stock + 2);
		expect((await paymentsOf(api, customer.token, customerOrder.id)).map(p => p.status)).toEqual(["refunded"]);
		expect((await api.get(`/api/orders/${otherOrder.id}`, { token: other.token })).body.status).toBe("confirmed");
		expect((await allOrders(api, other.token)).map(o => [o.id, o.status, o.total, o.updatedAt])).toEqual(before.otherOrders);
	});

	describe("odd strings are refused, or stored exactly as answered", () => {
		it("register: name and password", async () => {
			const problems: string[] = [];
			for (const [label, value] of ODD_STRINGS) {
				const res = await api.post("/api/users/register", { email: `${unique("odd")}@example.test`, password: "odd-password-1", name: value });
				problems.push(...judge({ name: "register name" } as Route, { label, expect: "any" }, res));
				if (res.status === 201) {
					const me = await api.get("/api/users/me", { token: res.body.token });
					if (me.body.name !== res.body.user.name || res.body.user.name !== value.trim())
						problems.push(
							`register name / ${label}: sent ${JSON.stringify(value)}, answered ${JSON.stringify(res.body.user.name)}, stored ${JSON.stringify(me.body.name)}`
						);
				}
			}
			// Two different passwords must never both open one account.
			const pairs: Array<[string, string]> = [
				["pass\ud800word-1", "pass\udbffword-1"],
				["pass\udc00word-2", "pass\ufffdword-2"],
				["pass\u0000word-3", "pass"]
			];
			for (const [password, impostor] of pairs) {
				const email = `${unique("pw")}@example.test`;
				const res = await api.post("/api/users/register", { email, password, name: "Pw" });
				problems.push(...judge({ name: "register password" } as Route, { label: JSON.stringify(password), expect: "any" }, res));
				if (res.status === 201) {
					const login = await api.post("/api/users/login", { email, password: impostor });
					if (login.status !== 401) problems.push(`password ${JSON.stringify(password)} also opens with ${JSON.stringify(impostor)}: ${describeAnswer(login)}`);
					expectStatus(await api.post("/api/users/login", { email, password }), 200);
				}
			}
			expect(problems).toEqual([]);
		});

		it("products: sku, name and description on create, name and description on patch", async () => {
			const problems: string[] = [];
			const scratch = await createProduct(api, admin, { name: "Scratch", description: "scratch" });
			for (const [label, value] of ODD_STRINGS) {
				for (const field of ["sku", "name", "description"]) {
					const res = await api.post("/api/products", { sku: unique("ODD"), name: "Odd", price: 1, stock: 1, [field]: value }, { token: admin });
					problems.push(...judge({ name: `create ${field}` } as Route, { label, expect: "any" }, res));
					if (res.status === 201) {
						const stored = await getProduct(api, res.body.id);
						const expected = field === "name" ? value.trim() : value;
						if (stored[field as keyof ProductBody] !== expected || res.body[field] !== expected)
							problems.push(
								`create ${field} / ${label}: sent ${JSON.stringify(value)}, answered ${JSON.stringify(res.body[field])}, stored ${JSON.stringify(stored[field as keyof ProductBody])}`
							);
					}
				}
				for (const field of ["name", "description"]) {
					const before = await getProduct(api, scratch.id);
					const res = await api.patch(`/api/products/${scratch.id}`, { [field]: value }, { token: admin });
					problems.push(...judge({ name: `patch ${field}` } as Route, { label, expect: "any" }, res));
					const stored = await getProduct(api, scratch.id);
					if (res.status === 200) {
						const expected = field === "name" ? value.trim() : value;
						if (stored[field as keyof ProductBody] !== expected || res.body[field] !== expected)
							problems.push(
								`patch ${field} / ${label}: sent ${JSON.stringify(value)}, answered ${JSON.stringify(res.body[field])}, stored ${JSON.stringify(stored[field as keyof ProductBody])}`
							);
					} else if (JSON.stringify(stored) !== JSON.stringify(before)) {
						problems.push(`patch ${field} / ${label}: refused (${res.status}) but the product changed`);
					}
				}
			}
			expect(problems).toEqual([]);
		});
	});

	it("extra keys grant nothing: role on register, stock/sku/id on patch, prices on orders", async () => {
		const reg = await rawRequest(
			shop.baseUrl,
			"POST",
			"/api/users/register",
			JSON.stringify({ email: `${unique("extra")}@example.test`, password: "extra-password", name: "Extra", role: "admin", isAdmin: true }).replace(
				/}$/,
				', "__proto__": {"role": "admin"}, "constructor": {"prototype": {"role": "admin"}}}'
			),
			{ "content-type": "application/json" }
		);
		expectStatus(reg, 201);
		expect(reg.body.user.role).toBe("customer");
		const forbidden = await api.post("/api/products", { sku: unique("X"), name: "x", price: 1, stock: 1 }, { token: reg.body.token });
		expect(forbidden.status).toBe(403);

		const target = await createProduct(api, admin, { price: 500, stock: 5 });
		const patched = await rawRequest(
			shop.baseUrl,
			"PATCH",
			`/api/products/${target.id}`,
			`{"__proto__": {"price": 1, "stock": 999}, "constructor": {"prototype": {"price": 2}}, "stock": 1000, "sku": "NEW-SKU", "id": ${JSON.stringify(product.id)}}`,
			{ "content-type": "application/json" },
			admin
		);
		expect(patched.status).toBeLessThan(500);
		const after = await getProduct(api, target.id);
		expect(after).toMatchObject({ price: 500, stock: 5, sku: target.sku });
		expect(await getProduct(api, product.id)).toMatchObject({ price: 1234, name: "Target" });

		const restocked = await rawRequest(
			shop.baseUrl,
			"POST",
			`/api/products/${target.id}/restock`,
			'{"__proto__": {"quantity": 5}}',
			{ "content-type": "application/json" },
			admin
		);
		expect(restocked.status).toBeGreaterThanOrEqual(400);
		expect(restocked.status).toBeLessThan(500);
		expect((await getProduct(api, target.id)).stock).toBe(5);

		const order = await rawRequest(
			shop.baseUrl,
			"POST",
			"/api/orders",
			`{"items": [{"productId": ${JSON.stringify(target.id)}, "quantity": 1, "unitPrice": 1, "__proto__": {"quantity": 5}}], "payment": {"card": "${APPROVED_TEST_CARD}", "amount": 1}, "total": 1, "__proto__": {"userId": ${JSON.stringify(other.id)}}}`,
			{ "content-type": "application/json" },
			customer.token
		);
		expectStatus(order, 201);
		expect(order.body).toMatchObject({ userId: customer.id, total: 500, items: [expect.objectContaining({ quantity: 1, unitPrice: 500 })] });
		expect((await getProduct(api, target.id)).stock).toBe(4);
	});
});
