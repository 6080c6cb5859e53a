import { ServiceBroker, type ServiceSchema } from "moleculer";
import type { Page, Product, ShopMeta, StockLine } from "../../lib/types";
import { DEMO_PRODUCTS } from "../../lib/demo-catalogue";
import InventoryService, { type CreateParams, type ListParams } from "../../services/inventory/inventory.service";
import { dbOf, metaOf, tempDir, unitSettings } from "./helpers";

const admin = { id: "admin-1", email: "admin@shop.test", role: "admin" as const };

describe("inventory service", () => {
	const broker = new ServiceBroker({ logger: false, transporter: null, cacher: "Memory" });
	broker.createService({ name: "inventory", mixins: [InventoryService], settings: unitSettings().inventory } as ServiceSchema);

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	let skuCounter = 0;
	const nextSku = (prefix = "SKU") => `${prefix}-${++skuCounter}`;

	const create = (params: Partial<CreateParams> & Record<string, unknown>, meta: ShopMeta = metaOf(admin)) =>
		broker.call<Product, typeof params>("inventory.create", params, { meta });
	const product = (stock: number, price = 1000, name = "Test product") => create({ sku: nextSku(), name, price, stock });
	const get = (id: string) => broker.call<Product, { id: string }>("inventory.get", { id });
	const stockOf = async (id: string) => (await get(id)).stock;
	const list = (params: { [K in keyof ListParams]?: ListParams[K] | string }) => broker.call<Page<Product>, typeof params>("inventory.list", params);
	const reserve = (orderId: string, items: StockLine[]) =>
		broker.call<{ orderId: string; status: string }, { orderId: string; items: StockLine[] }>("inventory.reserve", { orderId, items });
	const release = (orderId: string) => broker.call<{ orderId: string; status: string }, { orderId: string }>("inventory.release", { orderId });
	const commit = (orderId: string) => broker.call<{ orderId: string; status: string }, { orderId: string }>("inventory.commit", { orderId });
	/** An order's stock hold, straight from the database (undefined: none). */
	const holdOf = (orderId: string) =>
		dbOf(broker.getLocalService("inventory")).one<{ status: string }>("SELECT status FROM holds WHERE order_id = $1", [orderId]);

	describe("create", () => {
		it("answers 201 with the product, its Location, and USD prices in cents", async () => {
			const meta = metaOf(admin);
			const sku = nextSku("MUG");
			const created = await create({ sku, name: "  Mug  ", price: 1299, stock: 7 }, meta);

			expect(meta.$statusCode).toBe(201);
			// Relative to the service's base; the gateway adds /api.
			expect(meta.$location).toBe(`/products/${created.id}`);
			expect(created).toMatchObject({ sku, name: "Mug", description: "", price: 1299, currency: "USD", stock: 7 });
			expect(Object.keys(created).sort()).toEqual(["createdAt", "currency", "description", "id", "name", "price", "sku", "stock", "updatedAt"]);
			await expect(get(created.id)).resolves.toEqual(created);
		});

		it("refuses a taken sku with 409 ALREADY_EXISTS", async () => {
			const sku = nextSku("DUP");
			await create({ sku, name: "First", price: 100, stock: 1 });
			await expect(create({ sku, name: "Second", price: 200, stock: 2 })).rejects.toMatchObject({ code: 409, type: "ALREADY_EXISTS" });
			const { rows } = await list({ search: sku });
			expect(rows.map(row => row.name)).toEqual(["First"]);
		});

		it.each([
			["a negative price", { name: "x", price: -1, stock: 1 }, "price"],
			["a fractional price", { name: "x", price: 9.99, stock: 1 }, "price"],
			["a negative stock", { name: "x", price: 1, stock: -5 }, "stock"],
			["a missing name", { price: 1, stock: 1 }, "name"]
		])("answers 422 for %s", async (_what, params, field) => {
			expect.assertions(2);
			try {
				await create({ sku: nextSku("BAD"), ...params });
			} catch (err) {
				expect(err).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
				expect((err as { data: Array<{ field: string }> }).data.map(item => item.field)).toContain(field);
			}
		});

		it("answers 422 for a sku with spaces or slashes", async () => {
			await expect(create({ sku: "bad sku/1", name: "x", price: 1, stock: 1 })).rejects.toMatchObject({ code: 422 });
		});
	});

	describe("list", () => {
		const pagerIds: string[] = [];
		beforeAll(async () => {
			for (let i = 1; i <= 5; i++) pagerIds.push((await create({ sku: `PAGER-${i}`, name: `Pager ${i}`, price: 100 * i, stock: i })).id);
		});

		it("pages the matching products in creation order, with totals", async () => {
			const page1 = await list({ search: "pager", page: 1, pageSize: 2 });
			const page2 = await list({ search: "pager", page: 2, pageSize: 2 });
			const page3 = await list({ search: "pager", page: 3, pageSize: 2 });
			const page4 = await list({ search: "pager", page: 4, pageSize: 2 });

			expect(page1).toMatchObject({ total: 5, page: 1, pageSize: 2, totalPages: 3 });
			expect(page3).toMatchObject({ total: 5, page: 3, pageSize: 2, totalPages: 3 });
			expect(page4.rows).toEqual([]);
			expect([...page1.rows, ...page2.rows, ...page3.rows].map(row => row.id)).toEqual(pagerIds);
		});

		it("pages with page=1 and pageSize=20 by default, and converts query strings", async () => {
			const byDefault = await list({});
			expect(byDefault).toMatchObject({ page: 1, pageSize: 20 });
			expect(byDefault.rows.length).toBeLessThanOrEqual(20);
			const fromQuery = await list({ search: "pager", page: "2", pageSize: "4" });
			expect(fromQuery).toMatchObject({ page: 2, pageSize: 4, total: 5, totalPages: 2 });
			expect(fromQuery.rows.map(row => row.id)).toEqual([pagerIds[4]]);
		});

		it.each([
			["pageSize above 100", { pageSize: 101 }],
			["pageSize 0", { pageSize: 0 }],
			["page 0", { page: 0 }],
			["a non-numeric page", { page: "abc" }]
		])("answers 422 for %s", async (_what, params) => {
			await expect(list(params)).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		});

		it("searches name and sku, case-insensitively", async () => {
			const bySku = await list({ search: "pager-3" });
			expect(bySku.rows.map(row => row.id)).toEqual([pagerIds[2]]);
			const byName = await list({ search: "PAGER 4" });
			expect(byName.rows.map(row => row.id)).toEqual([pagerIds[3]]);
		});

		it("matches % and _ in the search text literally, not as wildcards", async () => {
			const percent = await create({ sku: "LIT-PCT", name: "Literal 100% cotton", price: 1, stock: 1 });
			const underscore = await create({ sku: "LIT-UND", name: "Literal snake_case mug", price: 1, stock: 1 });
			await create({ sku: "LIT-DECOY", name: "Literal 1000 cotton snakeXcase", price: 1, stock: 1 });
			await create({ sku: "LIT-BSL", name: "Literal back\\slash", price: 1, stock: 1 });

			expect((await list({ search: "%", pageSize: 100 })).rows.map(row => row.id)).toEqual([percent.id]);
			expect((await list({ search: "_", pageSize: 100 })).rows.map(row => row.id)).toEqual([underscore.id]);
			expect((await list({ search: "0% c" })).rows.map(row => row.id)).toEqual([percent.id]);
			expect((await list({ search: "e_c" })).rows.map(row => row.id)).toEqual([underscore.id]);
			expect((await list({ search: "\\" })).total).toBe(1);
			expect((await list({ search: "literal" })).total).toBe(4);
		});

		it("shows a product created after a cached list at once", async () => {
			expect((await list({ search: "freshly-made" })).total).toBe(0);
			await create({ sku: "FRESH-1", name: "Freshly-made bread", price: 350, stock: 3 });
			expect((await list({ search: "freshly-made" })).total).toBe(1);
		});
	});

	describe("get, update, restock", () => {
		it("answers 404 NOT_FOUND for an unknown id", async () => {
			await expect(get("no-such-product")).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
		});

		it("updates name, description and price, never sku or stock, and the next get shows it", async () => {
			const p = await product(4, 500, "Old name");
			await get(p.id); // cached
			const updated = await broker.call<Product, object>(
				"inventory.update",
				{ id: p.id, name: "New name", description: "Now with words", price: 650, sku: "HACKED", stock: 999 },
				{ meta: metaOf(admin) }
			);
			expect(updated).toMatchObject({ id: p.id, sku: p.sku, name: "New name", description: "Now with words", price: 650, stock: 4 });
			expect(await get(p.id)).toEqual(updated);
		});

		it("answers 404 when updating an unknown product", async () => {
			await expect(broker.call("inventory.update", { id: "nope", name: "x" }, { meta: metaOf(admin) })).rejects.toMatchObject({
				code: 404,
				type: "NOT_FOUND"
			});
		});

		it("restocks by the given quantity", async () => {
			const p = await product(2);
			const restocked = await broker.call<Product, object>("inventory.restock", { id: p.id, quantity: 8 }, { meta: metaOf(admin) });
			expect(restocked.stock).toBe(10);
			expect(await stockOf(p.id)).toBe(10);
		});

		it("answers 422 for a restock quantity below 1, 404 for an unknown product, 409 beyond the maximum stock", async () => {
			const p = await product(2);
			await expect(broker.call("inventory.restock", { id: p.id, quantity: 0 })).rejects.toMatchObject({ code: 422 });
			await expect(broker.call("inventory.restock", { id: "nope", quantity: 1 })).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
			await expect(broker.call("inventory.restock", { id: p.id, quantity: 1_000_000_000 })).rejects.toMatchObject({
				code: 409,
				type: "INVALID_STATE"
			});
			expect(await stockOf(p.id)).toBe(2);
		});

		it("getMany answers the known products and leaves unknown ids out", async () => {
			const a = await product(1, 111);
			const b = await product(1, 222);
			const found = await broker.call<Product[], object>("inventory.getMany", { ids: [a.id, "missing", b.id] });
			expect(found.map(p => p.id).sort()).toEqual([a.id, b.id].sort());
		});
	});

	describe("reserve, commit, release", () => {
		it("takes the units out of stock and answers held, with the lines priced as they were taken", async () => {
			const p = await product(5);
			const item = { productId: p.id, sku: p.sku, name: p.name, quantity: 3, unitPrice: p.price };
			await expect(reserve("order-basic", [{ productId: p.id, quantity: 3 }])).resolves.toEqual({ orderId: "order-basic", status: "held", items: [item] });
			expect(await stockOf(p.id)).toBe(2);
		});

		it("answers the lines of a several-line order in its own order, priced as taken, and the same again to a second reserve after a price change", async () => {
			const a = await product(5);
			const b = await product(5);
			// Out of id order on purpose: the stock is taken in id order, the answer keeps the order's.
			const [first, second] = a.id < b.id ? [b, a] : [a, b];
			const lines = [
				{ productId: first.id, quantity: 2 },
				{ productId: second.id, quantity: 1 }
			];
			const items = [
				{ productId: first.id, sku: first.sku, name: first.name, quantity: 2, unitPrice: first.price },
				{ productId: second.id, sku: second.sku, name: second.name, quantity: 1, unitPrice: second.price }
			];
			await expect(reserve("order-priced", lines)).resolves.toEqual({ orderId: "order-priced", status: "held", items });
			await broker.call("inventory.update", { id: first.id, price: first.price + 1 }, { meta: metaOf(admin) });
			await expect(reserve("order-priced", lines)).resolves.toEqual({ orderId: "order-priced", status: "held", items });
			expect(await stockOf(first.id)).toBe(3);
			expect(await stockOf(second.id)).toBe(4);
		});

		it("is all or nothing: one short line fails OUT_OF_STOCK naming it, and the other line keeps its stock", async () => {
			const plenty = await product(10);
			const scarce = await product(1);
			expect.assertions(4);
			try {
				await reserve("order-short", [
					{ productId: plenty.id, quantity: 4 },
					{ productId: scarce.id, quantity: 2 }
				]);
			} catch (err) {
				expect(err).toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
				expect((err as { data: unknown }).data).toEqual({ products: [{ productId: scarce.id, requested: 2, available: 1 }] });
			}
			expect(await stockOf(plenty.id)).toBe(10);
			expect(await stockOf(scarce.id)).toBe(1);
		});

		it("leaves no hold behind after a failed reserve, so the order may try again once restocked", async () => {
			const p = await product(1);
			await expect(reserve("order-retry", [{ productId: p.id, quantity: 2 }])).rejects.toMatchObject({ type: "OUT_OF_STOCK" });
			expect(await holdOf("order-retry")).toBeUndefined();
			await broker.call("inventory.restock", { id: p.id, quantity: 1 });
			await expect(reserve("order-retry", [{ productId: p.id, quantity: 2 }])).resolves.toMatchObject({ status: "held" });
			expect(await stockOf(p.id)).toBe(0);
		});

		it("is idempotent per order id: a second reserve takes nothing more", async () => {
			const p = await product(10);
			await reserve("order-twice", [{ productId: p.id, quantity: 3 }]);
			await expect(reserve("order-twice", [{ productId: p.id, quantity: 3 }])).resolves.toEqual({
				orderId: "order-twice",
				status: "held",
				items: [{ productId: p.id, sku: p.sku, name: p.name, quantity: 3, unitPrice: p.price }]
			});
			expect(await stockOf(p.id)).toBe(7);
		});

		it("release gives the units back once, however often it is called", async () => {
			const p = await product(10);
			await reserve("order-release", [{ productId: p.id, quantity: 4 }]);
			expect(await stockOf(p.id)).toBe(6);
			await expect(release("order-release")).resolves.toEqual({ orderId: "order-release", status: "released" });
			expect(await stockOf(p.id)).toBe(10);
			await expect(release("order-release")).resolves.toEqual({ orderId: "order-release", status: "released" });
			await Promise.all([release("order-release"), release("order-release")]);
			expect(await stockOf(p.id)).toBe(10);
		});

		it("commitMany marks the held holds of many orders committed in one call, and leaves released and unknown ones as they are", async () => {
			const p = await product(10);
			await reserve("order-many-1", [{ productId: p.id, quantity: 1 }]);
			await reserve("order-many-2", [{ productId: p.id, quantity: 2 }]);
			await reserve("order-many-3", [{ productId: p.id, quantity: 3 }]);
			await release("order-many-3");
			const orderIds = ["order-many-1", "order-many-2", "order-many-3", "order-many-1", "order-many-unknown"];
			await expect(broker.call("inventory.commitMany", { orderIds })).resolves.toEqual({ committed: 2 });
			expect((await holdOf("order-many-1"))!.status).toBe("committed");
			expect((await holdOf("order-many-2"))!.status).toBe("committed");
			expect((await holdOf("order-many-3"))!.status).toBe("released");
			expect(await holdOf("order-many-unknown")).toBeUndefined();
			expect(await stockOf(p.id)).toBe(7);
			await expect(broker.call("inventory.commitMany", { orderIds })).resolves.toEqual({ committed: 0 });
		});

		it("a released order cannot reserve again (INVALID_STATE), and takes nothing", async () => {
			const p = await product(10);
			await reserve("order-again", [{ productId: p.id, quantity: 2 }]);
			await release("order-again");
			await expect(reserve("order-again", [{ productId: p.id, quantity: 2 }])).rejects.toMatchObject({ code: 409, type: "INVALID_STATE" });
			expect(await stockOf(p.id)).toBe(10);
		});

		it("release before reserve leaves a tombstone: the late reserve fails INVALID_STATE and takes nothing", async () => {
			const p = await product(5);
			await expect(release("order-late")).resolves.toEqual({ orderId: "order-late", status: "released" });
			expect(await stockOf(p.id)).toBe(5);
			await expect(reserve("order-late", [{ productId: p.id, quantity: 1 }])).rejects.toMatchObject({ code: 409, type: "INVALID_STATE" });
			expect(await stockOf(p.id)).toBe(5);
		});

		it("commit marks the hold sold (idempotent); the stock stays taken", async () => {
			const p = await product(5);
			await reserve("order-commit", [{ productId: p.id, quantity: 2 }]);
			await expect(commit("order-commit")).resolves.toEqual({ orderId: "order-commit", status: "committed" });
			await expect(commit("order-commit")).resolves.toEqual({ orderId: "order-commit", status: "committed" });
			expect((await holdOf("order-commit"))!.status).toBe("committed");
			expect(await stockOf(p.id)).toBe(3);
			// A reserve retried after the commit takes nothing either.
			await expect(reserve("order-commit", [{ productId: p.id, quantity: 2 }])).resolves.toMatchObject({ status: "committed" });
			expect(await stockOf(p.id)).toBe(3);
		});

		it("release after commit (a confirmed order cancelled) puts the units back on sale once", async () => {
			const p = await product(5);
			await reserve("order-cancel-later", [{ productId: p.id, quantity: 2 }]);
			await commit("order-cancel-later");
			await release("order-cancel-later");
			await release("order-cancel-later");
			expect(await stockOf(p.id)).toBe(5);
		});

		it("commit answers 404 without a hold and 409 INVALID_STATE after a release", async () => {
			await expect(commit("order-never-reserved")).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
			const p = await product(5);
			await reserve("order-released-then-commit", [{ productId: p.id, quantity: 1 }]);
			await release("order-released-then-commit");
			await expect(commit("order-released-then-commit")).rejects.toMatchObject({ code: 409, type: "INVALID_STATE" });
			expect(await stockOf(p.id)).toBe(5);
		});

		it("refuses malformed lines with 422", async () => {
			const p = await product(5);
			await expect(reserve("order-bad", [{ productId: p.id, quantity: 0 }])).rejects.toMatchObject({ code: 422 });
			await expect(reserve("order-bad", [])).rejects.toMatchObject({ code: 422 });
			expect(await stockOf(p.id)).toBe(5);
		});

		it("under 30 concurrent reserves of 1 unit on a stock of 20, exactly 20 succeed and the stock ends at 0", async () => {
			const p = await product(20);
			const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => reserve(`order-race-${i}`, [{ productId: p.id, quantity: 1 }])));
			const fulfilled = results.filter(result => result.status === "fulfilled");
			const rejected = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
			expect(fulfilled).toHaveLength(20);
			expect(rejected).toHaveLength(10);
			for (const failure of rejected) expect(failure.reason).toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
			expect(await stockOf(p.id)).toBe(0);
		});

		it("under concurrent mixed reserves and releases the stock never goes negative and adds up", async () => {
			const p = await product(10);
			const reserves = Array.from({ length: 15 }, (_, i) => reserve(`order-mix-${i}`, [{ productId: p.id, quantity: 2 }]));
			const releases = Array.from({ length: 15 }, (_, i) => release(`order-mix-${i}`));
			const settled = await Promise.allSettled([...reserves, ...releases]);
			const held: string[] = [];
			for (let i = 0; i < 15; i++) {
				const hold = await holdOf(`order-mix-${i}`);
				if (hold?.status === "held") held.push(`order-mix-${i}`);
			}
			const stock = await stockOf(p.id);
			expect(stock).toBeGreaterThanOrEqual(0);
			expect(stock + 2 * held.length).toBe(10);
			// Releases always succeed; a reserve fails only for want of stock or after its own release.
			for (const result of settled.slice(15)) expect(result.status).toBe("fulfilled");
			for (const result of settled.slice(0, 15)) {
				if (result.status === "rejected") expect(["OUT_OF_STOCK", "INVALID_STATE"]).toContain((result.reason as { type?: string }).type);
			}
		});
	});
});

