/**
 * A call a stopping node refuses (it has told the others it is leaving, but this caller had already
 * picked it) is sent to another node, even for an action whose retry policy is off; anything else
 * the action raised is not sent again. Three brokers on Moleculer's in-memory Fake transporter.
 */
import { Errors, ServiceBroker, type Context, type Middleware } from "moleculer";
import { isRefusedUnrun, RefusedRetryMiddleware } from "../../lib/refused-retry";

const NAMESPACE = `refused-${process.pid}`;

function broker(nodeID: string, middlewares: Middleware[] = []) {
	return new ServiceBroker({
		namespace: NAMESPACE,
		nodeID,
		transporter: "Fake",
		logger: false,
		// The shop's: retries on, but off for the action below.
		retryPolicy: { enabled: true, retries: 2, delay: 10 },
		registry: { strategy: "RoundRobin" },
		middlewares
	});
}

function ordersOn(node: ServiceBroker, ran: string[], fail?: () => Error) {
	node.createService({
		name: "orders",
		actions: {
			create: {
				retryPolicy: { enabled: false },
				handler() {
					ran.push(node.nodeID);
					if (fail) throw fail();
					return { by: node.nodeID };
				}
			}
		}
	});
}

async function cluster(withMiddleware: boolean, fail?: () => Error) {
	const ran: string[] = [];
	const caller = broker("caller", withMiddleware ? [RefusedRetryMiddleware()] : []);
	const stopping = broker("orders-1");
	const healthy = broker("orders-2");
	ordersOn(stopping, ran, fail);
	ordersOn(healthy, ran, fail);
	await Promise.all([caller.start(), stopping.start(), healthy.start()]);
	await caller.waitForServices(["orders"]);
	while ((caller.registry.getActionEndpoints("orders.create")?.endpoints.length ?? 0) < 2) await new Promise(resolve => setTimeout(resolve, 10));
	// orders-1 is in its stop: it refuses what arrives, but the caller has not heard it leave yet.
	(stopping as unknown as { stopping: boolean }).stopping = true;
	return { caller, ran, stop: () => Promise.all([caller, stopping, healthy].map(b => b.stop())) };
}

describe("RefusedRetry", () => {
	it("without it, a create that reaches a stopping node fails (what clients saw as a 503)", async () => {
		const { caller, stop } = await cluster(false);
		try {
			const answers = await Promise.allSettled(Array.from({ length: 4 }, () => caller.call("orders.create", {})));
			expect(answers.filter(answer => answer.status === "rejected").map(answer => (answer as PromiseRejectedResult).reason.name)).toEqual([
				"ServiceNotAvailableError",
				"ServiceNotAvailableError"
			]);
		} finally {
			await stop();
		}
	});

	it("sends a refused create to the other node, once, and it runs there only", async () => {
		const { caller, ran, stop } = await cluster(true);
		try {
			const answers = await Promise.all(Array.from({ length: 4 }, () => caller.call<{ by: string }, object>("orders.create", {})));
			expect(answers.map(answer => answer.by)).toEqual(["orders-2", "orders-2", "orders-2", "orders-2"]);
			expect(ran).toEqual(["orders-2", "orders-2", "orders-2", "orders-2"]);
		} finally {
			await stop();
		}
	});

	it("does not send again a create that ran and failed, even with the same error class", async () => {
		const { caller, ran, stop } = await cluster(true, () => new Errors.ServiceNotAvailableError({ action: "inventory.reserve" }));
		try {
			const answers = await Promise.allSettled(Array.from({ length: 4 }, () => caller.call("orders.create", {})));
			expect(answers.every(answer => answer.status === "rejected")).toBe(true);
			// Two went to orders-1 (refused, sent on to orders-2), two to orders-2 directly: each ran once, on orders-2, and failed there.
			expect(ran).toEqual(["orders-2", "orders-2", "orders-2", "orders-2"]);
		} finally {
			await stop();
		}
	});

	it("treats a refusal that says the handler had started (a database closed under it) as a call that ran", () => {
		const ctx = { action: { name: "orders.create" }, nodeID: "orders-2" } as unknown as Context;
		const refusal = (data: object) => new Errors.ServiceNotAvailableError(data as { action: string; nodeID: string });
		expect(isRefusedUnrun(refusal({ action: "orders.create", nodeID: "orders-2" }), ctx)).toBe(true);
		// mixins/db.mixin.ts marks what it throws after the handler started: sending it on could place an order twice.
		expect(isRefusedUnrun(refusal({ action: "orders.create", nodeID: "orders-2", ran: true }), ctx)).toBe(false);
	});
});
