/**
 * The bus closed to strangers (issue 9, finding 1), tried as an attacker would with a real
 * nats-server set up as `npm run cluster` sets it up: a NATS user per role with its subject
 * permissions, every packet encrypted with TRANSIT_KEY.
 *
 * (a) without NATS credentials, a rogue cannot connect, and the shop's nodes never list it;
 * (b) with a role's NATS credentials but no or a wrong TRANSIT_KEY, it reads no card or password in
 *     anything it receives, and its offer of `payments.capture` is not accepted: orders end with a
 *     real payment row, the rogue gets no capture;
 * (c) a role's credentials cannot subscribe to another role's requests, nor send requests to a role
 *     it does not call;
 * and neither the NATS passwords nor the key appear in the nodes' logs or in their broker options.
 */
import { randomBytes } from "node:crypto";
import { ServiceBroker, type BrokerOptions, type Context } from "moleculer";
import { connect, type NatsConnection, type NatsError } from "nats";
import { client, registerUser, startShop } from "../support/shop";
import { startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { natsTransporter, transitEncryption } from "../../lib/bus";
import { BUS_PREFIX, rolePermissions, type BusNodes, type BusRole } from "../../scripts/nats-auth";

jest.setTimeout(120_000);

const PASSWORD = "correct horse battery";
const NODES: BusNodes = {
	api: ["api-1"],
	users: ["users-1"],
	inventory: ["inventory-1"],
	orders: ["orders-1"],
	// payments-2 and payments-3 are let in by NATS but never started by the shop: the rogues take them.
	payments: ["payments-1", "payments-2", "payments-3"],
	ops: ["observer"]
};

interface CaptureParams {
	orderId: string;
	amount: number;
	card: string;
}

/** A broker that answers `payments.capture` with a fake payment and records what it got. */
function rogueBroker(nodeID: string, url: string, transitKey: Buffer | null, captures: CaptureParams[], extra: Partial<BrokerOptions> = {}): ServiceBroker {
	const options: BrokerOptions = {
		...extra,
		namespace: "shop",
		nodeID,
		transporter: natsTransporter(url),
		middlewares: transitKey ? [transitEncryption(transitKey)] : [],
		logger: false,
		heartbeatInterval: 1,
		heartbeatTimeout: 4
	};
	const broker = new ServiceBroker(options);
	broker.createService({
		name: "payments",
		actions: {
			capture(ctx: Context<CaptureParams>) {
				captures.push(ctx.params);
				const { orderId, amount } = ctx.params;
				return { id: `fake-${orderId}`, orderId, amount, currency: "USD", status: "captured", cardLast4: "4242", createdAt: new Date().toISOString() };
			}
		}
	});
	return broker;
}

/** The NATS error code a subscription gets, or null if none came within `ms`. */
function subscriptionError(nc: NatsConnection, subject: string, ms = 5_000): Promise<string | null> {
	return new Promise(resolve => {
		const timer = setTimeout(() => resolve(null), ms);
		nc.subscribe(subject, {
			callback: err => {
				if (err) {
					clearTimeout(timer);
					resolve((err as NatsError).code);
				}
			}
		});
	});
}

/** The error a raw connection attempt fails with, or null if it connects. */
async function connectError(servers: string, auth: { user?: string; pass?: string } = {}): Promise<string | null> {
	try {
		const nc = await connect({ servers, ...auth, maxReconnectAttempts: 0, reconnect: false });
		await nc.close();
		return null;
	} catch (err) {
		return (err as NatsError).code;
	}
}

describe("the bus, closed to strangers", () => {
	let bus: Bus<NatsServer>;
	let nats: NatsServer;
	/** The shop's TRANSIT_KEY. */
	const transitKey = () => bus.transitKey!;
	const connections: NatsConnection[] = [];
	const rogues: ServiceBroker[] = [];
	let gateway: ReturnType<typeof client>;
	let productId: string;
	const hostPort = () => new URL(nats.url).host;
	const credentials = (role: BusRole) => {
		const url = new URL(nats.urlFor(role));
		return { user: url.username, pass: decodeURIComponent(url.password) };
	};

	async function rawConnection(role: BusRole): Promise<NatsConnection> {
		const nc = await connect({ servers: hostPort(), ...credentials(role) });
		connections.push(nc);
		return nc;
	}

	async function placeOrders(count: number) {
		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const answers = [];
		for (let i = 0; i < count; i++) {
			const res = await gateway.post("/api/orders", { items: [{ productId, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token: buyer.token });
			const payments = await gateway.get(`/api/payments?orderId=${res.body.id}`, { token: buyer.token });
			answers.push({ status: res.status, orderStatus: res.body.status, payments: payments.body.rows });
		}
		return answers;
	}

	beforeAll(async () => {
		// The observer joins once the nodes are up.
		bus = await startBus({ name: "bus", nodes: NODES, observer: false });
		nats = bus.nats;
		const debug = { env: { LOG_LEVEL: "debug" } };
		await Promise.all([
			bus.startNode("users-1", "users"),
			bus.startNode("inventory-1", "inventory"),
			bus.startNode("orders-1", "orders"),
			bus.startNode("payments-1", "payments", debug)
		]);
		await bus.startNode("api-1", "api", debug);
		const observer = await bus.startObserver();
		const layout = { users: ["users-1"], inventory: ["inventory-1"], orders: ["orders-1"], payments: ["payments-1"], api: ["api-1"] };
		await observer.waitUntilSeen(Object.values(layout).flat(), layout);
		gateway = client(bus.nodes.get("api-1")!.baseUrl);
		productId = (await gateway.get("/api/products")).body.rows[0].id;
	});

	afterAll(async () => {
		await Promise.all(rogues.map(rogue => rogue.stop().catch(() => undefined)));
		await Promise.all(connections.map(nc => nc.close().catch(() => undefined)));
		await bus?.stop();
	});

	describe("(a) without NATS credentials", () => {
		it("cannot connect: no password, a wrong one, or another role's name", async () => {
			expect(await connectError(hostPort())).toBe("AUTHORIZATION_VIOLATION");
			expect(await connectError(hostPort(), { user: "payments", pass: "guessed-password" })).toBe("AUTHORIZATION_VIOLATION");
			expect(await connectError(hostPort(), { user: "payments", pass: credentials("orders").pass })).toBe("AUTHORIZATION_VIOLATION");
			// The control: the right password connects.
			expect(await connectError(hostPort(), credentials("payments"))).toBeNull();
		});

		it("a rogue broker never joins: no node lists it", async () => {
			const captures: CaptureParams[] = [];
			// One attempt (Moleculer would retry every 5 s for ever; the test needs the first refusal only).
			const rogue = rogueBroker("payments-2", nats.url, transitKey(), captures, { transit: { disableReconnect: true } });
			const refused = new Promise(resolve => rogue.localBus.once("$transporter.error", resolve));
			void rogue.start().catch(() => undefined);
			await refused;
			for (const viewer of ["api-1", "orders-1"]) {
				const list = await bus.observer.broker.call<Array<{ id: string }>, object>("$node.list", {}, { nodeID: viewer });
				// Exactly the shop's nodes (the test's observer, which these nodes may or may not list yet, aside).
				expect(
					list
						.map(node => node.id)
						.filter(id => id !== "observer")
						.sort()
				).toEqual(["api-1", "inventory-1", "orders-1", "payments-1", "users-1"]);
			}
			expect((await placeOrders(2)).map(answer => answer.status)).toEqual([201, 201]);
			expect(captures).toEqual([]);
		});
	});

	describe("(b) with a role's NATS credentials but no or a wrong TRANSIT_KEY", () => {
		it("reads no card number, password or action name in anything it receives while orders are placed", async () => {
			// A listener per role on everything that role may subscribe to: together, every subject of the shop's nodes.
			const received: Array<{ role: BusRole; subject: string; data: Buffer }> = [];
			for (const role of ["api", "users", "inventory", "orders", "payments"] as const) {
				const nc = await rawConnection(role);
				for (const subject of rolePermissions(role, NODES).subscribe) {
					nc.subscribe(subject, { callback: (err, msg) => !err && received.push({ role, subject: msg.subject, data: Buffer.from(msg.data) }) });
				}
				await nc.flush();
			}
			const answers = await placeOrders(3);
			expect(answers.map(answer => answer.status)).toEqual([201, 201, 201]);
			// What carried the cards and the password reached the listeners (encrypted).
			const subjects = new Set(received.map(packet => packet.subject));
			for (const subject of [`${BUS_PREFIX}.REQ.orders-1`, `${BUS_PREFIX}.REQ.payments-1`, `${BUS_PREFIX}.REQ.users-1`])
				expect(subjects.has(subject)).toBe(true);
			const readable = received.filter(packet => {
				const text = packet.data.toString("latin1");
				return text.includes(APPROVED_TEST_CARD) || text.includes(PASSWORD) || text.includes("payments.capture") || text.includes('"sender"');
			});
			expect(readable.map(packet => packet.subject)).toEqual([]);
			// Not even the JSON framing: every packet is AES blocks, none parses as JSON. (Not "starts with
			// `{`": one encrypted packet in 256 does, by chance.)
			const parses = (data: Buffer) => {
				try {
					JSON.parse(data.toString("utf8"));
					return true;
				} catch {
					return false;
				}
			};
			expect(received.filter(packet => packet.data.length % 16 !== 0 || parses(packet.data)).map(packet => packet.subject)).toEqual([]);
		});

		it("cannot forge: its payments.capture is never called, every order has its real payment", async () => {
			const captures: CaptureParams[] = [];
			// One rogue with no key (plain packets), one with a key of its own.
			const noKey = rogueBroker("payments-2", nats.urlFor("payments"), null, captures);
			const wrongKey = rogueBroker("payments-3", nats.urlFor("payments"), randomBytes(32), captures);
			rogues.push(noKey, wrongKey);
			// Both connect (their credentials are good) and announce themselves (INFO) and send heartbeats.
			await Promise.all([noKey.start(), wrongKey.start()]);
			await new Promise(resolve => setTimeout(resolve, 1_500));
			for (const viewer of ["api-1", "orders-1"]) {
				const list = await bus.observer.broker.call<Array<{ id: string }>, object>("$node.list", {}, { nodeID: viewer });
				expect(list.map(node => node.id)).not.toContain("payments-2");
				expect(list.map(node => node.id)).not.toContain("payments-3");
			}
			const answers = await placeOrders(6);
			expect(answers.map(answer => answer.status)).toEqual(Array(6).fill(201));
			for (const answer of answers) {
				expect(answer.orderStatus).toBe("confirmed");
				expect(answer.payments).toHaveLength(1);
				expect(answer.payments[0]).toMatchObject({ status: "captured", cardLast4: "4242" });
				expect(answer.payments[0].id).not.toMatch(/^fake-/);
			}
			expect(captures).toEqual([]);
			// The rogues could not read the shop's packets either: they list no shop node.
			expect(noKey.registry.getNodeList({ onlyAvailable: true }).map(node => node.id)).toEqual(["payments-2"]);
			expect(wrongKey.registry.getNodeList({ onlyAvailable: true }).map(node => node.id)).toEqual(["payments-3"]);
			await Promise.all([noKey.stop(), wrongKey.stop()]);
		});

		it("the same broker with the shop's key is accepted (the control: the key is what kept it out)", async () => {
			const member = new ServiceBroker({
				namespace: "shop",
				nodeID: "payments-3",
				transporter: natsTransporter(nats.urlFor("payments")),
				middlewares: [transitEncryption(transitKey())],
				logger: false
			});
			rogues.push(member);
			member.createService({ name: "probe", actions: { ping: () => "pong" } });
			await member.start();
			await bus.observer.waitUntilSeen(["orders-1"], { probe: ["payments-3"] }, 10_000);
			await member.stop();
		});
	});

	describe("(c) subject permissions", () => {
		it("only payments' user may subscribe to payments' requests; only orders' to orders'", async () => {
			const errors: Record<string, string | null> = {};
			for (const role of ["api", "users", "inventory", "orders", "ops"] as const) {
				errors[`${role} → REQ.payments-1`] = await subscriptionError(await rawConnection(role), `${BUS_PREFIX}.REQ.payments-1`);
			}
			for (const role of ["api", "payments", "inventory"] as const) {
				errors[`${role} → REQ.orders-1`] = await subscriptionError(await rawConnection(role), `${BUS_PREFIX}.REQ.orders-1`);
			}
			errors["orders → MOL-shop.>"] = await subscriptionError(await rawConnection("orders"), `${BUS_PREFIX}.>`);
			errors["payments → >"] = await subscriptionError(await rawConnection("payments"), ">");
			expect(Object.values(errors).every(code => code === "PERMISSIONS_VIOLATION")).toBe(true);
			expect(Object.keys(errors)).toHaveLength(10);
		});

		it("a role cannot send requests to a service it does not call", async () => {
			const inventory = await rawConnection("inventory");
			const got: string[] = [];
			inventory.subscribe(`${BUS_PREFIX}.REQ.inventory-1`, { callback: (err, msg) => !err && got.push(Buffer.from(msg.data).toString()) });
			await inventory.flush();
			// payments never calls inventory; orders does (reserve, commit, release).
			const payments = await rawConnection("payments");
			payments.publish(`${BUS_PREFIX}.REQ.inventory-1`, Buffer.from("from payments"));
			await payments.flush();
			const orders = await rawConnection("orders");
			orders.publish(`${BUS_PREFIX}.REQ.inventory-1`, Buffer.from("from orders"));
			await orders.flush();
			await inventory.flush();
			expect(got).toEqual(["from orders"]);
		});
	});

	describe("in production", () => {
		it.each([
			[
				"without TRANSIT_KEY",
				{ TRANSPORTER: "payments", TRANSIT_KEY: undefined },
				/^Configuration error: TRANSIT_KEY is required when TRANSPORTER is set and NODE_ENV=production/m
			],
			[
				"without NATS credentials",
				{ TRANSPORTER: "none", TRANSIT_KEY: "the shop's" },
				/^Configuration error: TRANSPORTER must carry this node's NATS user and password/m
			]
		])("a node on the bus refuses to start %s, with one clear line", async (_what, env, message) => {
			const node = await startShop({
				waitFor: "none",
				env: {
					NODE_ENV: "production",
					JWT_SECRET: bus.jwtSecret,
					NODEID: "payments-2",
					SERVICES: "payments",
					TRANSIT_KEY: env.TRANSIT_KEY && transitKey().toString("hex"),
					TRANSPORTER: env.TRANSPORTER === "payments" ? nats.urlFor("payments") : nats.url
				}
			});
			expect(await node.exited).toBe(1);
			expect(node.output()).toMatch(message);
			expect(node.output()).not.toContain(credentials("payments").pass);
		});
	});

	describe("secrets", () => {
		it("no NATS password and no TRANSIT_KEY in the nodes' logs (debug level) or their broker options", async () => {
			const secrets = [
				...(["api", "users", "inventory", "orders", "payments", "ops"] as const).map(role => credentials(role).pass),
				transitKey().toString("hex")
			];
			for (const nodeID of bus.nodes.keys()) {
				const output = bus.nodes.get(nodeID)!.output();
				expect(secrets.filter(secret => output.includes(secret))).toEqual([]);
			}
			// The debug logs are real: they say the bus is encrypted.
			expect(bus.nodes.get("api-1")!.output()).toContain("The transmission is ENCRYPTED by 'aes-256-cbc'");
			for (const nodeID of ["api-1", "payments-1"]) {
				const options = JSON.stringify(await bus.observer.broker.call("$node.options", {}, { nodeID }));
				expect(options).toContain('"servers"');
				expect(secrets.filter(secret => options.includes(secret))).toEqual([]);
			}
		});

		it("no JWT secret, admin password or database URL in what any node answers about itself over the bus", async () => {
			const secrets = [bus.jwtSecret, bus.admin.password, bus.dataDir];
			for (const nodeID of bus.nodes.keys()) {
				for (const action of ["$node.options", "$node.services", "$node.actions", "$node.health", "$node.metrics"]) {
					const answer = JSON.stringify(await bus.observer.broker.call(action, action === "$node.services" ? { withActions: true } : {}, { nodeID }));
					expect({ nodeID, action, found: secrets.filter(secret => answer.includes(secret)) }).toEqual({ nodeID, action, found: [] });
				}
			}
		});
	});
});
