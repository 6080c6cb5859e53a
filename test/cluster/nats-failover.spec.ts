/**
 * NATS as a cluster, not a single point of failure (README "Many nodes on NATS"): the seven-node
 * layout on three nats-servers joined by routes, every node given all three URLs (the nats client
 * picks them in random order, so the nodes spread over the servers). Under an order load, the
 * server most nodes are connected to is killed with SIGKILL: its nodes move to the other two within
 * seconds, every node sees every other again, orders succeed again, no accepted order is lost, the
 * gateway never answers 500, and the books balance.
 *
 * Which node is connected where is read from each server's monitoring endpoint (`/connz`, the
 * connection names are the node ids); what each node sees is asked of the nodes (observer).
 */
import { randomUUID } from "node:crypto";
import { client, loginAs, registerUser } from "../support/shop";
import { layoutOf, startBusOnCluster, type Bus } from "../support/bus";
import type { ClusterMember, NatsCluster } from "../support/nats";
import { auditBooks } from "../support/books";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { CLUSTER_LAYOUT } from "../../scripts/cluster-layout";
import { busNodesOf } from "../../scripts/nats-auth";

/** Concurrent buyers of the load, each placing one order after another. */
const BUYERS = 12;
/** How long every node may take to be back on the bus and orders to succeed again after the kill. */
const RECOVERY_BOUND_MS = 10_000;

jest.setTimeout(120_000);

interface Answer {
	status: number;
	sentAt: number;
	answeredAt: number;
}

