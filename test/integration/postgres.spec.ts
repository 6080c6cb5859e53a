/**
 * The shop on PostgreSQL (`<SERVICE>_DB=postgres://...`) instead of its embedded SQLite files: the
 * same contract, including concurrent buyers, cancellation, idempotency and the invariants; and
 * the stores' races that only PostgreSQL's concurrent transactions can produce.
 */
import type { Logger } from "moleculer";
import { auditBooks } from "../support/books";
import { startPostgres, type PostgresServer } from "../support/postgres";
import { client, loginAs, registerUser, startShop, type ShopProcess } from "../support/shop";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../../lib/cards";
import { openDatabase, type Database } from "../../lib/db/database";
import { migrate } from "../../lib/db/migrations";
import { migrations as inventoryMigrations } from "../../services/inventory/inventory.migrations";
import { InventoryStore, type ReserveResult } from "../../services/inventory/inventory.store";
import type { StockLine } from "../../lib/types";

const ADMIN = { email: "admin@pg.test", password: "admin-password-pg" };

let postgres: PostgresServer;
beforeAll(async () => {
	postgres = await startPostgres();
});
afterAll(async () => {
	await postgres?.stop();
});

describe("the shop on PostgreSQL", () => {
	let shop: ShopProcess;
	let api: ReturnType<typeof client>;
	let adminToken: string;

	beforeAll(async () => {
		const urls = await Promise.all(["users", "inventory", "orders", "payments"].map(name => postgres.createDatabase(`shop_${name}`)));
		shop = await startShop({
			env: {
				USERS_DB: urls[0],
				INVENTORY_DB: urls[1],
				ORDERS_DB: urls[2],
				PAYMENTS_DB: urls[3],
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				LOGIN_RATE_LIMIT: "1000"
			}
		});
		api = client(shop.baseUrl);
		adminToken = await loginAs(shop.baseUrl, ADMIN.email, ADMIN.password);
	});

	afterAll(async () => {
		await shop?.stop();
	});

	it("seeds and searches the catalogue", async () => {
		const all = await api.get("/api/products?pageSize=100");
		expect(all.body.total).toBe(6);
		const found = await api.get("/api/products?search=MUG");
		expect(found.body.rows.map((p: { sku: string }) => p.sku)).toEqual(["MUG-001"]);
	});

	it("sells exactly the stock to concurrent buyers, keeps cancellations and idempotency, and balances the books", async () => {
		const product = (await api.post("/api/products", { sku: "PG-1", name: "Postgres product", price: 500, stock: 10 }, { token: adminToken })).body;
		expect((await api.post(`/api/products/${product.id}/restock`, { quantity: 5 }, { token: adminToken })).body.stock).toBe(15);
		const buyers = await Promise.all(Array.from({ length: 20 }, () => registerUser(shop.baseUrl)));
		const answers = await Promise.all(
			buyers.map(buyer =>
				api.post("/api/orders", { items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token: buyer.token })
			)
		);
		const confirmed = answers.filter(res => res.status === 201);
		expect(confirmed).toHaveLength(15);
		expect(answers.filter(res => res.status === 409).map(res => res.body.type)).toEqual(Array(5).fill("OUT_OF_STOCK"));
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(0);
		const cancelled = confirmed[0].body.id as string;
		const owner = buyers[answers.indexOf(confirmed[0])];
		expect((await api.post(`/api/orders/${cancelled}/cancel`, {}, { token: owner.token })).status).toBe(200);
		expect((await api.post(`/api/orders/${cancelled}/cancel`, {}, { token: owner.token })).status).toBe(409);
		expect((await api.get(`/api/payments?orderId=${cancelled}`, { token: owner.token })).body.rows.map((p: { status: string }) => p.status)).toEqual([
			"refunded"
		]);
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(1);

		const declined = await api.post(
			"/api/orders",
			{ items: [{ productId: product.id, quantity: 1 }], payment: { card: DECLINED_TEST_CARD } },
			{ token: buyers[0].token }
		);
		expect(declined.status).toBe(402);
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(1);

		const headers = { "idempotency-key": "pg-once" };
		const [first, second] = await Promise.all([
			api.post("/api/orders", { items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token: owner.token, headers }),
			api.post("/api/orders", { items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token: owner.token, headers })
		]);
		expect(first.status).toBe(201);
		expect(second.status).toBe(201);
		expect(second.body.id).toBe(first.body.id);

		const books = await auditBooks({ baseUrl: shop.baseUrl, adminToken, expectedStock: new Map([[product.id, 15]]), settleWithinMs: 10_000 });
		expect(books.problems).toEqual([]);
		expect(books.orders.filter(order => order.status === "confirmed")).toHaveLength(15);
	});
});

