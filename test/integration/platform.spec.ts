/** Health, readiness, metrics, and the login rate limit (this shop keeps the default limit of 10). */
import { client, registerUser, startShop, type ShopProcess } from "../support/shop";
import { expectError, expectStatus, type Client } from "./helpers";

describe("platform", () => {
	let shop: ShopProcess;
	let api: Client;

	beforeAll(async () => {
		shop = await startShop({ env: { LOGIN_RATE_LIMIT: undefined } });
		api = client(shop.baseUrl);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("GET /api/health: 200 { status: ok, nodeID, uptime }", async () => {
		const res = await api.get("/api/health");
		expectStatus(res, 200);
		expect(Object.keys(res.body).sort()).toEqual(["nodeID", "status", "uptime"]);
		expect(res.body.status).toBe("ok");
		expect(typeof res.body.nodeID).toBe("string");
		expect(res.body.nodeID.length).toBeGreaterThan(0);
		expect(typeof res.body.uptime).toBe("number");
		expect(res.body.uptime).toBeGreaterThanOrEqual(0);
		expect(res.headers.get("content-type")).toMatch(/^application\/json/);
	});

	it("GET /api/health/ready: 200 with all four services true", async () => {
		const res = await api.get("/api/health/ready");
		expectStatus(res, 200);
		expect(res.body).toEqual({ status: "ready", services: { users: true, inventory: true, orders: true, payments: true } });
	});

	it("GET /metrics on METRICS_PORT is Prometheus text with moleculer_request_total", async () => {
		await api.get("/api/products");
		const res = await fetch(`http://127.0.0.1:${shop.metricsPort}/metrics`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
		const text = await res.text();
		expect(text).toContain("moleculer_request_total");
		expect(text).toMatch(/^# TYPE moleculer_request_total counter$/m);
		expect(text).toMatch(/^moleculer_request_total\{[^}]*action="inventory\.list"[^}]*\} [1-9]\d*$/m);
	});

	it("login: 10 a minute per client address, the 11th is 429 RATE_LIMIT_EXCEEDED; other routes keep working", async () => {
		const user = await registerUser(shop.baseUrl, "limited");
		const statuses: number[] = [];
		for (let i = 0; i < 10; i++) {
			// Right and wrong passwords count alike.
			const password = i % 3 === 0 ? "wrong password!" : "correct horse battery";
			const res = await api.post("/api/users/login", { email: user.email, password });
			statuses.push(res.status);
		}
		expect(statuses).toEqual([401, 200, 200, 401, 200, 200, 401, 200, 200, 401]);

		const eleventh = await api.post("/api/users/login", { email: user.email, password: "correct horse battery" });
		expectError(eleventh, 429, "RATE_LIMIT_EXCEEDED");
		// X-Forwarded-For is the client's to forge: it does not reset the limit.
		const forged = await api.post(
			"/api/users/login",
			{ email: user.email, password: "correct horse battery" },
			{ headers: { "x-forwarded-for": "203.0.113.7" } }
		);
		expectError(forged, 429, "RATE_LIMIT_EXCEEDED");
		// A malformed login is limited too (no free probing).
		expectError(await api.post("/api/users/login", {}), 429, "RATE_LIMIT_EXCEEDED");

		// Only login is limited.
		expectStatus(await api.get("/api/users/me", { token: user.token }), 200);
		expectStatus(await api.get("/api/products"), 200);
		expectStatus(await api.post("/api/users/register", { email: `after-${user.email}`, password: "password-after", name: "After" }), 201);
	});
});
