import { Errors, ServiceBroker, type Context, type Service, type ServiceSchema } from "moleculer";
import { APPROVED_TEST_CARD as APPROVED, DECLINED_TEST_CARD as DECLINED } from "../../lib/cards";
import type { Database } from "../../lib/db/database";
import type { AuthUser, Order, Page, Payment, Product, ShopMeta, StockLine } from "../../lib/types";
import InventoryService from "../../services/inventory/inventory.service";
import OrdersService from "../../services/orders/orders.service";
import type { OrdersStore, StoredOrder } from "../../services/orders/orders.store";
import PaymentsService from "../../services/payments/payments.service";
import { toErrorBody } from "../../lib/errors";
import { countRows, dbOf, metaOf, sleep, storeOf, tempDir, unitSettings, waitFor } from "./helpers";

/** The orders service waits this long for a capture before answering 202. */
const PAYMENT_TIMEOUT_MS = 300;

const OTHER_VALID = "5555555555554444";

const alice: AuthUser = { id: "user-alice", email: "alice@shop.test", role: "customer" };
const bob: AuthUser = { id: "user-bob", email: "bob@shop.test", role: "customer" };
const admin: AuthUser = { id: "user-admin", email: "admin@shop.test", role: "admin" };

// --- A shop in one broker, with faults to inject into payments -----------------------------------

type Hook = (ctx: Context<{ orderId: string; card?: string }>) => void | Promise<void>;
/** Set per test: runs before (or after) the real payments action and may throw or delay. */
interface Faults {
	capture?: Hook;
	captureAfter?: Hook;
	refund?: Hook;
	resolve?: Hook;
	/** inventory.reserve answers as an earlier version did: no prices. */
	unpricedReserves?: boolean;
	/** Before inventory's commitMany. */
	commitMany?: (ctx: Context<{ orderIds: string[] }>) => void | Promise<void>;
}

interface ShopModules {
	ServiceBroker: typeof ServiceBroker;
	InventoryService: ServiceSchema;
	PaymentsService: ServiceSchema;
	OrdersService: ServiceSchema;
}

interface Shop {
	broker: ServiceBroker;
	faults: Faults;
	events: Array<{ event: string; order: Order }>;
	/** The product ids the orders service asked inventory.getMany for, in order. */
	pricesAskedFor: string[];
	/** A service's database, for the test to plant or inspect rows. */
	db(service: "orders" | "inventory" | "payments"): Database;
	ordersStore(): OrdersStore;
}

/** A shop in one broker: its databases in memory, or SQLite files in `dir` (shared by a node and its restarted self). */
function buildShop(mod: ShopModules, nodeID: string, dir?: string): Shop {
	const broker = new mod.ServiceBroker({ nodeID, logger: false, transporter: null, cacher: "Memory" });
	const faults: Faults = {};
	const events: Shop["events"] = [];
	const pricesAskedFor: string[] = [];
	const settings = unitSettings(dir);
	broker.createService({
		name: "inventory",
		mixins: [mod.InventoryService],
		settings: settings.inventory,
		hooks: {
			before: {
				commitMany: async (ctx: Context<{ orderIds: string[] }>) => faults.commitMany?.(ctx),
				getMany: (ctx: Context<{ ids: string[] }>) => void pricesAskedFor.push(...ctx.params.ids)
			},
			after: {
				// An inventory node of an earlier version answers a reservation without its prices.
				reserve: (_ctx: Context, answer: { orderId: string; status: string; items?: unknown }) =>
					faults.unpricedReserves ? { orderId: answer.orderId, status: answer.status } : answer
			}
		}
	} as ServiceSchema);
	broker.createService({
		name: "payments",
		mixins: [mod.PaymentsService],
		settings: settings.payments,
		hooks: {
			before: {
				capture: async (ctx: Context<{ orderId: string }>) => faults.capture?.(ctx),
				refund: async (ctx: Context<{ orderId: string }>) => faults.refund?.(ctx),
				resolve: async (ctx: Context<{ orderId: string }>) => faults.resolve?.(ctx)
			},
			after: {
				capture: async (ctx: Context<{ orderId: string }>, res: unknown) => {
					await faults.captureAfter?.(ctx);
					return res;
				}
			}
		}
	} as ServiceSchema);
	// Fast settle loop for the tests (the default is every second).
	broker.createService({
		name: "orders",
		mixins: [mod.OrdersService],
		settings: { ...settings.orders, paymentTimeoutMs: PAYMENT_TIMEOUT_MS, settleIntervalMs: 100 }
	} as ServiceSchema);
	broker.createService({
		name: "order-watcher",
		events: {
			"order.confirmed"(ctx: Context<{ order: Order }>) {
				events.push({ event: "order.confirmed", order: ctx.params.order });
			},
			"order.cancelled"(ctx: Context<{ order: Order }>) {
				events.push({ event: "order.cancelled", order: ctx.params.order });
			}
		}
	});
	return {
		broker,
		faults,
		events,
		pricesAskedFor,
		db: service => dbOf(broker.getLocalService(service)),
		ordersStore: () => storeOf<OrdersStore>(broker.getLocalService("orders"))
	};
}

/** What a client sees of a create call: the answer and its status code, or the error. */
interface Answer {
	order?: Order;
	status?: number;
	error?: Errors.MoleculerError;
}

