/**
 * Chaos on purpose on the NATS layout, closed as in production (a NATS user per role, TRANSIT_KEY),
 * switched from a REPL node that joins the bus as an operator does it
 * (`NODEID=ops-1 TRANSPORTER=nats://ops:...@... TRANSIT_KEY=... npm run repl`, in a real terminal)
 * and from the admin API:
 *
 * - every capture on payments-1 fails: orders keep answering 201 (the circuit breaker on orders-1
 *   opens for that endpoint and the captures go to payments-2), and orders-1's metrics show it open;
 * - inventory.reserve 2 s slower: orders answer 202 pending after the reserve step's timeout, never
 *   hang, and settle once the chaos has ended by itself.
 */
import { client, eventually, loginAs, registerUser } from "../support/shop";
import { startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import type { Layout } from "../support/observer";
import { startRepl, type Terminal } from "../support/terminal";
import { auditBooks } from "../support/books";
import { APPROVED_TEST_CARD } from "../../lib/cards";

/** orders.create's own timeout (services/orders/orders.service.ts, README "Chaos"): no order answer takes longer. */
const ORDER_ANSWER_LIMIT_MS = 12_000;

jest.setTimeout(120_000);

describe("chaos on the NATS layout, from a REPL node and the admin API", () => {
	let bus: Bus<NatsServer>;
	let repl: Terminal;
	let gateway: ReturnType<typeof client>;
	let adminToken: string;
	let buyer: { token: string };
	let productId: string;
	const initialStock = new Map<string, number>();

	const LAYOUT: Layout = { users: ["users-1"], inventory: ["inventory-1"], orders: ["orders-1"], payments: ["payments-1", "payments-2"], api: ["api-1"] };

	async function metric(nodeID: string, name: string, labels: string[]): Promise<number> {
		const text = await (await fetch(`http://127.0.0.1:${bus.nodes.get(nodeID)!.metricsPort}/metrics`)).text();
		return text
			.split("\n")
			.filter(line => line.startsWith(`${name}{`) && labels.every(label => line.includes(label)))
			.reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
	}
	const captures = (nodeID: string) => metric(nodeID, "moleculer_request_total", ['action="payments.capture"']);
	const breakerOn = ['affectedNodeID="payments-1"', 'action="payments.capture"'];

	async function placeOrder() {
		const started = Date.now();
		const res = await gateway.post("/api/orders", { items: [{ productId, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token: buyer.token });
		return { status: res.status, body: res.body, ms: Date.now() - started };
	}

	beforeAll(async () => {
		bus = await startBus({ name: "chaos", nodes: { ...LAYOUT, ops: ["ops-1"] } });
		await bus.startLayout(LAYOUT);

		// The operator's console: `npm run repl` with the ops user's credentials (what `npm run cluster` writes to ops.env).
		repl = await startRepl({
			NODEID: "ops-1",
			TRANSPORTER: bus.urlFor("ops"),
			TRANSIT_KEY: bus.transitKey!.toString("hex"),
			METRICS_PORT: "0",
			LOG_LEVEL: "warn",
			SERVICES: "",
			DATA_DIR: bus.dataDir
		});
		await bus.observer.waitUntilSeen(["ops-1"], LAYOUT);

		gateway = client(bus.nodes.get("api-1")!.baseUrl);
		adminToken = await loginAs(bus.nodes.get("api-1")!.baseUrl, bus.admin.email, bus.admin.password);
		buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const products = await gateway.get("/api/products?pageSize=100");
		for (const product of products.body.rows) initialStock.set(product.id, product.stock);
		productId = products.body.rows[0].id;
	});

	afterAll(async () => {
		repl?.stop();
		await bus?.stop();
	});

	it("the REPL joins the closed bus as ops-1, runs no service itself, and shows every node", async () => {
		const out = await repl.run("cluster", /Ready|Degraded/);
		expect(out).toMatch(/ops-1 \(this REPL\) │ yes\s+│\s+│/);
		for (const [service, ids] of Object.entries(LAYOUT)) for (const id of ids) expect(out).toMatch(new RegExp(`║ ${id}\\s+│ yes\\s+│ ${service}\\s+│ \\d+`));
		expect(out).toContain("Ready: api: api-1; inventory: inventory-1; orders: orders-1; payments: payments-1,payments-2; users: users-1");
	});

	it("all errors on payments-1: orders keep answering 201, the breaker on orders-1 opens and captures go to payments-2", async () => {
		const out = await repl.run("chaos payments.capture --errors 1 --node payments-1 --for 60s", /ends in[\s\S]*╚/);
		expect(out).toContain("Chaos on: payments.capture on payments-1: errors 100% for 60s (seed 1)");
		expect(out).toMatch(/║ payments-1\s+│ payments\.capture on payments-1: errors 100% for 60s \(seed 1\)\s+│ \d+s/);
		expect(out).toMatch(/║ payments-2\s+│ none/);
		expect(out).toMatch(/║ orders-1\s+│ none/);

		const before = { p1: await captures("payments-1"), p2: await captures("payments-2") };
		const statuses: number[] = [];
		let sawOpen = false;
		// Orders until the breaker has been seen open (it half-opens every 2 s to try payments-1 again), at least 12.
		for (let i = 0; i < 40 && !(sawOpen && statuses.length >= 12); i++) {
			statuses.push((await placeOrder()).status);
			sawOpen ||= (await metric("orders-1", "moleculer_circuit_breaker_opened_active", breakerOn)) === 1;
		}
		expect(statuses).toEqual(Array(statuses.length).fill(201));
		expect(sawOpen).toBe(true);
		expect(await metric("orders-1", "moleculer_circuit_breaker_opened_total", breakerOn)).toBeGreaterThanOrEqual(1);
		// Every order was paid by payments-2; payments-1 was tried only until the breaker opened (and by its half-open probes).
		const after = { p1: await captures("payments-1"), p2: await captures("payments-2") };
		expect(after.p2 - before.p2).toBe(statuses.length);
		expect(after.p1 - before.p1).toBeLessThan(statuses.length / 2);
		console.log(
			`chaos errors on payments-1: ${statuses.length} orders, all 201; captures tried on payments-1: ${after.p1 - before.p1}, paid by payments-2: ${after.p2 - before.p2}`
		);

		expect(await repl.run("chaos off", /Chaos off/)).toContain("Chaos off: every rule");
		expect(await repl.run("chaos", /╚/)).not.toContain("payments.capture on");
	});

	it("2 s latency on inventory.reserve: orders answer 202 pending within their time limit, and settle once the chaos ends by itself", async () => {
		const on = await gateway.post("/api/admin/chaos", { action: "inventory.reserve", latency: "2s", for: "5s" }, { token: adminToken });
		expect(on.status).toBe(200);
		await eventually(
			async () =>
				(await gateway.get("/api/admin/chaos", { token: adminToken })).body.nodes.some(
					(node: { nodeID: string; rules?: unknown[] }) => node.nodeID === "inventory-1" && node.rules?.length === 1
				),
			5000,
			100
		);

		const slow = await Promise.all([placeOrder(), placeOrder(), placeOrder()]);
		for (const order of slow) {
			expect(order.status).toBe(202);
			expect(order.body.status).toBe("pending");
			// Held by the reserve step's timeout (1.5 s), never by the 2 s of latency nor the request's own limit.
			expect(order.ms).toBeGreaterThanOrEqual(1400);
			expect(order.ms).toBeLessThan(ORDER_ANSWER_LIMIT_MS);
		}
		console.log(`2 s latency on inventory.reserve: orders answered 202 in ${slow.map(order => order.ms).join(", ")} ms`);

		// The rule ends by itself on every node after 5 s (the REPL lists none), and the pending orders settle.
		const out = await repl.run("orders --status pending", /order\(s\) pending/);
		for (const order of slow) expect(out).toContain(order.body.id);
		await eventually(async () => !(await repl.run("chaos", /╚/)).includes("inventory.reserve on"), 15_000, 500);
		await eventually(
			async () =>
				(await Promise.all(slow.map(order => gateway.get(`/api/orders/${order.body.id}`, { token: buyer.token })))).every(
					res => res.body.status === "confirmed"
				),
			20_000,
			250
		);
		const fast = await placeOrder();
		expect(fast.status).toBe(201);
	});

	it("the books balance, audited from the REPL and through the API", async () => {
		const out = await repl.run("books --settle 20s", /The books balance|problem\(s\)/, 30_000);
		expect(out).toMatch(/stock never negative\s+│ 6 products\s+│ ok/);
		expect(out).toContain("The books balance");
		const books = await auditBooks({ baseUrl: bus.nodes.get("api-1")!.baseUrl, adminToken, expectedStock: initialStock, settleWithinMs: 20_000 });
		expect(books.problems).toEqual([]);
	});
});