describe("inventory service: the demo catalogue (SEED_DEMO)", () => {
	const tmp = tempDir("inventory-seed-");
	afterAll(() => tmp.remove());

	/** A started broker with an inventory service on `file` in the temp dir, as if started with SEED_DEMO=`seedDemo`. */
	async function startWith(seedDemo: boolean, file: string) {
		const broker = new ServiceBroker({ logger: false, transporter: null });
		broker.createService({ name: "inventory", mixins: [InventoryService], settings: { db: `sqlite:${tmp.dir}/${file}`, seedDemo } } as ServiceSchema);
		await broker.start();
		return broker;
	}

	it("gives an empty catalogue the demo products once, and never again on a later start", async () => {
		const first = await startWith(true, "seeded.sqlite");
		try {
			const page = await first.call<Page<Product>, object>("inventory.list", { pageSize: 100 });
			expect(page.total).toBe(DEMO_PRODUCTS.length);
			expect(page.rows.map(p => p.sku).sort()).toEqual(DEMO_PRODUCTS.map(p => p.sku).sort());
			const mug = page.rows.find(p => p.sku === "MUG-001")!;
			await first.call("inventory.reserve", { orderId: "o1", items: [{ productId: mug.id, quantity: 1 }] });
		} finally {
			await first.stop();
		}

		const second = await startWith(true, "seeded.sqlite");
		try {
			const page = await second.call<Page<Product>, object>("inventory.list", { pageSize: 100 });
			expect(page.total).toBe(DEMO_PRODUCTS.length);
			expect(page.rows.find(p => p.sku === "MUG-001")!.stock).toBe(99);
		} finally {
			await second.stop();
		}
	});

	it("leaves the catalogue empty with SEED_DEMO=false", async () => {
		const broker = await startWith(false, "empty.sqlite");
		try {
			await expect(broker.call("inventory.list", {})).resolves.toMatchObject({ total: 0, rows: [] });
		} finally {
			await broker.stop();
		}
	});
});