function shopClient(shop: Shop) {
	const { broker } = shop;
	let skuCounter = 0;
	return {
		async product(stock: number, price = 1000): Promise<Product> {
			const sku = `P-${broker.nodeID}-${++skuCounter}`;
			return broker.call<Product, object>("inventory.create", { sku, name: `Product ${sku}`, price, stock }, { meta: metaOf(admin) });
		},
		async stockOf(productId: string): Promise<number> {
			return (await broker.call<Product, object>("inventory.get", { id: productId })).stock;
		},
		async create(items: StockLine[], card = APPROVED, user: AuthUser = alice, idempotencyKey?: string): Promise<Answer> {
			const meta = metaOf(user, idempotencyKey);
			try {
				const order = await broker.call<Order, object>("orders.create", { items, payment: { card } }, { meta });
				return { order, status: meta.$statusCode };
			} catch (err) {
				return { error: err as Errors.MoleculerError };
			}
		},
		get(id: string, user: AuthUser = alice) {
			return broker.call<Order, object>("orders.get", { id }, { meta: metaOf(user) });
		},
		cancel(id: string, user: AuthUser = alice) {
			return broker.call<Order, object>("orders.cancel", { id }, { meta: metaOf(user) });
		},
		list(user: AuthUser, params: { page?: number; pageSize?: number; status?: string; cancelReason?: string } = {}) {
			return broker.call<Page<Order & { ownerNode?: string }>, object>("orders.list", params, { meta: metaOf(user) });
		},
		payments(orderId: string) {
			return broker.call<{ rows: Payment[] }, object>("payments.list", { orderId }, { meta: metaOf(admin) }).then(answer => answer.rows);
		},
		async holdStatus(orderId: string): Promise<unknown> {
			return (await shop.db("inventory").one<{ status: string }>("SELECT status FROM holds WHERE order_id = $1", [orderId]))?.status ?? null;
		},
		/** The orders stored for a user, straight from the database. */
		ordersOf(userId: string) {
			return countRows(shop.db("orders"), "SELECT COUNT(*) AS count FROM orders WHERE user_id = $1", [userId]);
		}
	};
}

const timeoutError = (ctx: Context) => new Errors.RequestTimeoutError({ action: ctx.action?.name ?? "payments.capture", nodeID: "payments-node" });
const unavailableError = (ctx: Context) => new Errors.ServiceNotAvailableError({ action: ctx.action?.name ?? "payments.capture", nodeID: "payments-node" });

/** Checks the contract's invariants 1 and 2 for the given products (initial stock + restocks known). */
async function checkInvariants(shop: Shop, client: ReturnType<typeof shopClient>, initial: Map<string, number>) {
	const orders = (await shop.db("orders").all<{ id: string; status: string; items: string; total: number }>("SELECT id, status, items, total FROM orders")).map(
		row => ({ ...row, items: JSON.parse(row.items) as StockLine[] })
	);
	for (const [productId, stock0] of initial) {
		let held = 0;
		for (const order of orders) {
			if (order.status === "cancelled") continue;
			for (const item of order.items) if (item.productId === productId) held += item.quantity;
		}
		const stock = await client.stockOf(productId);
		expect(stock).toBeGreaterThanOrEqual(0);
		expect({ productId, total: stock + held }).toEqual({ productId, total: stock0 });
	}
	for (const order of orders) {
		const payments = await client.payments(String(order.id));
		const captured = payments.filter(payment => payment.status === "captured");
		if (order.status === "confirmed") {
			expect({ id: order.id, captured: captured.map(payment => payment.amount) }).toEqual({ id: order.id, captured: [Number(order.total)] });
		}
		if (order.status === "cancelled") expect({ id: order.id, captured }).toEqual({ id: order.id, captured: [] });
	}
}

// --- The tests --------------------------------------------------------------------------------------

