/**
 * On NATS, a SIGTERM of one inventory node of two costs clients no 500: the node leaves the
 * registries first, then drains, then closes its database; a call that still reaches it is retried
 * on the other node (or the order waits, pending). The books balance afterwards.
 */
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { auditBooks } from "../support/books";
import { startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import type { Layout } from "../support/observer";
import { client, loginAs, registerUser, type ApiAnswer } from "../support/shop";

const CLIENTS = 16;

jest.setTimeout(120_000);

describe("a SIGTERM of one inventory node of two, under load", () => {
	let bus: Bus<NatsServer>;

	const LAYOUT: Layout = { users: ["users-1"], inventory: ["inventory-1", "inventory-2"], orders: ["orders-1"], payments: ["payments-1"], api: ["api-1"] };

	beforeAll(async () => {
		// The bus closed as in production: a NATS user per role, packets encrypted with TRANSIT_KEY.
		bus = await startBus({ name: "stop", nodes: LAYOUT });
		await bus.startLayout(LAYOUT);
	});

	afterAll(async () => {
		await bus?.stop();
	});

	it("every answer is 2xx or a 503, never a 500, and the books balance", async () => {
		const api = bus.nodes.get("api-1")!;
		const gateway = client(api.baseUrl);
		const admin = await loginAs(api.baseUrl, bus.admin.email, bus.admin.password);
		const created = await gateway.post("/api/products", { sku: `STOP-${process.pid}`, name: "Stop test", price: 250, stock: 100_000 }, { token: admin });
		expect(created.status).toBe(201);
		const product = created.body as { id: string; stock: number };
		const catalogue = (await gateway.get("/api/products?pageSize=100")).body.rows as Array<{ id: string; stock: number }>;
		const buyers = await Promise.all(Array.from({ length: CLIENTS }, () => registerUser(api.baseUrl, "stop")));

		const answers: Array<{ what: string; answer: ApiAnswer }> = [];
		let loading = true;
		let count = 0;
		const load = buyers.map(async (buyer, i) => {
			for (let n = 0; loading; n++) {
				// Orders (inventory reserve and commit) and catalogue reads (inventory list and get), through both inventory nodes.
				const answer =
					(i + n) % 2 === 0
						? await gateway.post(
								"/api/orders",
								{ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } },
								{ token: buyer.token }
							)
						: await gateway.get(n % 4 === 1 ? `/api/products/${product.id}` : `/api/products?page=${1 + (n % 3)}&pageSize=2`);
				answers.push({ what: (i + n) % 2 === 0 ? "order" : "read", answer });
				count++;
			}
		});

		while (count < 8 * CLIENTS) await new Promise(resolve => setTimeout(resolve, 20));
		const stopping = bus.nodes.get("inventory-2")!;
		expect(await stopping.stop()).toBe(0);
		const atStop = count;
		// Load on the one inventory node left, for as long again.
		while (count < 2 * atStop) await new Promise(resolve => setTimeout(resolve, 20));
		loading = false;
		await Promise.all(load);

		const byStatus: Record<string, number> = {};
		for (const { what, answer } of answers) byStatus[`${what} ${answer.status}`] = (byStatus[`${what} ${answer.status}`] ?? 0) + 1;
		const wrong = answers.filter(({ answer }) => ![200, 201, 202, 503].includes(answer.status));
		expect({ byStatus, wrong: wrong.map(({ what, answer }) => ({ what, status: answer.status, body: answer.body })) }).toEqual({ byStatus, wrong: [] });
		for (const { answer } of answers.filter(({ answer }) => answer.status === 503)) expect(answer.body.type).toBe("SERVICE_NOT_AVAILABLE");
		expect(stopping.output()).not.toMatch(/\bERROR\b|closed|Unhandled/i);

		const books = await auditBooks({
			baseUrl: api.baseUrl,
			adminToken: admin,
			expectedStock: new Map(catalogue.map(p => [p.id, p.stock])),
			settleWithinMs: 20_000
		});
		expect(books.problems).toEqual([]);
	});
});
