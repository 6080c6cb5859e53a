/**
 * The contract's error table, one status at a time, each with the exact body shape
 * `{ name, message, code, type, data }`. (429 lives in platform.spec.ts: it needs the default limit.)
 */
import jwt from "jsonwebtoken";
import { client, registerUser, startShop, type ShopProcess } from "../support/shop";
import { ADMIN_ENV, adminToken, createProduct, expectError, expectStatus, getProduct, paymentsOf, placeOrder, unique, type Client } from "./helpers";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../../lib/cards";

const JWT_SECRET = "errors-spec-secret-0123456789abcdef";

describe("error answers", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;
	let customer: { token: string; id: string; email: string };

	beforeAll(async () => {
		shop = await startShop({ env: { ...ADMIN_ENV, JWT_SECRET, LOGIN_RATE_LIMIT: "1000" } });
		api = client(shop.baseUrl);
		admin = await adminToken(api);
		customer = await registerUser(shop.baseUrl, "errors");
	});
	afterAll(async () => {
		await shop?.stop();
	});

	describe("400 INVALID_REQUEST_BODY", () => {
		it.each([
			["an unterminated object", "{bad"],
			["a trailing comma", '{"email":"a@b.test",}'],
			["single quotes", "{'email':'a@b.test'}"],
			["a truncated body", '{"email":"a@b.test","password":"'],
			["two JSON documents", "{} {}"]
		])("malformed JSON (%s) on register", async (_what, raw) => {
			expectError(await api.request("POST", "/api/users/register", { rawBody: raw }), 400, "INVALID_REQUEST_BODY");
		});

		it("malformed JSON on login, product create and order create", async () => {
			expectError(await api.request("POST", "/api/users/login", { rawBody: "{" }), 400, "INVALID_REQUEST_BODY");
			expectError(await api.request("POST", "/api/products", { rawBody: "{]", token: admin }), 400, "INVALID_REQUEST_BODY");
			expectError(await api.request("POST", "/api/orders", { rawBody: '{"items": [}', token: customer.token }), 400, "INVALID_REQUEST_BODY");
		});
	});

	describe("401 UNAUTHORIZED", () => {
		it("no token on every authenticated route", async () => {
			for (const [method, path] of [
				["GET", "/api/users/me"],
				["GET", "/api/orders"],
				["POST", "/api/orders"],
				["GET", "/api/orders/some-id"],
				["POST", "/api/orders/some-id/cancel"],
				["GET", "/api/payments?orderId=x"],
				["POST", "/api/products"],
				["PATCH", "/api/products/some-id"],
				["POST", "/api/products/some-id/restock"]
			]) {
				const res = await api.request(method, path, method === "GET" ? {} : { body: {} });
				expectError(res, 401, "UNAUTHORIZED");
			}
		});

		it("a garbage token, a non-Bearer scheme and an empty Bearer", async () => {
			expectError(await api.get("/api/users/me", { token: "garbage" }), 401, "UNAUTHORIZED");
			expectError(await api.get("/api/users/me", { token: "a.b.c" }), 401, "UNAUTHORIZED");
			expectError(await api.get("/api/users/me", { headers: { authorization: "Basic dXNlcjpwYXNz" } }), 401, "UNAUTHORIZED");
			expectError(await api.get("/api/users/me", { headers: { authorization: "Bearer" } }), 401, "UNAUTHORIZED");
			expectError(await api.get("/api/users/me", { headers: { authorization: customer.token } }), 401, "UNAUTHORIZED");
		});

		it("an oversized token is a bad token (401), not a validation error", async () => {
			expectError(await api.get("/api/users/me", { token: "a".repeat(5000) }), 401, "UNAUTHORIZED");
			expectError(await api.get("/api/orders", { token: `${customer.token}${"x".repeat(5000)}` }), 401, "UNAUTHORIZED");
		});

		it("tokens that are well formed but not acceptable: another secret, expired, none alg, unknown user", async () => {
			const claims = { role: "admin" };
			const otherSecret = jwt.sign(claims, "another-secret-0123456789abcdef", { subject: customer.id, expiresIn: "1h" });
			const expired = jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }, JWT_SECRET, { subject: customer.id });
			const unsigned = jwt.sign(claims, "", { subject: customer.id, algorithm: "none" } as jwt.SignOptions);
			const ghost = jwt.sign(claims, JWT_SECRET, { subject: "no-such-user", expiresIn: "1h" });
			for (const token of [otherSecret, expired, unsigned, ghost]) {
				expectError(await api.get("/api/users/me", { token }), 401, "UNAUTHORIZED");
				// The claim `role: admin` in a rejected token grants nothing.
				expectError(await api.post("/api/products", { sku: unique("X"), name: "x", price: 1, stock: 1 }, { token }), 401, "UNAUTHORIZED");
			}
		});

		it("a wrong password and an unknown email answer the same 401 message", async () => {
			const wrongPassword = await api.post("/api/users/login", { email: customer.email, password: "not the password" });
			const unknownEmail = await api.post("/api/users/login", { email: `nobody-${customer.email}`, password: "not the password" });
			const malformedEmail = await api.post("/api/users/login", { email: "not an email", password: "not the password" });
			expectError(wrongPassword, 401, "UNAUTHORIZED");
			expectError(unknownEmail, 401, "UNAUTHORIZED");
			expectError(malformedEmail, 401, "UNAUTHORIZED");
			expect(unknownEmail.body).toEqual(wrongPassword.body);
			expect(malformedEmail.body).toEqual(wrongPassword.body);
			expect(wrongPassword.body.message).not.toMatch(/password is wrong|no such (user|email)|not found/i);
		});
	});

	describe("403 FORBIDDEN", () => {
		it("a customer may not create, change or restock products, and nothing changes", async () => {
			const product = await createProduct(api, admin, { price: 700, stock: 7 });
			const sku = unique("CUST");
			expectError(await api.post("/api/products", { sku, name: "mine", price: 1, stock: 1 }, { token: customer.token }), 403, "FORBIDDEN");
			expectError(await api.patch(`/api/products/${product.id}`, { price: 1 }, { token: customer.token }), 403, "FORBIDDEN");
			expectError(await api.post(`/api/products/${product.id}/restock`, { quantity: 5 }, { token: customer.token }), 403, "FORBIDDEN");
			expect(await getProduct(api, product.id)).toEqual(product);
			const search = await api.get(`/api/products?search=${sku}`);
			expect(search.body.total).toBe(0);
		});
	});

	describe("404 NOT_FOUND", () => {
		it("an unknown route, under /api and outside it, any method", async () => {
			expectError(await api.get("/api/nope"), 404, "NOT_FOUND");
			expectError(await api.post("/api/nope", {}), 404, "NOT_FOUND");
			expectError(await api.request("DELETE", "/api/products"), 404, "NOT_FOUND");
			expectError(await api.request("PUT", "/api/users/me", { token: customer.token, body: {} }), 404, "NOT_FOUND");
			const outside = await api.get("/nope");
			expect(outside.status).toBe(404);
		});

		it("an unknown product: get, patch, restock, and order it", async () => {
			expectError(await api.get("/api/products/no-such-product"), 404, "NOT_FOUND");
			expectError(await api.patch("/api/products/no-such-product", { price: 5 }, { token: admin }), 404, "NOT_FOUND");
			expectError(await api.post("/api/products/no-such-product/restock", { quantity: 5 }, { token: admin }), 404, "NOT_FOUND");
			expectError(await placeOrder(api, customer.token, [{ productId: "no-such-product", quantity: 1 }]), 404, "NOT_FOUND");
		});

		it("another user's order is not found, exactly like a missing one", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const order = await placeOrder(api, customer.token, [{ productId: product.id, quantity: 1 }]);
			expectStatus(order, 201);
			const other = await registerUser(shop.baseUrl, "other");
			const theirs = await api.get(`/api/orders/${order.body.id}`, { token: other.token });
			const missing = await api.get("/api/orders/no-such-order", { token: other.token });
			expectError(theirs, 404, "NOT_FOUND");
			expectError(missing, 404, "NOT_FOUND");
			expect(theirs.body.message).toBe(missing.body.message);
			expect(JSON.stringify(theirs.body)).not.toContain(customer.id);
			expectError(await api.post(`/api/orders/${order.body.id}/cancel`, {}, { token: other.token }), 404, "NOT_FOUND");
			// Still confirmed, stock still taken.
			expect((await api.get(`/api/orders/${order.body.id}`, { token: customer.token })).body.status).toBe("confirmed");
			expect((await getProduct(api, product.id)).stock).toBe(4);
		});
	});

	describe("409", () => {
		it("OUT_OF_STOCK names the short products, and reserves and charges nothing", async () => {
			const plenty = await createProduct(api, admin, { stock: 10 });
			const scarce = await createProduct(api, admin, { stock: 2 });
			const res = await placeOrder(api, customer.token, [
				{ productId: plenty.id, quantity: 3 },
				{ productId: scarce.id, quantity: 5 }
			]);
			expectError(res, 409, "OUT_OF_STOCK");
			const short = (res.body.data as { products: Array<{ productId: string }> }).products;
			expect(short.map(line => line.productId)).toEqual([scarce.id]);
			expect(short[0]).toMatchObject({ productId: scarce.id, requested: 5, available: 2 });
			expect((await getProduct(api, plenty.id)).stock).toBe(10);
			expect((await getProduct(api, scarce.id)).stock).toBe(2);
			// No order of the customer holds the stock or was charged.
			const orders = (await api.get("/api/orders?pageSize=100", { token: customer.token })).body.rows as any[];
			for (const order of orders.filter(o => o.items.some((item: any) => item.productId === scarce.id))) {
				expect(order.status).toBe("cancelled");
				expect(order.cancelReason).toBe("out_of_stock");
				expect((await paymentsOf(api, customer.token, order.id)).filter(p => p.status === "captured")).toEqual([]);
			}
		});

		it("ALREADY_EXISTS for a taken email, whatever its case", async () => {
			const email = `${unique("Taken")}@Example.TEST`;
			expectStatus(await api.post("/api/users/register", { email, password: "password-one", name: "First" }), 201);
			for (const variant of [email, email.toLowerCase(), email.toUpperCase(), `  ${email}  `]) {
				const res = await api.post("/api/users/register", { email: variant, password: "password-two", name: "Second" });
				expectError(res, 409, "ALREADY_EXISTS");
			}
			// The first account's password still works; the second's does not.
			expectStatus(await api.post("/api/users/login", { email, password: "password-one" }), 200);
			expectError(await api.post("/api/users/login", { email, password: "password-two" }), 401, "UNAUTHORIZED");
		});

		it("ALREADY_EXISTS for a taken sku, and the first product is untouched", async () => {
			const first = await createProduct(api, admin, { price: 111, stock: 3 });
			const res = await api.post("/api/products", { sku: first.sku, name: "Impostor", price: 1, stock: 999 }, { token: admin });
			expectError(res, 409, "ALREADY_EXISTS");
			expect(await getProduct(api, first.id)).toEqual(first);
		});

		it("INVALID_STATE when cancelling an order twice; stock given back once", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const order = await placeOrder(api, customer.token, [{ productId: product.id, quantity: 2 }]);
			expectStatus(order, 201);
			expectStatus(await api.post(`/api/orders/${order.body.id}/cancel`, {}, { token: customer.token }), 200);
			const again = await api.post(`/api/orders/${order.body.id}/cancel`, {}, { token: customer.token });
			expectError(again, 409, "INVALID_STATE");
			expect((await getProduct(api, product.id)).stock).toBe(5);
		});
	});

	describe("402 PAYMENT_DECLINED", () => {
		it("puts the stock back on sale and captures nothing", async () => {
			const product = await createProduct(api, admin, { stock: 4, price: 2500 });
			const res = await placeOrder(api, customer.token, [{ productId: product.id, quantity: 3 }], DECLINED_TEST_CARD);
			expectError(res, 402, "PAYMENT_DECLINED");
			expect((await getProduct(api, product.id)).stock).toBe(4);
			const orders = (await api.get("/api/orders?pageSize=100", { token: customer.token })).body.rows as any[];
			const declined = orders.filter(o => o.items.some((item: any) => item.productId === product.id));
			expect(declined).toHaveLength(1);
			expect(declined[0]).toMatchObject({ status: "cancelled", cancelReason: "payment_declined" });
			const payments = await paymentsOf(api, admin, declined[0].id);
			expect(payments.filter(p => p.status === "captured")).toEqual([]);
			// The units are really on sale: another order can take all of them.
			expectStatus(await placeOrder(api, customer.token, [{ productId: product.id, quantity: 4 }], APPROVED_TEST_CARD), 201);
		});
	});

	describe("413 PAYLOAD_TOO_LARGE", () => {
		it("a body over 1 MB, on a public and on an authenticated route", async () => {
			const big = "x".repeat(1024 * 1024 + 10);
			expectError(await api.post("/api/users/register", { email: "big@example.test", password: "password-big", name: big }), 413, "PAYLOAD_TOO_LARGE");
			expectError(await api.post("/api/orders", { items: [], payment: { card: big } }, { token: customer.token }), 413, "PAYLOAD_TOO_LARGE");
			expectError(await api.request("POST", "/api/users/login", { rawBody: Buffer.alloc(2 * 1024 * 1024, 0x20) }), 413, "PAYLOAD_TOO_LARGE");
			// Nothing was registered.
			expectStatus(await api.post("/api/users/register", { email: "big@example.test", password: "password-big", name: "Big" }), 201);
		});

		it("a body just under 1 MB is read (and then judged on its fields)", async () => {
			const res = await api.post("/api/users/register", { email: "almost@example.test", password: "password-big", name: "x".repeat(1000 * 1000) });
			expectError(res, 422, "VALIDATION_ERROR");
		});
	});

	describe("422 VALIDATION_ERROR", () => {
		const fields = (res: { body: any }) => (res.body.data as Array<{ field: string }>).map(item => item.field).sort();

		it("names each bad field of a registration", async () => {
			const res = await api.post("/api/users/register", { email: "not-an-email", password: "short", name: "" });
			expectError(res, 422, "VALIDATION_ERROR");
			expect(Array.isArray(res.body.data)).toBe(true);
			expect(fields(res)).toEqual(["email", "name", "password"]);
			for (const item of res.body.data) expect(typeof item.message).toBe("string");
			// The rejected values are not echoed back.
			expect(JSON.stringify(res.body)).not.toContain('short"');
		});

		it("password length bounds 8..128", async () => {
			const register = (password: string) => api.post("/api/users/register", { email: `${unique("pw")}@example.test`, password, name: "P" });
			expectError(await register("1234567"), 422, "VALIDATION_ERROR");
			expectStatus(await register("12345678"), 201);
			expectStatus(await register("p".repeat(128)), 201);
			const tooLong = await register("p".repeat(129));
			expectError(tooLong, 422, "VALIDATION_ERROR");
			expect(fields(tooLong)).toEqual(["password"]);
		});

		it("names each bad field of a product", async () => {
			const res = await api.post("/api/products", { sku: "bad sku!", name: "", price: -1, stock: 1.5 }, { token: admin });
			expectError(res, 422, "VALIDATION_ERROR");
			expect(fields(res)).toEqual(["name", "price", "sku", "stock"]);
		});

		it("names a missing field", async () => {
			const res = await api.post("/api/products", { sku: unique("MISS"), name: "no price", stock: 1 }, { token: admin });
			expectError(res, 422, "VALIDATION_ERROR");
			expect(fields(res)).toEqual(["price"]);
		});

		it("names the bad lines and the card of an order", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const res = await api.post(
				"/api/orders",
				{ items: [{ productId: product.id, quantity: 0 }], payment: { card: APPROVED_TEST_CARD } },
				{ token: customer.token }
			);
			expectError(res, 422, "VALIDATION_ERROR");
			expect(fields(res).join(" ")).toMatch(/quantity/);
			for (const card of ["4242424242424241", "1234", "4242 4242 4242 4242", "abcdabcdabcdabcd", "42424242424242424242"]) {
				const bad = await placeOrder(api, customer.token, [{ productId: product.id, quantity: 1 }], card);
				expectError(bad, 422, "VALIDATION_ERROR");
				expect(fields(bad).join(" ")).toMatch(/card/);
			}
			expect((await getProduct(api, product.id)).stock).toBe(5);
		});

		it("order bounds: 1..100 units a line, 1..50 lines", async () => {
			const product = await createProduct(api, admin, { stock: 1000 });
			expectError(await placeOrder(api, customer.token, [{ productId: product.id, quantity: 101 }]), 422, "VALIDATION_ERROR");
			expectError(await placeOrder(api, customer.token, []), 422, "VALIDATION_ERROR");
			const lines = Array.from({ length: 51 }, () => ({ productId: product.id, quantity: 1 }));
			expectError(await placeOrder(api, customer.token, lines), 422, "VALIDATION_ERROR");
			expectStatus(await placeOrder(api, customer.token, [{ productId: product.id, quantity: 100 }]), 201);
			expect((await getProduct(api, product.id)).stock).toBe(900);
		});

		it("an Idempotency-Key longer than 64 characters", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const res = await placeOrder(api, customer.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": "k".repeat(65) });
			expectError(res, 422, "VALIDATION_ERROR");
			expect((await getProduct(api, product.id)).stock).toBe(5);
		});

		it("query parameters: pageSize over 100, page 0, words for numbers", async () => {
			for (const query of ["pageSize=101", "pageSize=0", "page=0", "page=abc", "pageSize=1.5"]) {
				const res = await api.get(`/api/products?${query}`);
				expectError(res, 422, "VALIDATION_ERROR");
				expect(fields(res)).toEqual([query.split("=")[0]]);
			}
			expectError(await api.get("/api/orders?pageSize=101", { token: customer.token }), 422, "VALIDATION_ERROR");
			expectError(await api.get("/api/payments", { token: customer.token }), 422, "VALIDATION_ERROR");
		});
	});
});