describe("orders service", () => {
	const shop = buildShop({ ServiceBroker, InventoryService, PaymentsService, OrdersService } as unknown as ShopModules, "unit-orders");
	const client = shopClient(shop);
	const { faults, events } = shop;
	/** Initial stock of every product made here, for the invariant check at the end. */
	const initialStock = new Map<string, number>();
	const product = async (stock: number, price = 1000) => {
		const p = await client.product(stock, price);
		initialStock.set(p.id, stock);
		return p;
	};
	const confirmedEvents = (orderId: string) => events.filter(e => e.event === "order.confirmed" && e.order.id === orderId).length;
	const cancelledEvents = (orderId: string) => events.filter(e => e.event === "order.cancelled" && e.order.id === orderId).length;

	beforeAll(() => shop.broker.start());
	afterAll(() => shop.broker.stop());
	afterEach(() => {
		for (const key of Object.keys(faults) as Array<keyof Faults>) delete faults[key];
	});

	describe("create", () => {
		it("confirms an order with 201: stock taken, payment captured, prices from the catalogue", async () => {
			const mug = await product(10, 1250);
			const tee = await product(5, 2199);
			const answer = await client.create([{ productId: mug.id, quantity: 2, unitPrice: 1 } as StockLine, { productId: tee.id, quantity: 1 }]);

			expect(answer.error).toBeUndefined();
			expect(answer.status).toBe(201);
			const order = answer.order!;
			expect(order).toMatchObject({ userId: alice.id, status: "confirmed", total: 2 * 1250 + 2199, currency: "USD", cancelReason: null });
			expect(order.items).toEqual([
				{ productId: mug.id, sku: mug.sku, name: mug.name, quantity: 2, unitPrice: 1250 },
				{ productId: tee.id, sku: tee.sku, name: tee.name, quantity: 1, unitPrice: 2199 }
			]);
			expect(Object.keys(order).sort()).toEqual(["cancelReason", "createdAt", "currency", "id", "items", "status", "total", "updatedAt", "userId"]);
			expect(await client.stockOf(mug.id)).toBe(8);
			expect(await client.stockOf(tee.id)).toBe(4);
			await waitFor(async () => (await client.holdStatus(order.id)) === "committed", 3000, "the hold to be marked sold");
			const payments = await client.payments(order.id);
			expect(payments).toHaveLength(1);
			expect(payments[0]).toMatchObject({ orderId: order.id, amount: order.total, status: "captured", cardLast4: "4242" });
			await expect(client.get(order.id)).resolves.toEqual(order);
			expect(confirmedEvents(order.id)).toBe(1);
		});

		it("never lets the settle loop take over an order its request is still creating", async () => {
			const p = await product(40, 100);
			const orders = shop.broker.getLocalService("orders") as Service & { settleUnfinished(): Promise<void>; settings: { paymentTimeoutMs: number } };
			// Room for 30 captures on a busy machine: a 202 here would only mean a capture outran the
			// payment timeout, not that the loop took an order over (that cancels it: an error answer).
			const paymentTimeoutMs = orders.settings.paymentTimeoutMs;
			orders.settings.paymentTimeoutMs = 5000;
			let creating = true;
			// The settle loop, as often as it can run, alongside the requests.
			const loop = (async () => {
				while (creating) {
					await orders.settleUnfinished();
					await new Promise(resolve => setImmediate(resolve));
				}
			})();
			let answers: Answer[];
			try {
				answers = await Promise.all(Array.from({ length: 30 }, () => client.create([{ productId: p.id, quantity: 1 }])));
			} finally {
				creating = false;
				orders.settings.paymentTimeoutMs = paymentTimeoutMs;
				await loop;
			}
			expect(answers.map(answer => answer.error?.message ?? answer.status)).toEqual(Array(30).fill(201));
			expect(await client.stockOf(p.id)).toBe(10);
		});

		it("answers with the order's Location", async () => {
			const p = await product(3);
			const meta: ShopMeta = metaOf(alice);
			const order = await shop.broker.call<Order, object>(
				"orders.create",
				{ items: [{ productId: p.id, quantity: 1 }], payment: { card: APPROVED } },
				{ meta }
			);
			// Relative to the service's base; the gateway adds /api.
			expect(meta.$location).toBe(`/orders/${order.id}`);
		});

		it("merges lines of the same product into one", async () => {
			const p = await product(10, 300);
			const { order } = await client.create([
				{ productId: p.id, quantity: 2 },
				{ productId: p.id, quantity: 3 }
			]);
			expect(order!.items).toEqual([{ productId: p.id, sku: p.sku, name: p.name, quantity: 5, unitPrice: 300 }]);
			expect(order!.total).toBe(1500);
			expect(await client.stockOf(p.id)).toBe(5);
		});

		it("answers 402 PAYMENT_DECLINED for the declined card: order cancelled (payment_declined), stock back, nothing charged", async () => {
			const p = await product(4);
			const before = await client.ordersOf(alice.id);
			const { error } = await client.create([{ productId: p.id, quantity: 3 }], DECLINED);

			expect(error).toMatchObject({ code: 402, type: "PAYMENT_DECLINED" });
			const orderId = (error!.data as { orderId: string }).orderId;
			expect(await client.ordersOf(alice.id)).toBe(before + 1);
			await expect(client.get(orderId)).resolves.toMatchObject({ status: "cancelled", cancelReason: "payment_declined" });
			expect(await client.stockOf(p.id)).toBe(4);
			expect(await client.holdStatus(orderId)).toBe("released");
			const payments = await client.payments(orderId);
			expect(payments.map(payment => payment.status)).toEqual(["declined"]);
			expect(cancelledEvents(orderId)).toBe(1);
		});

		it("answers 409 OUT_OF_STOCK naming the short product: order cancelled (out_of_stock), nothing reserved, nothing charged", async () => {
			const plenty = await product(10);
			const scarce = await product(1);
			const captures = jest.fn();
			faults.capture = captures;
			const { error } = await client.create([
				{ productId: plenty.id, quantity: 2 },
				{ productId: scarce.id, quantity: 2 }
			]);

			expect(error).toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
			const data = error!.data as { products: Array<{ productId: string; requested: number; available: number }>; orderId: string };
			expect(data.products).toEqual([{ productId: scarce.id, requested: 2, available: 1 }]);
			await expect(client.get(data.orderId)).resolves.toMatchObject({ status: "cancelled", cancelReason: "out_of_stock" });
			expect(await client.stockOf(plenty.id)).toBe(10);
			expect(await client.stockOf(scarce.id)).toBe(1);
			expect(captures).not.toHaveBeenCalled();
			expect(await client.payments(data.orderId)).toEqual([]);
		});

		it("answers 404 for an unknown product and stores no order", async () => {
			const p = await product(5);
			const before = await client.ordersOf(alice.id);
			const { error } = await client.create([
				{ productId: p.id, quantity: 1 },
				{ productId: "no-such-product", quantity: 1 }
			]);
			expect(error).toMatchObject({ code: 404, type: "NOT_FOUND", data: { productIds: ["no-such-product"] } });
			expect(await client.ordersOf(alice.id)).toBe(before);
			expect(await client.stockOf(p.id)).toBe(5);
		});

		it.each([
			["a card failing the Luhn check", [{ productId: "x", quantity: 1 }], "4242424242424241"],
			["no items", [], APPROVED],
			["a quantity of 0", [{ productId: "x", quantity: 0 }], APPROVED],
			["a quantity above 100", [{ productId: "x", quantity: 101 }], APPROVED],
			["51 lines", Array.from({ length: 51 }, (_, i) => ({ productId: `p${i}`, quantity: 1 })), APPROVED]
		])("answers 422 VALIDATION_ERROR for %s, storing nothing", async (_what, items, card) => {
			const before = await client.ordersOf(alice.id);
			const { error } = await client.create(items, card);
			expect(error).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(await client.ordersOf(alice.id)).toBe(before);
		});

		it("answers 422 for an Idempotency-Key longer than 64 characters", async () => {
			const p = await product(1);
			const { error } = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "k".repeat(65));
			expect(error).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(await client.stockOf(p.id)).toBe(1);
		});
	});

	describe("when payments cannot answer in time", () => {
		it.each([
			["times out", timeoutError],
			["is unavailable", unavailableError]
		])("answers 202 with the pending order when payments %s, then the settle loop confirms it exactly once", async (_what, makeError) => {
			const p = await product(6, 700);
			const captureAttempts = jest.fn();
			faults.capture = ctx => {
				captureAttempts();
				throw makeError(ctx);
			};
			const answer = await client.create([{ productId: p.id, quantity: 2 }]);

			expect(answer.error).toBeUndefined();
			expect(answer.status).toBe(202);
			const order = answer.order!;
			expect(order).toMatchObject({ status: "pending", total: 1400, cancelReason: null });
			// The units are held for the pending order; nothing is charged yet.
			expect(await client.stockOf(p.id)).toBe(4);
			expect(await client.payments(order.id)).toEqual([]);

			// Still down for a while: retried, still pending.
			await waitFor(() => captureAttempts.mock.calls.length >= 2, 5000, "a capture retry");
			await expect(client.get(order.id)).resolves.toMatchObject({ status: "pending" });

			delete faults.capture;
			await waitFor(async () => (await client.get(order.id)).status === "confirmed", 8000, "the order to be confirmed");
			await sleep(500); // a few more settle passes: nothing may happen twice
			expect(confirmedEvents(order.id)).toBe(1);
			expect(await client.stockOf(p.id)).toBe(4);
			await waitFor(async () => (await client.holdStatus(order.id)) === "committed", 3000, "the hold to be marked sold");
			const payments = await client.payments(order.id);
			expect(payments.map(payment => [payment.status, payment.amount])).toEqual([["captured", 1400]]);
		});

		it("a capture slower than the timeout is never charged twice: 202, then confirmed with one payment", async () => {
			const p = await product(3, 999);
			let slow = true;
			faults.capture = async () => {
				if (slow) {
					slow = false;
					await sleep(600); // the orders service gave up after 300 ms; this capture still goes through
				}
			};
			const answer = await client.create([{ productId: p.id, quantity: 1 }]);
			expect(answer.status).toBe(202);
			await waitFor(async () => (await client.get(answer.order!.id)).status === "confirmed", 8000, "the order to be confirmed");
			await sleep(300);
			expect((await client.payments(answer.order!.id)).map(payment => payment.status)).toEqual(["captured"]);
			expect(confirmedEvents(answer.order!.id)).toBe(1);
			expect(await client.stockOf(p.id)).toBe(2);
		});

		it("a pending order whose card turns out declined settles to cancelled (payment_declined) with its stock back", async () => {
			const p = await product(3);
			faults.capture = ctx => {
				throw timeoutError(ctx);
			};
			const answer = await client.create([{ productId: p.id, quantity: 3 }], DECLINED);
			expect(answer.status).toBe(202);
			expect(await client.stockOf(p.id)).toBe(0);
			delete faults.capture;
			await waitFor(async () => (await client.get(answer.order!.id)).status === "cancelled", 8000, "the order to be cancelled");
			await expect(client.get(answer.order!.id)).resolves.toMatchObject({ cancelReason: "payment_declined" });
			expect(await client.stockOf(p.id)).toBe(3);
			expect((await client.payments(answer.order!.id)).map(payment => payment.status)).toEqual(["declined"]);
		});

		it("a pending order cancelled by its owner is never charged when payments comes back", async () => {
			const p = await product(2);
			faults.capture = ctx => {
				throw timeoutError(ctx);
			};
			const answer = await client.create([{ productId: p.id, quantity: 2 }]);
			expect(answer.status).toBe(202);
			const cancelled = await client.cancel(answer.order!.id);
			expect(cancelled).toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user" });
			expect(await client.stockOf(p.id)).toBe(2);

			delete faults.capture;
			await sleep(1200); // several settle passes, past the first card retry
			await expect(client.get(answer.order!.id)).resolves.toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user" });
			expect(await client.payments(answer.order!.id)).toEqual([]);
			expect(await client.stockOf(p.id)).toBe(2);
		});
	});

	describe("Idempotency-Key", () => {
		it("answers the same order and status code for the same key, and charges once", async () => {
			const p = await product(10, 500);
			const first = await client.create([{ productId: p.id, quantity: 2 }], APPROVED, alice, "key-same");
			const second = await client.create([{ productId: p.id, quantity: 2 }], APPROVED, alice, "key-same");

			expect(first.status).toBe(201);
			expect(second.status).toBe(201);
			expect(second.order!.id).toBe(first.order!.id);
			expect(second.order).toEqual(first.order);
			expect(await client.stockOf(p.id)).toBe(8);
			expect(await client.payments(first.order!.id)).toHaveLength(1);
		});

		it("replays a 202 as a 202 with the same order", async () => {
			const p = await product(5);
			faults.capture = ctx => {
				throw timeoutError(ctx);
			};
			const first = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "key-pending");
			const second = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "key-pending");
			expect([first.status, second.status]).toEqual([202, 202]);
			expect(second.order!.id).toBe(first.order!.id);
			delete faults.capture;
			await waitFor(async () => (await client.get(first.order!.id)).status === "confirmed", 8000, "the order to be confirmed");
			expect(await client.stockOf(p.id)).toBe(4);
			expect(await client.payments(first.order!.id)).toHaveLength(1);
		});

		it("replays a decline as a 402 without charging again", async () => {
			const p = await product(5);
			const first = await client.create([{ productId: p.id, quantity: 1 }], DECLINED, alice, "key-declined");
			const second = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "key-declined");
			expect(first.error).toMatchObject({ code: 402, type: "PAYMENT_DECLINED" });
			expect(second.error).toMatchObject({ code: 402, type: "PAYMENT_DECLINED" });
			const orderId = (first.error!.data as { orderId: string }).orderId;
			expect((second.error!.data as { orderId: string }).orderId).toBe(orderId);
			expect((await client.payments(orderId)).map(payment => payment.status)).toEqual(["declined"]);
			expect(await client.stockOf(p.id)).toBe(5);
		});

		it("replays an out-of-stock answer as 409 OUT_OF_STOCK", async () => {
			const p = await product(1);
			const first = await client.create([{ productId: p.id, quantity: 2 }], APPROVED, alice, "key-oos");
			await shop.broker.call("inventory.restock", { id: p.id, quantity: 5 });
			initialStock.set(p.id, 6);
			const second = await client.create([{ productId: p.id, quantity: 2 }], APPROVED, alice, "key-oos");
			expect(first.error).toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
			expect(second.error).toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
			expect(await client.stockOf(p.id)).toBe(6);
		});

		it("makes one order of two concurrent calls with one key", async () => {
			const p = await product(10, 250);
			const before = await client.ordersOf(alice.id);
			const [a, b] = await Promise.all([
				client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "key-concurrent"),
				client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "key-concurrent")
			]);
			expect(a.error).toBeUndefined();
			expect(b.error).toBeUndefined();
			expect(b.order!.id).toBe(a.order!.id);
			expect([a.status, b.status]).toEqual([201, 201]);
			expect(await client.ordersOf(alice.id)).toBe(before + 1);
			expect(await client.stockOf(p.id)).toBe(9);
			expect(await client.payments(a.order!.id)).toHaveLength(1);
		});

		it("keeps keys per user: the same key from another user is another order", async () => {
			const p = await product(10);
			const fromAlice = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice, "key-shared");
			const fromBob = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, bob, "key-shared");
			expect(fromAlice.status).toBe(201);
			expect(fromBob.status).toBe(201);
			expect(fromBob.order!.id).not.toBe(fromAlice.order!.id);
			expect(fromBob.order!.userId).toBe(bob.id);
			expect(await client.stockOf(p.id)).toBe(8);
		});
	});

	describe("prices", () => {
		it("a product seen before needs no price look-up, and a price or name changed since is what the order is charged and shows", async () => {
			const p = await product(10, 500);
			const first = await client.create([{ productId: p.id, quantity: 1 }]);
			expect(first.order).toMatchObject({ status: "confirmed", total: 500 });
			expect(shop.pricesAskedFor.filter(id => id === p.id)).toHaveLength(1);

			const second = await client.create([{ productId: p.id, quantity: 2 }]);
			expect(second.order).toMatchObject({ status: "confirmed", total: 1000 });
			// Written with the price seen before: no second look-up.
			expect(shop.pricesAskedFor.filter(id => id === p.id)).toHaveLength(1);

			await shop.broker.call("inventory.update", { id: p.id, price: 750, name: "Renamed" }, { meta: metaOf(admin) });
			const third = await client.create([{ productId: p.id, quantity: 2 }]);
			expect(third.status).toBe(201);
			expect(third.order).toMatchObject({ status: "confirmed", total: 1500 });
			expect(third.order!.items).toEqual([{ productId: p.id, sku: p.sku, name: "Renamed", quantity: 2, unitPrice: 750 }]);
			await expect(client.get(third.order!.id)).resolves.toEqual(third.order);
			expect((await client.payments(third.order!.id)).map(payment => [payment.status, payment.amount])).toEqual([["captured", 1500]]);
			expect(shop.pricesAskedFor.filter(id => id === p.id)).toHaveLength(1);
		});

		it("with an inventory of an earlier version (reservations answer no prices), an order written from the book is checked against the catalogue, and the book is not used while it lasts", async () => {
			const p = await product(10, 500);
			await client.create([{ productId: p.id, quantity: 1 }]);
			await shop.broker.call("inventory.update", { id: p.id, price: 650 }, { meta: metaOf(admin) });
			faults.unpricedReserves = true;
			const asked = shop.pricesAskedFor.length;

			const checked = await client.create([{ productId: p.id, quantity: 2 }]);
			expect(checked.status).toBe(201);
			expect(checked.order).toMatchObject({ status: "confirmed", total: 1300 });
			expect((await client.payments(checked.order!.id)).map(payment => payment.amount)).toEqual([1300]);
			// Written from the book, then checked.
			expect(shop.pricesAskedFor.slice(asked)).toEqual([p.id]);

			// The book is out of use: the next order asks first.
			const next = await client.create([{ productId: p.id, quantity: 1 }]);
			expect(next.order).toMatchObject({ status: "confirmed", total: 650 });
			expect(shop.pricesAskedFor.slice(asked)).toEqual([p.id, p.id]);

			// Priced reservations again: the book is used again.
			delete faults.unpricedReserves;
			await client.create([{ productId: p.id, quantity: 1 }]);
			await client.create([{ productId: p.id, quantity: 1 }]);
			expect(shop.pricesAskedFor.slice(asked)).toEqual([p.id, p.id, p.id]);
		});

		it("a several-line order with one product not seen yet asks for the prices of its lines", async () => {
			const seen = await product(10, 300);
			await client.create([{ productId: seen.id, quantity: 1 }]);
			const fresh = await product(10, 400);
			const asked = shop.pricesAskedFor.length;
			const answer = await client.create([
				{ productId: seen.id, quantity: 1 },
				{ productId: fresh.id, quantity: 2 }
			]);
			expect(answer.order).toMatchObject({ status: "confirmed", total: 300 + 800 });
			expect(shop.pricesAskedFor.slice(asked)).toEqual([seen.id, fresh.id]);
		});
	});

	describe("stock commit", () => {
		it("follows the confirmation, many orders in one call: held holds become committed, a failed call is tried again, and neither delays the 201", async () => {
			const p = await product(10, 900);
			const calls: string[][] = [];
			let failing = true;
			faults.commitMany = ctx => {
				calls.push(ctx.params.orderIds);
				if (failing) throw unavailableError(ctx);
			};
			const answers = await Promise.all([1, 2, 3].map(() => client.create([{ productId: p.id, quantity: 2 }])));
			expect(answers.map(answer => answer.status)).toEqual([201, 201, 201]);
			const ids = answers.map(answer => answer.order!.id);
			expect(await client.stockOf(p.id)).toBe(4);
			for (const id of ids) {
				expect(await client.holdStatus(id)).toBe("held");
				expect((await client.payments(id)).map(payment => [payment.status, payment.amount])).toEqual([["captured", 1800]]);
			}
			// One call for the three (with whatever else was waiting); it fails.
			await waitFor(async () => calls.some(call => ids.every(id => call.includes(id))), 3000, "one commit call for the three");
			expect(await Promise.all(ids.map(id => client.holdStatus(id)))).toEqual(["held", "held", "held"]);

			// A hold still held is released by a cancel like a committed one.
			await expect(client.cancel(ids[0])).resolves.toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user" });
			expect(await client.stockOf(p.id)).toBe(6);

			failing = false;
			await waitFor(async () => (await client.holdStatus(ids[1])) === "committed" && (await client.holdStatus(ids[2])) === "committed", 5000, "the retry");
			expect(await client.holdStatus(ids[0])).toBe("released");
			expect(await client.stockOf(p.id)).toBe(6);
		});
	});

	describe("cancel", () => {
		it("cancels a confirmed order: refunded, stock back; a second cancel is 409 INVALID_STATE", async () => {
			const p = await product(5, 800);
			const { order } = await client.create([{ productId: p.id, quantity: 3 }]);
			expect(await client.stockOf(p.id)).toBe(2);

			const cancelled = await client.cancel(order!.id);
			expect(cancelled).toMatchObject({ id: order!.id, status: "cancelled", cancelReason: "cancelled_by_user" });
			expect(await client.stockOf(p.id)).toBe(5);
			expect((await client.payments(order!.id)).map(payment => payment.status)).toEqual(["refunded"]);

			await expect(client.cancel(order!.id)).rejects.toMatchObject({ code: 409, type: "INVALID_STATE" });
			expect(await client.stockOf(p.id)).toBe(5);
			expect(cancelledEvents(order!.id)).toBe(1);
		});

		it("an admin may cancel anyone's order", async () => {
			const p = await product(2);
			const { order } = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, bob);
			await expect(client.cancel(order!.id, admin)).resolves.toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user" });
			expect(await client.stockOf(p.id)).toBe(2);
		});

		it("a cancellation interrupted by payments being down is finished by the settle loop", async () => {
			const p = await product(4, 600);
			const { order } = await client.create([{ productId: p.id, quantity: 2 }]);
			faults.refund = ctx => {
				throw unavailableError(ctx);
			};
			const failure = await client.cancel(order!.id).catch((err: unknown) => err);
			expect(failure).toMatchObject({ name: "ServiceNotAvailableError" });
			// What the gateway makes of it: the contract's 503.
			expect(toErrorBody(failure)).toMatchObject({ code: 503, type: "SERVICE_NOT_AVAILABLE", data: { service: "payments" } });
			// Not cancelled yet, and no half-state shown to the client.
			await expect(client.get(order!.id)).resolves.toMatchObject({ status: "confirmed", cancelReason: null });

			delete faults.refund;
			await waitFor(async () => (await client.get(order!.id)).status === "cancelled", 8000, "the cancellation to finish");
			await expect(client.get(order!.id)).resolves.toMatchObject({ cancelReason: "cancelled_by_user" });
			expect((await client.payments(order!.id)).map(payment => payment.status)).toEqual(["refunded"]);
			expect(await client.stockOf(p.id)).toBe(4);
		});
	});

	describe("visibility", () => {
		let bobsOrder: Order;
		beforeAll(async () => {
			const p = await product(5);
			bobsOrder = (await client.create([{ productId: p.id, quantity: 1 }], APPROVED, bob)).order!;
		});

		it("answers 404 to another customer on get and cancel, and changes nothing", async () => {
			await expect(client.get(bobsOrder.id, alice)).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
			await expect(client.cancel(bobsOrder.id, alice)).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
			await expect(client.get(bobsOrder.id, bob)).resolves.toMatchObject({ status: "confirmed" });
		});

		it("answers the same 404 for an order that does not exist", async () => {
			const missing = await client.get("no-such-order", alice).catch((err: unknown) => err);
			const hidden = await client.get(bobsOrder.id, alice).catch((err: unknown) => err);
			expect(missing).toMatchObject({ code: 404, type: "NOT_FOUND" });
			expect((hidden as Error).message).toBe((missing as Error).message);
		});

		it("lets an admin get anyone's order", async () => {
			await expect(client.get(bobsOrder.id, admin)).resolves.toEqual(await client.get(bobsOrder.id, bob));
		});

		it("lists a customer's own orders, newest first, and all orders for an admin", async () => {
			const carol: AuthUser = { id: "user-carol", email: "carol@shop.test", role: "customer" };
			const p = await product(10);
			const ids: string[] = [];
			for (let i = 0; i < 3; i++) {
				const answer = await client.create([{ productId: p.id, quantity: 1 }], OTHER_VALID, carol);
				expect(answer.error).toBeUndefined();
				ids.push(answer.order!.id);
				await sleep(5);
			}

			const own = await client.list(carol);
			expect(own).toMatchObject({ total: 3, page: 1, pageSize: 20, totalPages: 1 });
			expect(own.rows.map(order => order.id)).toEqual([...ids].reverse());

			const paged = await client.list(carol, { page: 2, pageSize: 2 });
			expect(paged).toMatchObject({ total: 3, totalPages: 2 });
			expect(paged.rows.map(order => order.id)).toEqual([ids[0]]);

			const bobs = await client.list(bob);
			expect(bobs.rows.every(order => order.userId === bob.id)).toBe(true);
			expect(bobs.rows.map(order => order.id)).toContain(bobsOrder.id);

			await client.create([{ productId: p.id, quantity: 1 }], APPROVED, alice);
			const all = await client.list(admin, { pageSize: 100 });
			const stored = await countRows(shop.db("orders"), "SELECT COUNT(*) AS count FROM orders");
			expect(all.total).toBe(stored);
			const users = new Set(all.rows.map(order => order.userId));
			expect([...users].sort()).toEqual(expect.arrayContaining([alice.id, bob.id, carol.id]));
		});
		it("filters the list by status and by cancel reason; an admin also sees the node attending each order", async () => {
			const dave: AuthUser = { id: "user-dave", email: "dave@shop.test", role: "customer" };
			const p = await product(10);
			const confirmed = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, dave);
			const declined = await client.create([{ productId: p.id, quantity: 1 }], DECLINED, dave);
			const cancelled = await client.create([{ productId: p.id, quantity: 1 }], APPROVED, dave);
			await client.cancel(cancelled.order!.id, dave);
			expect(declined.error).toMatchObject({ code: 402 });

			const ids = (page: Page<Order>) => page.rows.map(order => order.id);
			expect(ids(await client.list(dave, { status: "confirmed" }))).toEqual([confirmed.order!.id]);
			const allCancelled = await client.list(dave, { status: "cancelled" });
			expect(allCancelled.total).toBe(2);
			expect(allCancelled.rows.map(order => order.cancelReason).sort()).toEqual(["cancelled_by_user", "payment_declined"]);
			expect(ids(await client.list(dave, { cancelReason: "cancelled_by_user" }))).toEqual([cancelled.order!.id]);
			expect((await client.list(dave, { cancelReason: "payment_declined" })).rows).toHaveLength(1);
			expect((await client.list(dave, { status: "pending" })).total).toBe(0);
			// A customer's list never shows bookkeeping; an admin's names the attending node.
			expect(allCancelled.rows[0]).not.toHaveProperty("ownerNode");
			const adminView = await client.list(admin, { cancelReason: "cancelled_by_user", pageSize: 100 });
			expect(adminView.rows.map(order => order.id)).toContain(cancelled.order!.id);
			expect(adminView.rows.every(order => order.cancelReason === "cancelled_by_user" && typeof order.ownerNode === "string")).toBe(true);

			expect.assertions(12);
			await expect(client.list(dave, { status: "shipped" })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			await expect(client.list(dave, { cancelReason: "lost" })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		});
	});

	describe("orphaned orders (settle loop)", () => {
		/** Makes an order look last worked on a minute ago (whichever timestamp the service reads). */
		const backdate = async (orderId: string) => {
			const old = new Date(Date.now() - 60_000).toISOString();
			await shop.db("orders").write(sql => sql.run("UPDATE orders SET updated_at = $1, attended_at = $1 WHERE id = $2", [old, orderId]));
		};
		/** Stores a pending order as a node's request would have, before any step ran. */
		const plantPending = async (order: Pick<StoredOrder, "id" | "items" | "total" | "ownerNode">) => {
			const now = new Date().toISOString();
			const planted: StoredOrder = {
				userId: alice.id,
				status: "pending",
				cancelReason: null,
				idempotencyKey: null,
				firstResponse: 202,
				attendedAt: now,
				createdAt: now,
				updatedAt: now,
				...order
			};
			expect(await shop.ordersStore().insert(planted)).toBe(true);
		};

		it("settles a pending order left by a dead node, with stock held and no payment: cancelled payment_failed, stock back", async () => {
			const p = await product(5, 400);
			const orderId = "orphan-without-payment";
			await shop.broker.call("inventory.reserve", { orderId, items: [{ productId: p.id, quantity: 2 }] });
			await plantPending({
				id: orderId,
				items: [{ productId: p.id, sku: p.sku, name: p.name, quantity: 2, unitPrice: 400 }],
				total: 800,
				ownerNode: "a-node-that-died"
			});
			// Last touched a minute ago: no live node is working on it.
			await backdate(orderId);
			expect(await client.stockOf(p.id)).toBe(3);

			await waitFor(async () => (await client.get(orderId)).status === "cancelled", 5000, "the orphan to settle");
			await expect(client.get(orderId)).resolves.toMatchObject({ cancelReason: "payment_failed" });
			expect(await client.stockOf(p.id)).toBe(5);
			// And it can no longer be charged.
			await expect(shop.broker.call("payments.capture", { orderId, userId: alice.id, amount: 800, card: APPROVED })).rejects.toMatchObject({
				code: 409,
				type: "INVALID_STATE"
			});
		});

		it("leaves a recently touched pending order of another live-looking node alone", async () => {
			const p = await product(5);
			const orderId = "fresh-order-of-another-node";
			await shop.broker.call("inventory.reserve", { orderId, items: [{ productId: p.id, quantity: 1 }] });
			await plantPending({
				id: orderId,
				items: [{ productId: p.id, sku: p.sku, name: p.name, quantity: 1, unitPrice: 1000 }],
				total: 1000,
				ownerNode: shop.broker.nodeID + "-peer"
			});
			// The broker started more than 5 s ago only if earlier tests were slow; either way the order
			// was touched just now, so it is settled only once its owner is known dead.
			const orders = shop.broker.getLocalService("orders") as Service & { startedAt: number };
			orders.startedAt = Date.now();
			await sleep(400);
			await expect(client.get(orderId)).resolves.toMatchObject({ status: "pending" });
			// Clean up: the owner gave up, settle it the way a restart would.
			await backdate(orderId);
			await waitFor(async () => (await client.get(orderId)).status === "cancelled", 5000, "the orphan to settle");
			expect(await client.stockOf(p.id)).toBe(5);
		});
	});

	describe("afterwards", () => {
		it("keeps the contract's invariants over everything above", async () => {
			await waitFor(
				async () => (await countRows(shop.db("orders"), "SELECT COUNT(*) AS count FROM orders WHERE status = $1", ["pending"])) === 0,
				8000,
				"no pending orders"
			);
			await checkInvariants(shop, client, initialStock);
		});
	});
});