describe("the shop on a three-server NATS cluster", () => {
	let bus: Bus<NatsCluster>;
	/** The nats-server the failover test killed. */
	let killed: ClusterMember | undefined;
	const nodeIDs = CLUSTER_LAYOUT.map(node => node.nodeID);
	const FULL = layoutOf(CLUSTER_LAYOUT);

	beforeAll(async () => {
		// payments-3 joins later, while a server is down.
		const nodes = busNodesOf(CLUSTER_LAYOUT, []);
		bus = await startBusOnCluster({ name: "failover", size: 3, nodes: { ...nodes, payments: [...nodes.payments, "payments-3"] } });
		// At info, for the nodes' own lines about losing a server and connecting again.
		await bus.startLayout(FULL, { env: { LOG_LEVEL: "info" } });
	});

	afterAll(async () => {
		await bus?.stop();
	});

	/** Per live server, the shop nodes connected to it (by connection name). */
	async function placement(): Promise<Map<ClusterMember, string[]>> {
		const live = bus.nats.servers.filter(server => server.alive());
		const lists = await Promise.all(live.map(async server => (await server.connections()).map(c => c.name ?? "").filter(name => bus.nodes.has(name))));
		return new Map(live.map((server, i) => [server, lists[i].sort()]));
	}

	it("gives every node all three servers: each node connected once, under its node id, to one of them", async () => {
		const where = await placement();
		// Every node is connected exactly once, and the connection is named after it.
		expect([...where.values()].flat().sort()).toEqual([...nodeIDs].sort());
		// Routes: a message crosses servers (nodes on different servers see each other: checked in beforeAll).
		await bus.nats.waitForRoutes(1000);
		const urls = bus.urlFor("orders").split(",");
		expect(urls).toHaveLength(3);
		expect(new Set(urls.map(url => new URL(url).host)).size).toBe(3);
	});

	it("survives kill -9 of the busiest nats-server under load: nodes back within seconds, no accepted order lost, no 500, books balanced", async () => {
		const api = bus.nodes.get("api-1")!;
		const gateway = client(api.baseUrl);
		const adminToken = await loginAs(api.baseUrl, bus.admin.email, bus.admin.password);
		// One product with stock for any rate this machine reaches: no order of the load is refused for stock.
		const products = await gateway.get("/api/products?pageSize=100");
		const product = products.body.rows[0] as { id: string; stock: number };
		expect((await gateway.post(`/api/products/${product.id}/restock`, { quantity: 100_000 }, { token: adminToken })).status).toBe(200);
		const expectedStock = new Map([[product.id, product.stock + 100_000]]);

		const buyers = await Promise.all(Array.from({ length: BUYERS }, () => registerUser(api.baseUrl)));
		const answers: Answer[] = [];
		const accepted: string[] = [];
		let stop = false;
		const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

		/** One order as a careful client places it: the same Idempotency-Key again after a 503 or a broken connection. */
		async function order(token: string): Promise<void> {
			const key = randomUUID();
			for (let attempt = 0; attempt < 20; attempt++) {
				const sentAt = Date.now();
				let status = 0;
				let id: string | undefined;
				try {
					const res = await gateway.post(
						"/api/orders",
						{ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } },
						{ token, headers: { "idempotency-key": key } }
					);
					status = res.status;
					id = res.body?.id;
				} catch {
					// The gateway's process never stops here; a broken connection is retried all the same.
				}
				answers.push({ status, sentAt, answeredAt: Date.now() });
				if (status === 201 || status === 202) {
					accepted.push(id!);
					return;
				}
				if (status !== 503 && status !== 0) return;
				await sleep(200);
			}
		}
		const load = buyers.map(async buyer => {
			while (!stop) {
				await order(buyer.token);
				await sleep(20);
			}
		});

		// Orders flow for a while before the kill.
		const loadStartedAt = Date.now();
		while (accepted.length < 2 * BUYERS || Date.now() - loadStartedAt < 2000) await sleep(20);

		const before = await placement();
		const [victim, victimNodes] = [...before.entries()].sort((a, b) => b[1].length - a[1].length)[0];
		const killedAt = Date.now();
		await victim.kill();
		killed = victim;

		// Every node of the killed server is connected to one of the others again...
		const reconnectedAt = new Map<string, number>();
		while (reconnectedAt.size < victimNodes.length && Date.now() - killedAt < 30_000) {
			const connected = [...(await placement()).values()].flat();
			for (const nodeID of victimNodes) if (connected.includes(nodeID) && !reconnectedAt.has(nodeID)) reconnectedAt.set(nodeID, Date.now());
			await sleep(25);
		}
		const allConnectedAt = Math.max(...reconnectedAt.values());
		// ...every node sees every other one (the registry never lost them, or took them back)...
		await bus.observer.waitUntilSeen(nodeIDs, FULL, 30_000);
		const allSeenAt = Date.now();
		// ...and an order sent from then on succeeds.
		while (!answers.some(answer => answer.sentAt >= allSeenAt && answer.status === 201) && Date.now() - killedAt < 60_000) await sleep(20);
		const firstOrderAfter = answers.find(answer => answer.sentAt >= allSeenAt && answer.status === 201);
		const recoveredMs = (firstOrderAfter?.answeredAt ?? Infinity) - killedAt;

		// Some more load on the two remaining servers, then a quiet shop for the audit.
		await sleep(2000);
		stop = true;
		await Promise.all(load);
		const lastHit = Math.max(killedAt, ...answers.filter(answer => answer.sentAt < allSeenAt && answer.status !== 201).map(answer => answer.answeredAt));

		const sinceKill = (at: number) => `${((at - killedAt) / 1000).toFixed(2)} s`;
		const counts = answers.reduce<Record<number, number>>((all, answer) => ({ ...all, [answer.status]: (all[answer.status] ?? 0) + 1 }), {});
		const gap = answers.filter(answer => answer.answeredAt >= killedAt && answer.status !== 201);
		console.log(
			[
				`killed nats-server ${victim.hostPort} (kill -9) with ${victimNodes.length} of 7 nodes on it: ${victimNodes.join(", ")}`,
				`reconnected: ${[...reconnectedAt].map(([nodeID, at]) => `${nodeID} ${sinceKill(at)}`).join(", ")}`,
				`every node connected ${sinceKill(allConnectedAt)}, every node sees every other ${sinceKill(allSeenAt)} after the kill`,
				`recovered in ${(recoveredMs / 1000).toFixed(2)} s (first order sent after that answered 201)`,
				`answers: ${JSON.stringify(counts)} in ${((Date.now() - loadStartedAt) / 1000).toFixed(1)} s; not 201 after the kill: ${gap.length}, the last of them ${sinceKill(lastHit)} after it`,
				`  ${gap.map(answer => `${answer.status} sent ${sinceKill(answer.sentAt)} answered ${sinceKill(answer.answeredAt)}`).join("; ")}`
			].join("\n")
		);

		expect(victimNodes.length).toBeGreaterThanOrEqual(3);
		expect(reconnectedAt.size).toBe(victimNodes.length);
		// Each node that moved says so in its own log, with the server it lost and how long it took.
		for (const nodeID of victimNodes) {
			const log = bus.nodes.get(nodeID)!.output();
			expect(log).toContain(`Lost the connection to nats-server ${victim.hostPort}`);
			expect(log).toMatch(/Connected again, to nats-server [\d.:]+, \d+ ms after the loss/);
		}
		expect(recoveredMs).toBeLessThan(RECOVERY_BOUND_MS);
		// The contract's answers only: accepted, pending, or 503 while a call had nowhere to go; never a 500.
		expect(answers.filter(answer => ![201, 202, 503].includes(answer.status))).toEqual([]);
		// After the recovery, orders succeed as before the kill.
		const after = answers.filter(answer => answer.sentAt >= allSeenAt);
		expect(after.length).toBeGreaterThan(0);
		expect(after.filter(answer => answer.status === 201).length).toBeGreaterThan(after.length / 2);

		// No accepted order is lost, every one settles, and the books balance.
		const books = await auditBooks({ baseUrl: api.baseUrl, adminToken, expectedStock, settleWithinMs: 30_000 });
		expect(books.problems).toEqual([]);
		const known = new Set(books.orders.map(order => order.id));
		expect(accepted.filter(id => !known.has(id))).toEqual([]);
		expect(new Set(accepted).size).toBe(accepted.length);
	});

	it("starts a node while a server of its list is down: it joins through the others", async () => {
		expect(killed).toBeDefined();
		// The dead server first in its list (the client shuffles the list; either way it must get in).
		const urls = bus.urlFor("payments").split(",");
		const transporter = [...urls.filter(url => new URL(url).host === killed!.hostPort), ...urls.filter(url => new URL(url).host !== killed!.hostPort)].join(
			","
		);
		await bus.startNode("payments-3", "payments", { transporter });
		await bus.observer.waitUntilSeen(["api-1", "orders-1"], { payments: ["payments-1", "payments-2", "payments-3"] }, 20_000);
		const where = [...(await placement()).values()].flat();
		expect(where.filter(name => name === "payments-3")).toHaveLength(1);
	});
});
