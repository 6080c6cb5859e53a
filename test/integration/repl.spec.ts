/**
 * `npm run repl` in a real terminal (tmux): the shop in one process with the REPL attached, its
 * commands typed as an operator types them, and what they print checked. Orders are placed over
 * HTTP meanwhile, so the tables have something true to show.
 */
import { rmSync } from "node:fs";
import { client, eventually, freePort, registerUser, tempDataDir } from "../support/shop";
import { startRepl, type Terminal } from "../support/terminal";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { ADMIN_ENV } from "./helpers";

jest.setTimeout(90_000);

describe("npm run repl: the shop's commands", () => {
	let terminal: Terminal;
	let api: ReturnType<typeof client>;
	let dataDir: string;
	let buyer: { token: string };
	let productId: string;
	const confirmed: string[] = [];

	const order = () => api.post("/api/orders", { items: [{ productId, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token: buyer.token });

	beforeAll(async () => {
		const port = await freePort();
		dataDir = tempDataDir("shop-repl-");
		terminal = await startRepl({ PORT: String(port), METRICS_PORT: String(await freePort()), DATA_DIR: dataDir, LOG_LEVEL: "warn", ...ADMIN_ENV });
		api = client(`http://127.0.0.1:${port}`);
		await eventually(async () => (await api.get("/api/health/ready").catch(() => ({ status: 0 }))).status === 200, 15_000, 100);
		buyer = await registerUser(`http://127.0.0.1:${port}`);
		productId = (await api.get("/api/products")).body.rows[0].id;
		for (let i = 0; i < 3; i++) {
			const res = await order();
			expect(res.status).toBe(201);
			confirmed.push(res.body.id);
		}
	});

	afterAll(() => {
		terminal?.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	it("lists the shop's commands in help, each with its own --help", async () => {
		const help = await terminal.run("help", /help \[command\]/);
		for (const command of ["orders [options]", "books [options]", "cluster", "chaos [options] [action] [target]"]) expect(help).toContain(command);
		const ordersHelp = await terminal.run("orders --help", /display help for command/);
		expect(ordersHelp).toMatch(/Usage: Moleculer REPL orders \[options\]/);
		expect(ordersHelp).toContain("--status <status>");
		expect(ordersHelp).toContain("--stuck");
		const chaosHelp = await terminal.run("chaos --help", /display help for command/);
		for (const option of ["--errors <p>", "--timeouts <p>", "--latency <duration>", "--node <ids>", "--for <duration>", "--seed <n>"])
			expect(chaosHelp).toContain(option);
	});

	it("orders --status confirmed: a table of the confirmed orders with their owner node", async () => {
		const out = await terminal.run("orders --status confirmed", /order\(s\) confirmed, newest first/);
		expect(out).toMatch(/id\s+│ status\s+│ reason\s+│ age\s+│ total\s+│ owner node/);
		for (const id of confirmed) expect(out).toMatch(new RegExp(`${id} │ confirmed │\\s+│ \\d+s\\s+│ \\$\\d+\\.\\d\\d │ \\S+`));
		expect(out).toContain(`3 of 3 order(s) confirmed`);
		expect(await terminal.run("orders --status pending", /order\(s\) pending/)).toContain("0 of 0 order(s) pending");
		expect(await terminal.run("orders --status shipped", /--status must be/)).toContain("--status must be one of pending, confirmed, cancelled");
	});

	it("books: the invariants audit as a table", async () => {
		const out = await terminal.run("books", /The books balance|problem\(s\)/);
		expect(out).toMatch(/orders\s+│ 3 confirmed, 0 pending, 0 cancelled\s+│ ok/);
		expect(out).toMatch(/stock never negative\s+│ 6 products\s+│ ok/);
		expect(out).toMatch(/confirmed: one captured payment of its total │ 3 orders\s+│ ok/);
		expect(out).toContain("The books balance (3 orders audited in");
	});

	it("cluster: the node, its services and the calls it handled", async () => {
		const out = await terminal.run("cluster", /Ready|Degraded/);
		expect(out).toMatch(/\(this REPL\) │ yes\s+│ [a-z, ]*orders/);
		// Three orders: three captures handled by this node.
		expect(out).toContain("payments.capture=3");
		expect(out).toMatch(/Ready: api: \S+; inventory: \S+; orders: \S+; payments: \S+; users: \S+/);
	});

	it("chaos: errors on payments.capture turn orders pending until the rule ends by itself; then they settle", async () => {
		const on = await terminal.run("chaos payments.capture --errors 1 --for 4s --seed 7", /ends in[\s\S]*╚/);
		expect(on).toContain("Chaos on: payments.capture on every node: errors 100% for 4s (seed 7)");
		expect(on).toMatch(/│ payments\.capture on every node: errors 100% for 4s \(seed 7\) │ [0-4]s/);

		// The only payments node fails every capture: the order cannot be paid now, so it is accepted pending.
		const during = await order();
		expect(during.status).toBe(202);
		expect(during.body.status).toBe("pending");
		expect(await terminal.run("orders --status pending", /order\(s\) pending/)).toContain(during.body.id);

		// Off by itself after 4 s, and the pending order settles.
		await terminal.waitFor(/Chaos ended by itself: payments\.capture/, 10_000);
		expect(await terminal.run("chaos", /╚/)).toMatch(/│ none\s+│/);
		await eventually(async () => (await api.get(`/api/orders/${during.body.id}`, { token: buyer.token })).body.status === "confirmed", 15_000, 200);
		expect(await order()).toMatchObject({ status: 201 });
	});

	it("chaos off ends a rule at once; a bad rule is refused with the reason", async () => {
		await terminal.run("chaos inventory.get --latency 50ms --for 60s", /ends in[\s\S]*╚/);
		expect(await terminal.run("chaos off inventory.get", /Chaos off/)).toContain("Chaos off: inventory.get");
		expect(await terminal.run("chaos", /╚/)).toMatch(/│ none\s+│/);
		expect(await terminal.run("chaos payments.capture --errors 2", /chaos: /)).toContain("The 'errors' field must be less than or equal to 1");
		expect(await terminal.run("chaos payments.capture", /chaos: /)).toContain("Name a fault");
	});
});
