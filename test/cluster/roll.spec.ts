/**
 * A rolling restart of every node, gateways included, under a steady load through nginx: no client
 * sees it. Real processes, as `npm run cluster` runs them: nats-server with a user per role, the
 * layout of scripts/cluster-layout.ts (two gateways), nginx in front, and the roll of
 * `npm run cluster -- roll` (scripts/roll.ts). The client does not retry anything: it talks to nginx,
 * which never goes down.
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { CLUSTER_LAYOUT } from "../../scripts/cluster-layout";
import { busNodesOf } from "../../scripts/nats-auth";
import { startNginx, type Nginx, type Upstream } from "../../scripts/nginx";
import { NodeProcess, rollingRestart, startBusWatcher, summaryLine, type BusWatcher, type RollSummary } from "../../scripts/roll";
import { auditBooks } from "../support/books";
import { roleOf, startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import { client, freePort, loginAs, registerUser } from "../support/shop";

const WATCHER = "roll-watcher";
/** Requests per second, started on a fixed schedule whatever the answers take (an open-loop load). */
const RATE = 100;
const BUYERS = 12;

jest.setTimeout(170_000);

describe("a rolling restart of every node under load", () => {
	let bus: Bus<NatsServer>;
	let nginx: Nginx;
	let watcher: BusWatcher;
	let baseUrl: string;
	const nodes: NodeProcess[] = [];
	const output = new Map<string, string[]>();

	beforeAll(async () => {
		// The roll's own watcher (scripts/roll.ts) instead of the bus's observer.
		bus = await startBus({ name: "roll", nodes: busNodesOf(CLUSTER_LAYOUT, [WATCHER]), observer: false });
		const gatewayPorts = new Map<string, number>();
		for (const node of CLUSTER_LAYOUT) if (node.services.includes("api")) gatewayPorts.set(node.nodeID, await freePort());
		for (const node of CLUSTER_LAYOUT) {
			const port = gatewayPorts.get(node.nodeID);
			const env: NodeJS.ProcessEnv = {
				...process.env,
				NODE_ENV: "test",
				SERVICEDIR: "",
				DATA_DIR: bus.dataDir,
				PORT: String(port ?? 0),
				METRICS_PORT: "0",
				LOG_LEVEL: "warn",
				PASSWORD_HASH_COST: "14",
				...bus.nodeEnv(node.nodeID, roleOf(node.services.join(",")))
			};
			output.set(node.nodeID, []);
			nodes.push(new NodeProcess({ nodeID: node.nodeID, services: node.services, env, port }, { onLine: (id, line) => output.get(id)!.push(line) }));
		}
		for (const node of nodes) node.start();
		watcher = await startBusWatcher({ url: bus.urlFor("ops"), nodeID: WATCHER, transitKey: bus.transitKey });
		const listen = `127.0.0.1:${await freePort()}`;
		nginx = await startNginx({
			prefix: path.join(bus.dataDir, "nginx"),
			listen,
			upstreams: [...gatewayPorts.values()].map(port => ({ address: `127.0.0.1:${port}` }))
		});
		baseUrl = `http://${listen}`;
		// Every node sees every other node's services before the load starts.
		for (const viewer of nodes) {
			for (const node of nodes.filter(other => !other.isGateway && other !== viewer)) {
				const deadline = Date.now() + 60_000;
				while (!(await watcher.sees(viewer.nodeID, node.nodeID, node.spec.services))) {
					if (Date.now() > deadline) throw new Error(`${viewer.nodeID} does not see ${node.nodeID}:\n${output.get(node.nodeID)!.join("\n")}`);
					await new Promise(resolve => setTimeout(resolve, 100));
				}
			}
		}
		for (const port of gatewayPorts.values()) {
			const deadline = Date.now() + 30_000;
			while (
				(await fetch(`http://127.0.0.1:${port}/api/health/ready`)
					.then(res => res.status)
					.catch(() => 0)) !== 200
			) {
				if (Date.now() > deadline) throw new Error(`gateway on ${port} not ready`);
				await new Promise(resolve => setTimeout(resolve, 100));
			}
		}
	});

	afterAll(async () => {
		await Promise.all(nodes.map(node => node.kill()));
		await nginx?.stop();
		await watcher?.stop();
		await bus?.stop();
		if (bus) rmSync(bus.dataDir, { recursive: true, force: true });
	});

	it("answers every request 2xx, settles every accepted order and balances the books", async () => {
		const api = client(baseUrl);
		const admin = await loginAs(baseUrl, bus.admin.email, bus.admin.password);
		const created = await api.post("/api/products", { sku: `ROLL-${process.pid}`, name: "Roll test", price: 199, stock: 1_000_000 }, { token: admin });
		expect(created.status).toBe(201);
		const product = created.body as { id: string };
		const catalogue = (await api.get("/api/products?pageSize=100")).body.rows as Array<{ id: string; stock: number }>;
		const buyers = await Promise.all(Array.from({ length: BUYERS }, () => registerUser(baseUrl, "roll")));

		// The load: one request every 1000/RATE ms, whatever the answers take; reads and orders mixed.
		type Outcome = { what: string; status: number; type?: string; orderId?: string; error?: string; during: string };
		// The roll's step a request started in: which restart a failure belongs to.
		let step = "before the roll";
		const outcomes: Outcome[] = [];
		const inFlight = new Set<Promise<void>>();
		let n = 0;
		const fire = () => {
			const i = n++;
			const buyer = buyers[i % BUYERS];
			const kind = ["order", "products", "product", "order", "my orders", "me", "products", "order"][i % 8];
			const during = step;
			const call = async (): Promise<Outcome> => {
				const signal = AbortSignal.timeout(30_000);
				let res: Response;
				if (kind === "order") {
					res = await fetch(`${baseUrl}/api/orders`, {
						method: "POST",
						signal,
						headers: { "content-type": "application/json", authorization: `Bearer ${buyer.token}`, "idempotency-key": randomUUID() },
						body: JSON.stringify({ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } })
					});
				} else {
					const url = {
						products: "/api/products?page=1&pageSize=5",
						product: `/api/products/${product.id}`,
						"my orders": "/api/orders?pageSize=5",
						me: "/api/users/me"
					}[kind]!;
					res = await fetch(baseUrl + url, { signal, headers: { authorization: `Bearer ${buyer.token}` } });
				}
				const text = await res.text();
				let body: { type?: string; id?: string } = {};
				try {
					body = JSON.parse(text);
				} catch {
					body = { type: `not JSON: ${text.slice(0, 80)}` };
				}
				return { what: kind, status: res.status, type: res.status >= 300 ? body.type : undefined, orderId: kind === "order" ? body.id : undefined, during };
			};
			const p = call()
				.catch((err: Error) => ({ what: kind, status: 0, error: `${err.name}: ${(err.cause as Error | undefined)?.message ?? err.message}`, during }))
				.then(outcome => void outcomes.push(outcome));
			inFlight.add(p);
			void p.finally(() => inFlight.delete(p));
		};
		const loadStarted = Date.now();
		let loading = true;
		const load = (async () => {
			while (loading) {
				const due = Math.floor(((Date.now() - loadStarted) * RATE) / 1000);
				while (n < due) fire();
				await new Promise(resolve => setTimeout(resolve, 5));
			}
		})();

		await new Promise(resolve => setTimeout(resolve, 2000));
		const upstreams = (): Upstream[] => nodes.filter(node => node.isGateway).map(node => ({ address: `127.0.0.1:${node.spec.port}`, down: out.has(node) }));
		const out = new Set<NodeProcess>();
		let summary: RollSummary;
		try {
			summary = await rollingRestart({
				nodes,
				watcher,
				balancer: {
					takeOut: async node => {
						out.add(node);
						await nginx.reload(upstreams());
					},
					putBack: async node => {
						out.delete(node);
						await nginx.reload(upstreams());
					}
				},
				log: line => {
					step = line.replace(/: .*/, "");
					console.log(line);
				}
			});
		} finally {
			await new Promise(resolve => setTimeout(resolve, 2000));
			loading = false;
			await load;
			await Promise.all([...inFlight]);
		}
		const seconds = (Date.now() - loadStarted) / 1000;

		const byStatus: Record<string, number> = {};
		for (const outcome of outcomes) {
			const key = `${outcome.what} ${outcome.status}${outcome.type ? ` ${outcome.type}` : ""}${outcome.error ? ` ${outcome.error}` : ""}`;
			byStatus[key] = (byStatus[key] ?? 0) + 1;
		}
		const failed = outcomes.filter(outcome => ![200, 201, 202].includes(outcome.status));
		const failedDuring: Record<string, number> = {};
		for (const outcome of failed) failedDuring[outcome.during] = (failedDuring[outcome.during] ?? 0) + 1;
		console.log(
			`${summaryLine(summary!)}\nLoad: ${outcomes.length} requests in ${seconds.toFixed(1)} s (${(outcomes.length / seconds).toFixed(0)}/s), ` +
				`${failed.length} failed (started during: ${JSON.stringify(failedDuring)})\n${JSON.stringify(byStatus, null, 1)}`
		);
		expect(summary!.restarted).toBe(CLUSTER_LAYOUT.length);
		expect(outcomes.length).toBeGreaterThan(RATE * 10);
		expect({ failed: failed.length, byStatus }).toEqual({ failed: 0, byStatus: expect.any(Object) });

		// Every accepted order (201, or 202 pending) exists and settles; the books balance.
		const accepted = outcomes.filter(outcome => outcome.what === "order" && (outcome.status === 201 || outcome.status === 202)).map(outcome => outcome.orderId);
		const books = await auditBooks({ baseUrl, adminToken: admin, expectedStock: new Map(catalogue.map(p => [p.id, p.stock])), settleWithinMs: 30_000 });
		expect(books.problems).toEqual([]);
		const known = new Set(books.orders.map(order => order.id));
		expect(accepted.filter(id => !id || !known.has(id))).toEqual([]);
		for (const node of nodes)
			expect(
				`${node.nodeID}: ${output
					.get(node.nodeID)!
					.filter(line => /\bERROR\b|Unhandled/i.test(line))
					.join("\n")}`
			).toBe(`${node.nodeID}: `);
	});
});
