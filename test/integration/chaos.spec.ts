/**
 * The admin API of chaos (`POST`, `GET`, `DELETE /api/admin/chaos`) on the real shop: admins only,
 * bad rules refused with a 422, and a production shop refusing chaos unless CHAOS_ALLOWED=true.
 */
import { client, loginAs, registerUser, startShop, type ShopProcess } from "../support/shop";
import { ADMIN, ADMIN_ENV, errorShapeProblems } from "./helpers";

jest.setTimeout(60_000);

const PRODUCTION = { NODE_ENV: "production", JWT_SECRET: "chaos-production-secret-0123456789", ...ADMIN_ENV };

describe("POST /api/admin/chaos", () => {
	const shops: ShopProcess[] = [];
	afterAll(async () => {
		await Promise.all(shops.map(shop => shop.stop()));
	});

	async function shopWith(env: Record<string, string>) {
		const shop = await startShop({ env });
		shops.push(shop);
		return { api: client(shop.baseUrl), admin: await loginAs(shop.baseUrl, ADMIN.email, ADMIN.password), shop };
	}

	it("is refused (403) by a production shop without CHAOS_ALLOWED, and nothing changes", async () => {
		const { api, admin } = await shopWith(PRODUCTION);
		const res = await api.post("/api/admin/chaos", { action: "payments.capture", errors: 1 }, { token: admin });
		expect(res.status).toBe(403);
		expect(res.body).toMatchObject({ type: "FORBIDDEN", message: expect.stringContaining("CHAOS_ALLOWED") });
		expect(errorShapeProblems(res)).toEqual([]);
		const rules = await api.get("/api/admin/chaos", { token: admin });
		expect(rules.status).toBe(200);
		expect(rules.body.nodes).toEqual([expect.objectContaining({ allowed: false, rules: [] })]);
	});

	it("is accepted by a production shop with CHAOS_ALLOWED=true, shown on every node, and switched off by DELETE", async () => {
		const { api, admin } = await shopWith({ ...PRODUCTION, CHAOS_ALLOWED: "true" });
		const res = await api.post("/api/admin/chaos", { action: "inventory.get", latency: "100ms", for: "1m", seed: 3 }, { token: admin });
		expect(res.status).toBe(200);
		expect(res.body.rule).toEqual({ action: "inventory.get", nodes: [], errors: 0, timeouts: 0, latencyMs: 100, forMs: 60_000, seed: 3 });
		const rules = (await api.get("/api/admin/chaos", { token: admin })).body.nodes;
		expect(rules).toEqual([expect.objectContaining({ allowed: true, rules: [expect.objectContaining({ action: "inventory.get", latencyMs: 100 })] })]);

		const off = await api.request("DELETE", "/api/admin/chaos/inventory.get", { token: admin });
		expect(off.status).toBe(200);
		expect(off.body).toEqual({ off: "inventory.get" });
		expect((await api.get("/api/admin/chaos", { token: admin })).body.nodes[0].rules).toEqual([]);
	});

	it("logs each switch under the admin request's id, as every line of a request", async () => {
		const { api, admin, shop } = await shopWith({ ...ADMIN_ENV, LOG_LEVEL: "info" });
		const on = await api.post(
			"/api/admin/chaos",
			{ action: "inventory.get", latency: "10ms" },
			{ token: admin, headers: { "x-request-id": "chaos-switch-on-1" } }
		);
		expect(on.status).toBe(200);
		const off = await api.request("DELETE", "/api/admin/chaos", { token: admin, headers: { "x-request-id": "chaos-switch-off-1" } });
		expect(off.status).toBe(200);
		const lines = (marker: string) =>
			shop
				.output()
				.split("\n")
				.filter(line => line.includes(marker));
		expect(lines("Chaos on: inventory.get")).toEqual([expect.stringContaining("[req chaos-switch-on-1]")]);
		expect(lines("Chaos switched off: inventory.get")).toEqual([expect.stringContaining("[req chaos-switch-off-1]")]);
	});

	it("is for admins only, and refuses a bad rule with a 422 naming the field", async () => {
		const { api, admin, shop } = await shopWith({ ...ADMIN_ENV });
		const customer = await registerUser(shop.baseUrl);
		expect((await api.post("/api/admin/chaos", { action: "payments.capture", errors: 1 })).status).toBe(401);
		expect((await api.post("/api/admin/chaos", { action: "payments.capture", errors: 1 }, { token: customer.token })).status).toBe(403);
		expect((await api.request("DELETE", "/api/admin/chaos", { token: customer.token })).status).toBe(403);

		for (const [body, field] of [
			[{ action: "payments.capture", errors: 2 }, "errors"],
			[{ action: "payments", errors: 1 }, "action"],
			[{ action: "payments.capture" }, "errors"],
			[{ action: "payments.capture", errors: 1, for: "forever" }, "for"],
			[{ action: "payments.capture", latency: "2h" }, "latency"]
		] as const) {
			const res = await api.post("/api/admin/chaos", body, { token: admin });
			expect({ body, status: res.status, type: res.body.type }).toEqual({ body, status: 422, type: "VALIDATION_ERROR" });
			expect(JSON.stringify(res.body.data)).toContain(`"field":"${field}"`);
		}
		expect((await api.get("/api/admin/chaos", { token: admin })).body.nodes[0].rules).toEqual([]);
	});
});
