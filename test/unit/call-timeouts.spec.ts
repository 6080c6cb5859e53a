/**
 * lib/call-timeouts.ts (with lib/broker-middlewares.ts): where the shop's broker arms a request
 * timer. Remote calls and local calls with a timeout of their own keep theirs; the calls a handler
 * with no deadline makes (the gateway's, for an HTTP client) get `requestTimeout`; a call inheriting
 * a deadline another timer already guards, and a top-level call of the process's own code with no
 * timeout, get none. And the order flow's steps still time out (a slow capture: 202, then confirmed).
 */
import { Errors, ServiceBroker, type BrokerOptions, type Context, type ServiceSchema } from "moleculer";
import { shopMiddlewares } from "../../lib/broker-middlewares";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import type { AuthUser, Order, Product } from "../../lib/types";
import InventoryService from "../../services/inventory/inventory.service";
import OrdersService from "../../services/orders/orders.service";
import PaymentsService from "../../services/payments/payments.service";
import { metaOf, sleep, unitSettings, waitFor } from "./helpers";

const REQUEST_TIMEOUT = 200;

function shopBroker(options: BrokerOptions = {}): ServiceBroker {
	return new ServiceBroker({ logger: false, requestTimeout: REQUEST_TIMEOUT, internalMiddlewares: false, middlewares: shopMiddlewares([]), ...options });
}

/** Never answers, until the test ends. */
const hangs = () => new Promise(resolve => setTimeout(resolve, 5000).unref());

const services: ServiceSchema[] = [
	{
		name: "slow",
		actions: {
			hang: hangs,
			late: async () => {
				await sleep(REQUEST_TIMEOUT * 2);
				return "late";
			},
			declared: { timeout: 100, handler: hangs }
		}
	},
	{
		name: "gateway",
		actions: {
			// As the gateway's `api.rest`: no deadline of its own; what it calls for a client is timed.
			rest: { timeout: 0, handler: (ctx: Context<{ action: string }>) => ctx.call(ctx.params.action) }
		}
	},
	{
		name: "saga",
		actions: {
			// As the order flow: a long deadline, a step with a shorter timeout, caught and compensated.
			run: {
				timeout: 2000,
				async handler(ctx: Context) {
					try {
						return await ctx.call("slow.hang", {}, { timeout: 100 });
					} catch (err) {
						return `compensated after ${(err as Error).name}`;
					}
				}
			},
			// A handler whose deadline its calls inherit.
			inherit: { timeout: 150, handler: (ctx: Context) => ctx.call("slow.hang") }
		}
	}
];

describe("request timeouts on one node", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = shopBroker();
		for (const schema of services) broker.createService(schema);
		await broker.start();
	});
	afterAll(() => broker.stop());

	it("a local call with a timeout of its own times out", async () => {
		await expect(broker.call("slow.hang", {}, { timeout: 100 })).rejects.toThrow(Errors.RequestTimeoutError);
	});

	it("an action's declared timeout applies to its local calls", async () => {
		await expect(broker.call("slow.declared")).rejects.toMatchObject({ name: "RequestTimeoutError", data: { action: "slow.declared" } });
	});

	it("a call made by a handler with no deadline (the gateway's) gets requestTimeout: a hung handler costs the client a timeout, not forever", async () => {
		await expect(broker.call("gateway.rest", { action: "slow.hang" })).rejects.toMatchObject({ name: "RequestTimeoutError", data: { action: "slow.hang" } });
	});

	it("an order step's shorter timeout fires inside its handler's own, which compensates", async () => {
		await expect(broker.call("saga.run")).resolves.toBe("compensated after RequestTimeoutError");
	});

	it("a call inheriting a guarded deadline is answered by the enclosing call's timer", async () => {
		await expect(broker.call("saga.inherit")).rejects.toMatchObject({ name: "RequestTimeoutError", data: { action: "saga.inherit" } });
	});

	it("a top-level local call of the process's own code with no timeout waits for its answer (no timer)", async () => {
		await expect(broker.call("slow.late")).resolves.toBe("late");
		// With a timeout given, the same call is timed.
		await expect(broker.call("slow.late", {}, { timeout: 100 })).rejects.toThrow(Errors.RequestTimeoutError);
	});
});