describe("orders service: crash recovery on the same database files", () => {
	const tmp = tempDir("orders-recovery-");
	afterAll(() => tmp.remove());

	const modules = { ServiceBroker, InventoryService, PaymentsService, OrdersService } as unknown as ShopModules;
	/** Every service's database is a file in `tmp`, shared by the node and its restarted self. */
	const buildNode = (nodeID: string) => buildShop(modules, nodeID, tmp.dir);

	it("a restarted node settles what its previous life left pending: confirmed if paid, else cancelled payment_failed", async () => {
		const first = buildNode("recovery-node");
		const firstClient = shopClient(first);
		await first.broker.start();
		let paidId: string;
		let unpaidId: string;
		let paidProduct: Product;
		let unpaidProduct: Product;
		try {
			paidProduct = await firstClient.product(5, 1500);
			unpaidProduct = await firstClient.product(5, 900);
			// The capture of the approved card goes through, but its answer is lost (timeout after the fact);
			// the other card's capture never reaches payments. Both stay down until the crash.
			first.faults.captureAfter = ctx => {
				if (ctx.params.card === APPROVED) throw timeoutError(ctx);
			};
			first.faults.capture = ctx => {
				if (ctx.params.card === OTHER_VALID) throw timeoutError(ctx);
			};
			const paid = await firstClient.create([{ productId: paidProduct.id, quantity: 2 }], APPROVED);
			const unpaid = await firstClient.create([{ productId: unpaidProduct.id, quantity: 3 }], OTHER_VALID);
			expect([paid.status, unpaid.status]).toEqual([202, 202]);
			paidId = paid.order!.id;
			unpaidId = unpaid.order!.id;
			expect((await firstClient.payments(paidId)).map(payment => payment.status)).toEqual(["captured"]);
			expect(await firstClient.payments(unpaidId)).toEqual([]);
		} finally {
			// The node dies: the cards it kept in memory for retries are gone.
			await first.broker.stop();
		}

		const second = buildNode("recovery-node");
		const secondClient = shopClient(second);
		await second.broker.start();
		try {
			await waitFor(
				async () => (await secondClient.get(paidId)).status !== "pending" && (await secondClient.get(unpaidId)).status !== "pending",
				8000,
				"both orders to settle"
			);
			await expect(secondClient.get(paidId)).resolves.toMatchObject({ status: "confirmed", cancelReason: null });
			await expect(secondClient.get(unpaidId)).resolves.toMatchObject({ status: "cancelled", cancelReason: "payment_failed" });
			expect(await secondClient.stockOf(paidProduct.id)).toBe(3);
			await waitFor(async () => (await secondClient.holdStatus(paidId)) === "committed", 3000, "the hold to be marked sold");
			expect(await secondClient.stockOf(unpaidProduct.id)).toBe(5);
			expect(await secondClient.holdStatus(unpaidId)).toBe("released");
			expect((await secondClient.payments(paidId)).map(payment => payment.status)).toEqual(["captured"]);
			expect(await secondClient.payments(unpaidId)).toEqual([]);
			await expect(second.broker.call("payments.capture", { orderId: unpaidId, userId: alice.id, amount: 2700, card: APPROVED })).rejects.toMatchObject({
				type: "INVALID_STATE"
			});
			expect(second.events.filter(e => e.event === "order.confirmed").map(e => e.order.id)).toEqual([paidId]);
		} finally {
			await second.broker.stop();
		}
	});

	it("a node started under a new node id settles the orders of the dead node it replaces", async () => {
		const first = buildNode("old-node");
		const firstClient = shopClient(first);
		await first.broker.start();
		let orderId: string;
		let p: Product;
		try {
			p = await firstClient.product(4, 500);
			first.faults.capture = ctx => {
				throw timeoutError(ctx);
			};
			const answer = await firstClient.create([{ productId: p.id, quantity: 4 }]);
			expect(answer.status).toBe(202);
			orderId = answer.order!.id;
			expect(await firstClient.stockOf(p.id)).toBe(0);
		} finally {
			await first.broker.stop();
		}

		const second = buildNode("new-node");
		const secondClient = shopClient(second);
		await second.broker.start();
		try {
			// The old node is unknown to the new one: after its start-up grace it takes the order over.
			await waitFor(async () => (await secondClient.get(orderId)).status !== "pending", 12_000, "the order to settle");
			await expect(secondClient.get(orderId)).resolves.toMatchObject({ status: "cancelled", cancelReason: "payment_failed" });
			expect(await secondClient.stockOf(p.id)).toBe(4);
			expect(await secondClient.payments(orderId)).toEqual([]);
		} finally {
			await second.broker.stop();
		}
	});
});
