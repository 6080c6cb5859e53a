import { client, startShop, type ShopProcess } from "../support/shop";

describe("smoke", () => {
	let shop: ShopProcess;
	beforeAll(async () => {
		shop = await startShop();
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("serves the demo catalogue", async () => {
		const res = await client(shop.baseUrl).get("/api/products");
		expect(res.status).toBe(200);
		expect(res.body.total).toBeGreaterThan(0);
	});
});