describe("request timeouts across nodes", () => {
	it("a remote call times out on the caller, at requestTimeout or its own timeout", async () => {
		const caller = shopBroker({ nodeID: "caller", transporter: "Fake" });
		const callee = shopBroker({ nodeID: "callee", transporter: "Fake" });
		for (const schema of services) callee.createService(schema);
		try {
			await Promise.all([caller.start(), callee.start()]);
			await caller.waitForServices(["slow", "saga"]);
			await expect(caller.call("slow.hang", {}, { retries: 0 })).rejects.toMatchObject({ name: "RequestTimeoutError", data: { nodeID: "callee" } });
			await expect(caller.call("slow.late", {}, { retries: 0 })).rejects.toThrow(Errors.RequestTimeoutError);
			await expect(caller.call("slow.hang", {}, { timeout: 50, retries: 0 })).rejects.toThrow(Errors.RequestTimeoutError);
			// On the callee, the calls a remote request makes inherit its deadline: the step's own timeout still fires there.
			await expect(caller.call("saga.run", {}, { retries: 0 })).resolves.toBe("compensated after RequestTimeoutError");
		} finally {
			await Promise.all([caller.stop(), callee.stop()]);
		}
	});

	it("a remote call that timed out is no longer tracked: the caller's stop does not wait out shutdownTimeout for it", async () => {
		// tracking as moleculer.config.ts has it; shutdownTimeout long enough that waiting it out is unmistakable.
		const tracking = { enabled: true, shutdownTimeout: 4000 };
		const caller = shopBroker({ nodeID: "caller", transporter: "Fake", tracking });
		const callee = shopBroker({ nodeID: "callee", transporter: "Fake", tracking });
		for (const schema of services) callee.createService(schema);
		const tracked = () => (caller as unknown as { _trackedContexts: Context[] })._trackedContexts;
		await Promise.all([caller.start(), callee.start()]);
		try {
			await caller.waitForServices(["slow"]);
			await expect(caller.call("slow.hang", {}, { retries: 0 })).rejects.toThrow(Errors.RequestTimeoutError);
			await expect(caller.call("slow.late", {}, { retries: 0 })).rejects.toThrow(Errors.RequestTimeoutError);
			// The late answer comes after the caller gave up (an orphan): nothing may still count the call as running.
			await sleep(REQUEST_TIMEOUT * 2);
			expect(tracked()).toEqual([]);
			const stopping = Date.now();
			await caller.stop();
			expect(Date.now() - stopping).toBeLessThan(tracking.shutdownTimeout / 2);
		} finally {
			await Promise.all([caller.stop(), callee.stop()]);
		}
	});
});

describe("the order flow on the shop's middlewares", () => {
	const alice: AuthUser = { id: "user-alice", email: "alice@shop.test", role: "customer" };
	const admin: AuthUser = { id: "user-admin", email: "admin@shop.test", role: "admin" };

	it("a capture slower than PAYMENT_TIMEOUT_MS is timed out locally: 202 pending, then confirmed", async () => {
		const broker = shopBroker({ requestTimeout: 5000, cacher: "Memory" });
		const settings = unitSettings();
		let slow = true;
		broker.createService({ name: "inventory", mixins: [InventoryService], settings: settings.inventory } as ServiceSchema);
		broker.createService({
			name: "payments",
			mixins: [PaymentsService],
			settings: settings.payments,
			hooks: {
				before: {
					capture: async () => {
						if (slow) {
							slow = false;
							await sleep(600);
						}
					}
				}
			}
		} as ServiceSchema);
		broker.createService({
			name: "orders",
			mixins: [OrdersService],
			settings: { ...settings.orders, paymentTimeoutMs: 300, settleIntervalMs: 100 }
		} as ServiceSchema);
		try {
			await broker.start();
			const product = await broker.call<Product, object>("inventory.create", { sku: "T-1", name: "Timer", price: 700, stock: 3 }, { meta: metaOf(admin) });
			const meta = metaOf(alice);
			const order = await broker.call<Order, object>(
				"orders.create",
				{ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } },
				{ meta }
			);
			expect([meta.$statusCode, order.status]).toEqual([202, "pending"]);
			await waitFor(
				async () => (await broker.call<Order, object>("orders.get", { id: order.id }, { meta: metaOf(alice) })).status === "confirmed",
				8000,
				"the order to be confirmed"
			);
		} finally {
			await broker.stop();
		}
	});
});