describe("InventoryStore on PostgreSQL", () => {
	const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {} } as unknown as Logger;
	let db: Database;
	let store: InventoryStore;

	beforeAll(async () => {
		db = await openDatabase(await postgres.createDatabase("shop_holds"), logger);
		await migrate(db, inventoryMigrations, logger);
		store = new InventoryStore(db);
	});
	afterAll(async () => {
		await db?.close();
	});

	// Several lines: a transaction with the hold's lock; one line: the same without a savepoint (writeLocked) on SQLite, here the same lock.
	it.each([
		["several lines", "race"],
		["one line", "race1"]
	])("reserve and release of the same order, racing, never leave stock held for a released order (%s)", async (_case, prefix) => {
		const STOCK = 100_000;
		for (const id of [`${prefix}-a`, `${prefix}-b`]) {
			await store.insertProduct({ id, sku: `SKU-${id}`, name: id, description: "", price: 100, stock: STOCK });
		}
		const lines: StockLine[] =
			prefix === "race"
				? [
						{ productId: `${prefix}-b`, quantity: 2 },
						{ productId: `${prefix}-a`, quantity: 1 }
					]
				: [{ productId: `${prefix}-b`, quantity: 2 }];
		const ORDERS = 300;
		const orderIds = Array.from({ length: ORDERS }, (_, i) => `${prefix}-order-${String(i).padStart(4, "0")}`);
		// Both calls of an order leave at once, in alternating order of issue.
		const settled = await Promise.all(
			orderIds.map(async (orderId, i) => {
				const reserve = () => store.reserve(orderId, lines);
				const release = () => store.release(orderId);
				const [reserved, released] = await (i % 2 === 0
					? Promise.allSettled([reserve(), release()])
					: Promise.allSettled([release(), reserve()]).then(([b, a]) => [a, b] as const));
				return { orderId, reserved, released } as {
					orderId: string;
					reserved: PromiseSettledResult<ReserveResult>;
					released: PromiseSettledResult<StockLine[]>;
				};
			})
		);

		const failures = settled.flatMap(race => [race.reserved, race.released].flatMap(call => (call.status === "rejected" ? [String(call.reason)] : [])));
		// A reserve that held stock was followed by the release that gave it back, and only then.
		const inconsistent = settled.filter(race => {
			const held = race.reserved.status === "fulfilled" && "status" in race.reserved.value && race.reserved.value.status === "held";
			const gaveBack = race.released.status === "fulfilled" && race.released.value.length > 0;
			return held !== gaveBack;
		});
		const outcome = {
			// Every call answered (no unique violation between a release's placeholder and a reserve).
			failures: [...new Set(failures)],
			failedCalls: failures.length,
			inconsistentOrders: inconsistent.length,
			// Every hold is released, and no unit is missing.
			holds: await db.all<{ status: string; count: number }>(
				"SELECT status, COUNT(*) AS count FROM holds WHERE order_id LIKE $1 GROUP BY status ORDER BY status",
				[`${prefix}-order-%`]
			),
			stock: await db.all<{ id: string; stock: number }>("SELECT id, stock FROM products WHERE id IN ($1, $2) ORDER BY id", [`${prefix}-a`, `${prefix}-b`])
		};
		expect(outcome).toEqual({
			failures: [],
			failedCalls: 0,
			inconsistentOrders: 0,
			holds: [{ status: "released", count: ORDERS }],
			stock: [
				{ id: `${prefix}-a`, stock: STOCK },
				{ id: `${prefix}-b`, stock: STOCK }
			]
		});
	});
});
