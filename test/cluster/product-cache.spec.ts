/**
 * Two gateways on NATS (per-role users, as in production), each with its cache of product answers
 * (lib/product-cache.ts), and no inventory service of their own: a change made through one is seen
 * at once through it, and through the other as soon as `product.updated` reaches it.
 */
import { client, eventually, loginAs, metricSum, registerUser } from "../support/shop";
import { startBus, type Bus } from "../support/bus";
import type { NatsServer } from "../support/nats";
import type { Layout } from "../support/observer";
import { APPROVED_TEST_CARD } from "../../lib/cards";

jest.setTimeout(120_000);

const LAYOUT: Layout = {
	api: ["api-1", "api-2"],
	users: ["users-1"],
	inventory: ["inventory-1"],
	orders: ["orders-1"],
	payments: ["payments-1"]
};

describe("the gateways' product caches on NATS", () => {
	let bus: Bus<NatsServer>;
	let adminToken: string;
	const gateway = (nodeID: string) => client(bus.nodes.get(nodeID)!.baseUrl);

	beforeAll(async () => {
		bus = await startBus({ name: "product-cache", nodes: LAYOUT });
		await bus.startLayout(LAYOUT);
		adminToken = await loginAs(bus.nodes.get("api-1")!.baseUrl, bus.admin.email, bus.admin.password);
	});
	afterAll(async () => {
		await bus?.stop();
	});

	const cacheHits = (nodeID: string) => metricSum(bus.nodes.get(nodeID)!.metricsPort, "shop_gateway_product_cache_hits");

	/** Reads the product through a gateway until that gateway answers it from its cache. */
	async function cachedOn(nodeID: string, id: string): Promise<number> {
		const before = await cacheHits(nodeID);
		let stock = NaN;
		await eventually(async () => {
			const res = await gateway(nodeID).get(`/api/products/${id}`);
			stock = res.body.stock;
			await new Promise(resolve => setTimeout(resolve, 1100));
			return res.status === 200 && (await cacheHits(nodeID)) > before;
		}, 15_000);
		return stock;
	}

	it("drops a product's answer on both gateways after an order through one and an update through the other", async () => {
		const created = await gateway("api-1").post("/api/products", { sku: "CACHED-1", name: "Cached", price: 500, stock: 20 }, { token: adminToken });
		expect(created.status).toBe(201);
		const id = created.body.id as string;
		expect(await cachedOn("api-1", id)).toBe(20);
		expect(await cachedOn("api-2", id)).toBe(20);

		const buyer = await registerUser(bus.nodes.get("api-1")!.baseUrl);
		const order = await gateway("api-1").post(
			"/api/orders",
			{ items: [{ productId: id, quantity: 3 }], payment: { card: APPROVED_TEST_CARD } },
			{ token: buyer.token }
		);
		expect(order.status).toBe(201);
		// The gateway that relayed the order: at once.
		expect((await gateway("api-1").get(`/api/products/${id}`)).body.stock).toBe(17);
		// The other one: once the event has crossed NATS (its cached answer would last 30 s).
		let seen: number | undefined;
		await eventually(
			async () => {
				seen = (await gateway("api-2").get(`/api/products/${id}`)).body.stock;
				return seen === 17;
			},
			5_000,
			50
		).catch(() => undefined);
		expect(seen).toBe(17);

		expect(await cachedOn("api-1", id)).toBe(17);
		expect((await gateway("api-2").patch(`/api/products/${id}`, { name: "Renamed on api-2" }, { token: adminToken })).status).toBe(200);
		let name: string | undefined;
		await eventually(
			async () => {
				name = (await gateway("api-1").get(`/api/products/${id}`)).body.name;
				return name === "Renamed on api-2";
			},
			5_000,
			50
		).catch(() => undefined);
		expect(name).toBe("Renamed on api-2");
	});
});
