/**
 * The admin export of orders with their payments (services/orders/export.mixin.ts): keyset pages
 * that neither skip nor repeat an order while others are inserted, the payments of a page from one
 * call to payments, admins only, and the insertion sequence the orders-002 migration adds to an
 * existing database.
 */
import { randomUUID } from "node:crypto";
import { ServiceBroker, type ActionHandler, type ActionSchema, type Context, type Middleware, type Service, type ServiceSchema } from "moleculer";
import { APPROVED_TEST_CARD as APPROVED } from "../../lib/cards";
import { openDatabase } from "../../lib/db/database";
import { migrate } from "../../lib/db/migrations";
import { toErrorBody } from "../../lib/errors";
import type { AuthUser, Payment } from "../../lib/types";
import type { ExportPage } from "../../services/orders/export.mixin";
import { migrations } from "../../services/orders/orders.migrations";
import OrdersService from "../../services/orders/orders.service";
import { OrdersStore, type StoredOrder } from "../../services/orders/orders.store";
import PaymentsService from "../../services/payments/payments.service";
import { metaOf, storeOf, unitSettings } from "./helpers";

const admin: AuthUser = { id: "user-admin", email: "admin@shop.test", role: "admin" };
const customer: AuthUser = { id: "user-alice", email: "alice@shop.test", role: "customer" };

function storedOrder(fields: Partial<StoredOrder> = {}): StoredOrder {
	const now = new Date().toISOString();
	return {
		id: randomUUID(),
		userId: customer.id,
		status: "confirmed",
		items: [{ productId: "product-1", sku: "SKU-1", name: "Mug", quantity: 1, unitPrice: 500 }],
		total: 500,
		cancelReason: null,
		idempotencyKey: null,
		firstResponse: 201,
		ownerNode: "node-1",
		attendedAt: now,
		createdAt: now,
		updatedAt: now,
		...fields
	};
}

