/**
 * The back office's cluster view in a real Chromium, on the NATS layout of `npm run cluster`
 * (scripts/cluster-layout.ts: seven nodes on a real nats-server): both payments nodes appear with
 * the captures each handled, and a payments node killed with SIGKILL turns grey while the shop
 * keeps selling through the other one.
 */
import type { Browser } from "playwright-core";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { CLUSTER_LAYOUT } from "../../scripts/cluster-layout";
import { checkAccessibility, launchBrowser, openPage, screenshot, unexpectedErrors, type WatchedPage } from "../support/browser";
import { layoutOf, startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import { client, eventually, loginAs, registerUser } from "../support/shop";

jest.setTimeout(90_000);

const ORDERS = 8;

interface ClusterNodeView {
	id: string;
	available: boolean;
	actions: Record<string, number>;
}

describe("the cluster view on NATS", () => {
	let bus: Bus<NatsServer>;
	let browser: Browser;
	let office: WatchedPage;
	let gateway: ReturnType<typeof client>;
	let adminToken: string;

	const clusterNodes = async (): Promise<ClusterNodeView[]> => (await gateway.get("/api/admin/cluster", { token: adminToken })).body.nodes;

	beforeAll(async () => {
		// An open bus (no NATS users, no TRANSIT_KEY): the view is what is under test, not the bus.
		[bus, browser] = await Promise.all([startBus({ name: "cluster-view", open: true }), launchBrowser()]);
		await bus.startNodes(layoutOf(CLUSTER_LAYOUT));
		const api = bus.nodes.get("api-1")!;
		gateway = client(api.baseUrl);
		adminToken = await loginAs(api.baseUrl, bus.admin.email, bus.admin.password);
		// The gateway's registry holds every node of the layout (both payments nodes for the round robin).
		await eventually(async () => {
			const seen = await clusterNodes();
			return CLUSTER_LAYOUT.every(node => seen.some(other => other.id === node.nodeID && other.available));
		}, 30_000);
		office = await openPage(browser, api.baseUrl);
	});

	afterAll(async () => {
		await browser?.close();
		await bus?.stop();
	});

	it("answers the cluster API to admins only", async () => {
		expect((await gateway.get("/api/admin/cluster")).status).toBe(401);
		const customer = await registerUser(bus.nodes.get("api-1")!.baseUrl, "cluster-viewer");
		expect((await gateway.get("/api/admin/cluster", { token: customer.token })).body).toMatchObject({ code: 403, type: "FORBIDDEN" });
		const answer = (await gateway.get("/api/admin/cluster", { token: adminToken })).body;
		expect(answer).toMatchObject({ gateway: "api-1", heartbeatTimeout: 4, ready: true });
		expect(answer.services.payments).toEqual(["payments-1", "payments-2"]);
		expect(answer.services.inventory).toEqual(["inventory-1", "inventory-2"]);
	});

	it("shows every node, and both payments nodes sharing the captures", async () => {
		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl, "cluster-buyer");
		const [product] = (await gateway.get("/api/products")).body.rows;
		for (let i = 0; i < ORDERS; i++) {
			const placed = await gateway.post(
				"/api/orders",
				{ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } },
				{ token: buyer.token }
			);
			expect(placed.status).toBe(201);
		}
		const captures = (await clusterNodes()).filter(node => node.id.startsWith("payments-")).map(node => node.actions["payments.capture"] ?? 0);
		expect(captures).toHaveLength(2);
		expect(captures.every(count => count > 0)).toBe(true);
		expect(captures[0] + captures[1]).toBe(ORDERS);

		const { page } = office;
		// A link to the view itself goes through the login and back.
		await page.goto("/admin/cluster");
		await page.getByLabel("Email").fill(bus.admin.email);
		await page.getByLabel("Password").fill(bus.admin.password);
		await page.getByRole("button", { name: "Log in" }).click();
		await page.getByRole("heading", { name: "Cluster", level: 1 }).waitFor();
		for (const node of CLUSTER_LAYOUT) await page.getByRole("heading", { name: node.nodeID, level: 3 }).waitFor();
		for (const [i, id] of ["payments-1", "payments-2"].entries()) {
			const card = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: id, level: 3 }) });
			await card.getByText("Up", { exact: true }).waitFor();
			await card.getByText(`payments.capture: ${captures[i]}`).waitFor();
		}
		await page.getByRole("row", { name: "payments payments-1, payments-2" }).waitFor();
		expect(await checkAccessibility(page)).toEqual([]);
		await screenshot(page, "cluster");
	});

	it("greys out a killed payments node within the heartbeat timeout, and the shop keeps selling", async () => {
		const { page } = office;
		const killedAt = Date.now();
		await bus.nodes.get("payments-2")!.kill();
		const card = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "payments-2", level: 3 }) });
		await card.getByText("Gone: no heartbeat").waitFor({ timeout: 20_000 });
		console.log(`payments-2 killed: grey in the cluster view after ${Date.now() - killedAt} ms (heartbeat timeout 4 s, view refreshed every 2 s)`);
		await page.getByRole("row", { name: "payments payments-1" }).waitFor();
		await page.getByText("Ready: every service has a live node.", { exact: false }).waitFor();
		expect(await checkAccessibility(page)).toEqual([]);
		await screenshot(page, "cluster-node-gone");

		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl, "after-kill");
		const [product] = (await gateway.get("/api/products")).body.rows;
		const placed = await gateway.post(
			"/api/orders",
			{ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } },
			{ token: buyer.token }
		);
		// The gateway's registry dropped payments-2, but each orders node runs its own heartbeat check:
		// a capture sent there in that window times out and the order answers 202 pending. Either way it
		// must settle confirmed through payments-1.
		expect([201, 202]).toContain(placed.status);
		await eventually(async () => (await gateway.get(`/api/orders/${placed.body.id}`, { token: buyer.token })).body.status === "confirmed", 30_000);
		expect(unexpectedErrors(office.errors)).toEqual([]);
	});

	it("tells a customer which part of the shop is down when no orders node is left, and the rest keeps working", async () => {
		const { page } = office;
		const api = bus.nodes.get("api-1")!;
		const buyer = await registerUser(api.baseUrl, "while-orders-down");
		const customer = await openPage(browser, api.baseUrl);
		try {
			const shopper = customer.page;
			await shopper.goto("/login");
			await shopper.getByLabel("Email").fill(buyer.email);
			await shopper.getByLabel("Password").fill("correct horse battery");
			await shopper.getByRole("button", { name: "Log in" }).click();
			await shopper.getByRole("heading", { name: "Catalogue", level: 1 }).waitFor();

			await Promise.all(["orders-1", "orders-2"].map(id => bus.nodes.get(id)!.stop()));
			// The back office says what is down.
			await page.getByText("Degraded: no live node runs orders. The rest keeps answering.", { exact: false }).waitFor({ timeout: 20_000 });
			await page.getByRole("row", { name: "orders none: down" }).waitFor();
			expect(await checkAccessibility(page)).toEqual([]);

			// The catalogue and the cart still work; the order says which part is down, in words.
			await shopper.getByRole("button", { name: "Add to cart: Moleculer mug" }).click();
			await shopper.getByRole("link", { name: "Cart (1)" }).click();
			await shopper.getByLabel("Card number").fill(APPROVED_TEST_CARD);
			await shopper.getByRole("button", { name: /^Place order/ }).click();
			const down = "The ordering part of the shop is down right now. The rest of the shop still works: try this again in a moment.";
			await shopper.getByRole("alert").getByText(down).waitFor();
			await shopper.getByRole("link", { name: "Cart (1)" }).waitFor();
			expect(await checkAccessibility(shopper)).toEqual([]);
			await shopper.getByRole("link", { name: "My orders", exact: true }).click();
			await shopper.getByRole("alert").getByText(down).waitFor();
			await shopper.getByRole("link", { name: "Moleculer shop" }).click();
			await shopper.getByRole("link", { name: "Moleculer mug" }).click();
			await shopper.getByRole("heading", { name: "Moleculer mug", level: 1 }).waitFor();
			// Only the two 503s provoked on purpose.
			expect(unexpectedErrors(customer.errors, [503])).toEqual([]);
			expect(customer.errors).toHaveLength(2);
		} finally {
			await customer.context.close();
		}
	});
});
