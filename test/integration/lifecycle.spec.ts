/**
 * Stop and start again on the same DATA_DIR and JWT_SECRET: tokens, users, orders and stock survive,
 * and SIGTERM ends the node cleanly. A bad configuration stops a node at once with one clear line.
 */
import { client, startShop, tempDataDir, type ShopProcess } from "../support/shop";
import { ADMIN, ADMIN_ENV, adminToken, createProduct, expectError, expectStatus, paymentsOf, placeOrder, runUntilExit, unique, type Client } from "./helpers";

const JWT_SECRET = "lifecycle-spec-secret-0123456789";

describe("lifecycle", () => {
	const dataDir = tempDataDir("shop-restart-");
	let first: ShopProcess;
	let second: ShopProcess | undefined;

	beforeAll(async () => {
		first = await startShop({ dataDir, env: { ...ADMIN_ENV, JWT_SECRET, LOGIN_RATE_LIMIT: "1000" } });
	});
	afterAll(async () => {
		await first?.stop();
		await second?.stop();
	});

	it("SIGTERM exits 0 quickly, and a restart keeps tokens, users, orders, payments, stock and the catalogue", async () => {
		let api: Client = client(first.baseUrl);
		const admin = await adminToken(api);
		const email = `${unique("survivor")}@example.test`;
		const reg = await api.post("/api/users/register", { email, password: "survivor-password", name: "Survivor" });
		expectStatus(reg, 201);
		const { token, user } = reg.body;
		const product = await createProduct(api, admin, { price: 777, stock: 9 });
		const order = await placeOrder(api, token, [{ productId: product.id, quantity: 4 }]);
		expectStatus(order, 201);
		const cancelled = await placeOrder(api, token, [{ productId: product.id, quantity: 1 }]);
		expectStatus(cancelled, 201);
		expectStatus(await api.post(`/api/orders/${cancelled.body.id}/cancel`, {}, { token }), 200);
		const catalogue = (await api.get("/api/products?pageSize=100")).body;
		const ordersBefore = (await api.get("/api/orders", { token })).body;

		const stopping = Date.now();
		const code = await first.stop();
		const stopMs = Date.now() - stopping;
		expect(code).toBe(0);
		expect(stopMs).toBeLessThan(10_000);
		expect(first.output()).not.toMatch(/\bERROR\b|Unhandled|uncaught/i);

		second = await startShop({ dataDir, env: { ...ADMIN_ENV, JWT_SECRET, LOGIN_RATE_LIMIT: "1000" } });
		api = client(second.baseUrl);

		// The old token still works and shows the same user.
		const me = await api.get("/api/users/me", { token });
		expectStatus(me, 200);
		expect(me.body).toEqual(user);
		expectStatus(await api.post("/api/users/login", { email, password: "survivor-password" }), 200);
		expectError(await api.post("/api/users/register", { email, password: "another-password", name: "Dup" }), 409, "ALREADY_EXISTS");

		// Orders, their statuses and payments, the stock and the catalogue (not seeded twice).
		expect((await api.get("/api/orders", { token })).body).toEqual(ordersBefore);
		const again = await api.get(`/api/orders/${order.body.id}`, { token });
		expectStatus(again, 200);
		expect(again.body).toEqual(order.body);
		expect((await api.get(`/api/orders/${cancelled.body.id}`, { token })).body.status).toBe("cancelled");
		expect((await paymentsOf(api, token, order.body.id)).map(p => [p.status, p.amount])).toEqual([["captured", 4 * 777]]);
		expect((await paymentsOf(api, token, cancelled.body.id)).map(p => p.status)).toEqual(["refunded"]);
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(5);
		expect((await api.get("/api/products?pageSize=100")).body).toEqual(catalogue);

		// The restarted shop takes new orders on the old data.
		const more = await placeOrder(api, token, [{ productId: product.id, quantity: 5 }]);
		expectStatus(more, 201);
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(0);
	});

	it("ADMIN_PASSWORD given at a start resets the admin's password", async () => {
		const dir = tempDataDir("shop-admin-");
		const a = await startShop({ dataDir: dir, env: { ...ADMIN_ENV, JWT_SECRET } });
		try {
			await adminToken(client(a.baseUrl));
		} finally {
			expect(await a.stop()).toBe(0);
		}
		const b = await startShop({ dataDir: dir, env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: "a-brand-new-password", JWT_SECRET } });
		try {
			const api = client(b.baseUrl);
			expectError(await api.post("/api/users/login", { email: ADMIN.email, password: ADMIN.password }), 401, "UNAUTHORIZED");
			const res = await api.post("/api/users/login", { email: ADMIN.email, password: "a-brand-new-password" });
			expectStatus(res, 200);
			expect(res.body.user.role).toBe("admin");
		} finally {
			expect(await b.stop()).toBe(0);
		}
	});

	describe("a bad configuration exits non-zero with one clear line on stderr", () => {
		// Objects, not arrays: a row shorter than the test's parameters would make jest take the last one for `done`.
		const cases: Array<{ what: string; env: Record<string, string | undefined>; mentions: RegExp; hidden?: string }> = [
			{ what: "an unknown service", env: { SERVICES: "nope" }, mentions: /SERVICES.*nope/ },
			{ what: "a transporter that is not a URL", env: { TRANSPORTER: "not a url" }, mentions: /TRANSPORTER/ },
			{ what: "production without JWT_SECRET", env: { NODE_ENV: "production", JWT_SECRET: undefined }, mentions: /JWT_SECRET/ },
			{
				what: "a SQLite URL with an option it does not know",
				env: { ORDERS_DB: "sqlite:./orders.sqlite?synchronous=off" },
				mentions: /ORDERS_DB.*synchronous=off/
			},
			{
				what: "a PostgreSQL URL that is not a URL (its password not shown)",
				env: { USERS_DB: "postgres://shop:pw-S3cret@[db/shop" },
				mentions: /USERS_DB/,
				hidden: "pw-S3cret"
			},
			{
				what: "an ADMIN_EMAIL that login would refuse (an admin nobody could log in as)",
				env: { ADMIN_EMAIL: "root-at-shop", ADMIN_PASSWORD: "admin-pass-123" },
				mentions: /ADMIN_EMAIL.*root-at-shop/
			}
		];
		it.each(cases)("$what", async ({ env, mentions, hidden }) => {
			const exit = await runUntilExit(env);
			expect(exit.signal).toBeNull();
			expect(exit.code).not.toBeNull();
			expect(exit.code).not.toBe(0);
			expect(exit.ms).toBeLessThan(10_000);
			const lines = exit.stderr.split("\n").filter(line => line.trim() !== "");
			expect(lines).toHaveLength(1);
			expect(lines[0]).toMatch(mentions);
			if (hidden) expect(exit.stderr + exit.stdout).not.toContain(hidden);
			expect(lines[0].length).toBeLessThan(300);
			expect(lines[0]).not.toMatch(/\bat .*\(|node_modules|Error: .*\n/);
			expect(exit.stdout.trim()).toBe("");
		});
	});
});