describe("orders.export", () => {
	/** How many times payments.ofOrders was called. */
	let ofOrdersCalls = 0;
	const countOfOrders: Middleware = {
		localAction(next: ActionHandler, action: ActionSchema) {
			if (action.name !== "payments.ofOrders") return next;
			return function (this: Service, ctx: Context) {
				ofOrdersCalls++;
				return next.call(this, ctx);
			};
		}
	};
	const broker = new ServiceBroker({ logger: false, transporter: null, middlewares: [countOfOrders] });
	broker.createService({ name: "orders", mixins: [OrdersService], settings: { ...unitSettings().orders, settleIntervalMs: 60_000 } } as ServiceSchema);
	broker.createService({ name: "payments", mixins: [PaymentsService], settings: unitSettings().payments } as ServiceSchema);

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	const store = () => storeOf<OrdersStore>(broker.getLocalService("orders") as Service);
	const exportPage = (params: { after?: unknown; limit?: unknown }, user: AuthUser = admin) =>
		broker.call<ExportPage, object>("orders.export", params, { meta: metaOf(user) });
	async function exportAll(limit: number, between: () => Promise<void> = async () => {}): Promise<{ ids: string[]; pages: number }> {
		const ids: string[] = [];
		let after: string | undefined;
		let pages = 0;
		do {
			const page = await exportPage(after === undefined ? { limit } : { after, limit });
			pages++;
			expect(page.rows.length).toBeLessThanOrEqual(limit);
			ids.push(...page.rows.map(row => row.id));
			after = page.next ?? undefined;
			await between();
		} while (after !== undefined);
		return { ids, pages };
	}

	it("lists every order once, oldest first, across pages, while orders are inserted between the pages", async () => {
		const existing: string[] = [];
		for (let i = 0; i < 25; i++) {
			const order = storedOrder();
			expect(await store().insert(order)).toBe(true);
			existing.push(order.id);
		}
		const insertedMeanwhile: string[] = [];
		const { ids, pages } = await exportAll(7, async () => {
			// Two new orders per page read, one of them dated before every existing one (a node's clock behind): keyset on time would skip it.
			for (const createdAt of [new Date().toISOString(), "2001-01-01T00:00:00.000Z"]) {
				const order = storedOrder({ createdAt });
				await store().insert(order);
				insertedMeanwhile.push(order.id);
			}
		});
		expect(new Set(ids).size).toBe(ids.length);
		expect(ids.slice(0, existing.length)).toEqual(existing);
		// The export reaches the end: what was inserted while it paged is listed after what was there, in insertion order.
		expect(ids.slice(existing.length)).toEqual(insertedMeanwhile.slice(0, ids.length - existing.length));
		expect(ids.length).toBeGreaterThan(existing.length);
		expect(pages).toBeGreaterThanOrEqual(4);
		// And a later export from the start lists them all.
		const again = await exportAll(1000);
		expect(again.ids).toEqual([...existing, ...insertedMeanwhile]);
		expect(again.pages).toBe(1);
	});

	it("answers next: null on the page that reaches the end, and an empty page after the last cursor", async () => {
		const all = await exportAll(1000);
		const full = await exportPage({ limit: all.ids.length });
		expect(full.rows).toHaveLength(all.ids.length);
		expect(full.next).not.toBeNull();
		const after = await exportPage({ after: full.next, limit: 10 });
		expect(after).toEqual({ rows: [], next: null });
		const newer = storedOrder();
		await store().insert(newer);
		expect((await exportPage({ after: full.next, limit: 10 })).rows.map(row => row.id)).toEqual([newer.id]);
	});

	it("attaches each order's payments, from one call to payments per page: a cancelled order with its refunded payment", async () => {
		const confirmed = storedOrder({ total: 1299 });
		const cancelled = storedOrder({ status: "cancelled", cancelReason: "cancelled_by_user", total: 700 });
		const unpaid = storedOrder({ status: "cancelled", cancelReason: "out_of_stock", total: 300 });
		for (const order of [confirmed, cancelled, unpaid]) await store().insert(order);
		for (const order of [confirmed, cancelled]) {
			await broker.call("payments.capture", { orderId: order.id, userId: order.userId, amount: order.total, card: APPROVED });
		}
		await broker.call("payments.refund", { orderId: cancelled.id });

		const before = ofOrdersCalls;
		const rows = (await exportPage({ limit: 1000 })).rows;
		expect(ofOrdersCalls - before).toBe(1);
		const byId = new Map(rows.map(row => [row.id, row]));
		const pick = (payments: Payment[]) => payments.map(({ orderId, amount, status, cardLast4 }) => ({ orderId, amount, status, cardLast4 }));
		expect(pick(byId.get(confirmed.id)!.payments)).toEqual([{ orderId: confirmed.id, amount: 1299, status: "captured", cardLast4: "4242" }]);
		expect(byId.get(cancelled.id)).toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user", total: 700, ownerNode: "node-1" });
		expect(pick(byId.get(cancelled.id)!.payments)).toEqual([{ orderId: cancelled.id, amount: 700, status: "refunded", cardLast4: "4242" }]);
		expect(byId.get(unpaid.id)!.payments).toEqual([]);
		// What an admin sees of an order, its owner node and its payments; no bookkeeping (idempotency key, first response).
		expect(Object.keys(byId.get(confirmed.id)!).sort()).toEqual(
			["cancelReason", "createdAt", "currency", "id", "items", "ownerNode", "payments", "status", "total", "updatedAt", "userId"].sort()
		);
	});

	it("is for admins only", async () => {
		await expect(exportPage({}, customer)).rejects.toMatchObject({ code: 403, type: "FORBIDDEN" });
		await expect(broker.call("orders.export", {})).rejects.toMatchObject({ code: 403 });
	});

	it.each([
		[{ after: "abc" }, "after"],
		[{ after: "-1" }, "after"],
		[{ after: "1.5" }, "after"],
		[{ after: "01" }, "after"],
		[{ after: "9".repeat(20) }, "after"],
		[{ limit: 0 }, "limit"],
		[{ limit: 1001 }, "limit"],
		[{ limit: "ten" }, "limit"]
	])("refuses %j with 422 naming the field", async (params, field) => {
		const err = await exportPage(params).catch((e: unknown) => e);
		const body = toErrorBody(err);
		expect(body).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		expect(JSON.stringify(body.data)).toContain(`"field":"${field}"`);
	});
});

describe("the orders-002 migration on a database with orders", () => {
	it("numbers the existing orders, and every order inserted afterwards after them", async () => {
		const logger = broker0().getLogger("test");
		const db = await openDatabase("sqlite::memory:", logger);
		try {
			await migrate(db, migrations.slice(0, 1), logger);
			const store = new OrdersStore(db);
			const old = [storedOrder(), storedOrder(), storedOrder()];
			for (const order of old) await store.insert(order);
			expect(await migrate(db, migrations, logger)).toEqual(["orders-002-insertion-sequence"]);
			const newer = storedOrder();
			await store.insert(newer);
			// A replayed Idempotency-Key inserts nothing and takes no number.
			const keyed = storedOrder({ idempotencyKey: "key-1" });
			expect(await store.insert(keyed)).toBe(true);
			expect(await store.insert({ ...keyed, id: randomUUID() })).toBe(false);
			const last = storedOrder();
			await store.insert(last);
			const page = await store.exportPage(0, 100);
			expect(page.map(row => row.order.id)).toEqual([...old, newer, keyed, last].map(order => order.id));
			expect(page.map(row => row.seq)).toEqual([1, 2, 3, 4, 5, 6]);
			expect((await store.exportPage(4, 1)).map(row => row.order.id)).toEqual([keyed.id]);
		} finally {
			await db.close();
		}
	});
});

function broker0(): ServiceBroker {
	return new ServiceBroker({ logger: false, transporter: null });
}
