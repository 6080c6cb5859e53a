/**
 * Distributed tracing on the shop's closed NATS bus (NATS users per role, TRANSIT_KEY), one node per
 * service, exporting to a Zipkin v2 receiver this suite starts (a node:http server collecting
 * `POST /api/v2/spans`): one order is one trace across the processes, with correct parent links; a
 * client's W3C `traceparent` is continued; the exported spans carry no card number, password or
 * token; every log line of the request carries its id on every node; the back office reads the
 * order's trace from the nodes' recent spans.
 */
import { createServer, type Server } from "node:http";
import { randomBytes } from "node:crypto";
import { client, eventually, loginAs, registerUser } from "../support/shop";
import { startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import type { Layout } from "../support/observer";
import { APPROVED_TEST_CARD } from "../../lib/cards";

const PASSWORD = "correct horse battery"; // registerUser's password

jest.setTimeout(120_000);

/** A Zipkin v2 span as the receiver gets it (the fields read here). */
interface ZipkinSpan {
	traceId: string;
	id: string;
	parentId?: string | null;
	name: string;
	localEndpoint: { serviceName: string };
	tags: Record<string, string>;
}

describe("traces across the nodes", () => {
	let bus: Bus<NatsServer>;
	let zipkin: Server;
	let zipkinUrl: string;
	/** Every body posted to the receiver, as sent, and the spans in them. */
	const bodies: string[] = [];
	const spans: ZipkinSpan[] = [];
	let gateway: ReturnType<typeof client>;
	let adminToken: string;
	let productId: string;

	const LAYOUT: Layout = { users: ["users-1"], inventory: ["inventory-1"], orders: ["orders-1"], payments: ["payments-1"], api: ["api-1"] };

	const traceOf = (traceId: string) => spans.filter(span => span.traceId === traceId);

	async function placeOrder(token: string, headers: Record<string, string> = {}) {
		return gateway.post("/api/orders", { items: [{ productId, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token, headers });
	}

	/** Waits until the receiver has the trace's spans from these services (the nodes post every 2 s). */
	async function exported(traceId: string, services: string[]): Promise<ZipkinSpan[]> {
		await eventually(async () => services.every(service => traceOf(traceId).some(span => span.localEndpoint.serviceName === service)), 15_000);
		return traceOf(traceId);
	}

	beforeAll(async () => {
		zipkin = createServer((req, res) => {
			let body = "";
			req.setEncoding("utf8");
			req.on("data", chunk => (body += chunk));
			req.on("end", () => {
				if (req.method === "POST" && req.url === "/api/v2/spans") {
					bodies.push(body);
					spans.push(...(JSON.parse(body) as ZipkinSpan[]));
				}
				res.writeHead(req.url === "/api/v2/spans" ? 202 : 404);
				res.end();
			});
		});
		await new Promise<void>(resolve => zipkin.listen(0, "127.0.0.1", resolve));
		zipkinUrl = `http://127.0.0.1:${(zipkin.address() as { port: number }).port}`;

		bus = await startBus({ name: "tracing", nodes: LAYOUT });
		await bus.startLayout(LAYOUT, { env: { LOG_LEVEL: "info", TRACING_ZIPKIN_URL: zipkinUrl, TRACING_SAMPLE_RATE: "1" } });
		gateway = client(bus.nodes.get("api-1")!.baseUrl);
		adminToken = await loginAs(bus.nodes.get("api-1")!.baseUrl, bus.admin.email, bus.admin.password);
		productId = (await gateway.get("/api/products")).body.rows[0].id;
	});

	afterAll(async () => {
		await bus?.stop();
		await new Promise(resolve => zipkin?.close(resolve));
	});

	it("one order is one trace over five processes: a span per action, the parents linked across nodes, the gateway's span the root", async () => {
		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const res = await placeOrder(buyer.token);
		expect(res.status).toBe(201);

		// The trace id is the request id: in X-Request-ID and in the answer's traceparent.
		const traceId = res.headers.get("x-request-id")!;
		expect(traceId).toMatch(/^[0-9a-f]{32}$/);
		const traceparent = res.headers.get("traceparent")!;
		expect(traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

		const trace = await exported(traceId, ["api", "users", "orders", "inventory", "payments"]);
		const services = new Set(trace.map(span => span.localEndpoint.serviceName));
		expect(services.size).toBeGreaterThanOrEqual(4);
		expect(new Set(trace.map(span => span.tags.nodeID))).toEqual(new Set(["api-1", "users-1", "orders-1", "inventory-1", "payments-1"]));

		// Parent links: one root, the gateway's span (its id is the answer's traceparent parent-id); every other span's parent is in the trace.
		const ids = new Set(trace.map(span => span.id));
		expect(ids.size).toBe(trace.length);
		const roots = trace.filter(span => !span.parentId);
		expect(roots).toHaveLength(1);
		expect(roots[0]).toMatchObject({ name: "POST /api/orders", localEndpoint: { serviceName: "api" }, id: traceparent.split("-")[2] });
		for (const span of trace.filter(span => span.parentId)) expect(ids).toContain(span.parentId);

		// Across processes: the capture ran on payments-1, called by orders-1 from inside orders.create, itself called by the gateway.
		const byAction = (name: string) => trace.find(span => span.tags["action.name"] === name)!;
		const create = byAction("orders.create");
		const capture = byAction("payments.capture");
		expect(create).toMatchObject({ parentId: roots[0].id, tags: { nodeID: "orders-1", callerNodeID: "api-1", remoteCall: "true", orderId: res.body.id } });
		expect(capture).toMatchObject({ parentId: create.id, tags: { nodeID: "payments-1", callerNodeID: "orders-1", orderId: res.body.id } });
		expect(byAction("inventory.reserve").parentId).toBe(create.id);
		expect(byAction("users.resolveToken").parentId).toBe(roots[0].id);

		// Every log line of the request, on every node, carries its id.
		for (const nodeID of ["orders-1", "payments-1"]) {
			const lines = bus.nodes
				.get(nodeID)!
				.output()
				.split("\n")
				.filter(line => line.includes(res.body.id));
			expect(lines.length).toBeGreaterThan(0);
			for (const line of lines) expect(line).toContain(`[req ${traceId}]`);
		}
	});

	it("never exports a card number, a password or a token", async () => {
		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const login = await gateway.post("/api/users/login", { email: buyer.email, password: PASSWORD });
		expect(login.status).toBe(200);
		const ordered = await placeOrder(login.body.token);
		expect(ordered.status).toBe(201);
		// A refused card: its validation error must not carry the number into the span either.
		const refused = await gateway.post("/api/orders", { items: [{ productId, quantity: 1 }], payment: { card: "4242424242424241" } }, { token: buyer.token });
		expect(refused.status).toBe(422);
		await gateway.get("/api/admin/cluster", { token: adminToken });
		// Every service the card crossed has exported its spans of the order before the grep (each node posts on its own timer).
		await exported(ordered.headers.get("x-request-id")!, ["api", "users", "orders", "inventory", "payments"]);
		for (const res of [login, refused]) await exported(res.headers.get("x-request-id")!, ["api", "users"]);

		const exportedText = bodies.join("\n");
		expect(exportedText).toContain(ordered.body.id);
		for (const secret of [APPROVED_TEST_CARD, "4242424242424241", PASSWORD, bus.admin.password, buyer.token, login.body.token, adminToken, bus.jwtSecret]) {
			expect(exportedText).not.toContain(secret);
		}
		expect(exportedText).not.toMatch(/authorization|bearer|eyJ[A-Za-z0-9_-]{10,}/i);
	});

	it("continues a client's traceparent (its trace id answered and used on every node), ignores an invalid one, and follows its sampled flag", async () => {
		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const clientTrace = randomBytes(16).toString("hex");
		const clientSpan = randomBytes(8).toString("hex");
		const res = await placeOrder(buyer.token, { traceparent: `00-${clientTrace}-${clientSpan}-01` });
		expect(res.status).toBe(201);
		expect(res.headers.get("x-request-id")).toBe(clientTrace);
		expect(res.headers.get("traceparent")).toMatch(new RegExp(`^00-${clientTrace}-[0-9a-f]{16}-01$`));
		const trace = await exported(clientTrace, ["api", "users", "orders", "inventory", "payments"]);
		// The gateway's span is the child of the client's span.
		expect(trace.find(span => span.name === "POST /api/orders")!.parentId).toBe(clientSpan);

		// Invalid (upper-case hex, all-zero trace id, wrong shape): ignored, the request gets a trace of its own.
		for (const invalid of [`00-${clientTrace.toUpperCase()}-${clientSpan}-01`, `00-${"0".repeat(32)}-${clientSpan}-01`, "00-abc-def-01"]) {
			const other = await gateway.get("/api/products", { headers: { traceparent: invalid } });
			expect(other.status).toBe(200);
			expect(other.headers.get("x-request-id")).toMatch(/^[0-9a-f]{32}$/);
			expect(other.headers.get("x-request-id")).not.toBe(clientTrace);
			expect(other.headers.get("traceparent")).toMatch(new RegExp(`^00-${other.headers.get("x-request-id")}-[0-9a-f]{16}-01$`));
		}

		// Not sampled by the client (flags 00): answered with its id, no span exported.
		const unsampled = randomBytes(16).toString("hex");
		const quiet = await placeOrder(buyer.token, { traceparent: `00-${unsampled}-${clientSpan}-00` });
		expect(quiet.status).toBe(201);
		expect(quiet.headers.get("traceparent")).toMatch(new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`));
		await exported(res.headers.get("x-request-id")!, ["payments"]);
		const later = await placeOrder(buyer.token);
		await exported(later.headers.get("x-request-id")!, ["payments"]);
		expect(traceOf(unsampled)).toHaveLength(0);
	});

	it("the back office reads an order's trace from every node's recent spans; customers may not", async () => {
		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const order = await placeOrder(buyer.token);
		expect(order.status).toBe(201);
		const traceId = order.headers.get("x-request-id")!;

		const answer = await gateway.get(`/api/admin/orders/${order.body.id}/trace`, { token: adminToken });
		expect(answer.status).toBe(200);
		expect(answer.body.traceIds).toEqual([traceId]);
		expect(answer.body.unanswered).toEqual([]);
		expect(new Set(answer.body.spans.map((span: { service: string }) => span.service))).toEqual(new Set(["api", "users", "orders", "inventory", "payments"]));
		expect(answer.body.spans[0]).toMatchObject({ name: "POST /api/orders", parentId: null, nodeID: "api-1" });

		const byId = await gateway.get(`/api/admin/traces/${traceId}`, { token: adminToken });
		expect(byId.status).toBe(200);
		expect(byId.body.spans).toHaveLength(answer.body.spans.length);

		expect((await gateway.get(`/api/admin/orders/${order.body.id}/trace`, { token: buyer.token })).status).toBe(403);
		const unknown = await gateway.get(`/api/admin/traces/${randomBytes(16).toString("hex")}`, { token: adminToken });
		expect(unknown.status).toBe(404);
		expect(unknown.body.type).toBe("NOT_FOUND");
	});
});
