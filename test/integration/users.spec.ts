/** Users: register, login, me (the contract's Users table). */
import { client, startShop, type ShopProcess } from "../support/shop";
import { ADMIN, ADMIN_ENV, expectError, expectStatus, unique, type Client } from "./helpers";

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** No trace of a password or its hash anywhere in an answer. */
function expectNoSecrets(body: unknown, password: string) {
	const text = JSON.stringify(body);
	expect(text).not.toMatch(/password|hash|scrypt|salt/i);
	expect(text).not.toContain(password);
}

describe("users", () => {
	let shop: ShopProcess;
	let api: Client;

	beforeAll(async () => {
		shop = await startShop({ env: { ...ADMIN_ENV, LOGIN_RATE_LIMIT: "1000" } });
		api = client(shop.baseUrl);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("register answers 201 { user, token } with the public user only", async () => {
		const email = `${unique("Reg")}@Example.Test`;
		const password = "a long enough secret";
		const before = Date.now();
		const res = await api.post("/api/users/register", { email, password, name: "  Ada Lovelace  " });
		expectStatus(res, 201);
		expect(Object.keys(res.body).sort()).toEqual(["token", "user"]);
		const { user, token } = res.body;
		expect(Object.keys(user).sort()).toEqual(["createdAt", "email", "id", "name", "role"]);
		expect(typeof user.id).toBe("string");
		expect(user.id.length).toBeGreaterThan(0);
		expect(user.email).toBe(email.toLowerCase());
		expect(user.name).toBe("Ada Lovelace");
		expect(user.role).toBe("customer");
		expect(user.createdAt).toMatch(ISO_UTC);
		expect(Date.parse(user.createdAt)).toBeGreaterThanOrEqual(before - 2000);
		expect(typeof token).toBe("string");
		expect(token.split(".")).toHaveLength(3);
		expectNoSecrets(user, password);
		expect(res.headers.get("content-type")).toMatch(/^application\/json/);
	});

	it("the token identifies the user at GET /api/users/me, which shows the same public user", async () => {
		const password = "another secret 123";
		const reg = await api.post("/api/users/register", { email: `${unique("me")}@example.test`, password, name: "Me" });
		expectStatus(reg, 201);
		const me = await api.get("/api/users/me", { token: reg.body.token });
		expectStatus(me, 200);
		expect(me.body).toEqual(reg.body.user);
		expectNoSecrets(me.body, password);
	});

	it("login answers 200 { user, token }, email matched case-insensitively; its token works", async () => {
		const email = `${unique("login")}@example.test`;
		const password = "login secret 456";
		const reg = await api.post("/api/users/register", { email, password, name: "Login" });
		expectStatus(reg, 201);
		for (const variant of [email, email.toUpperCase(), ` ${email} `]) {
			const res = await api.post("/api/users/login", { email: variant, password });
			expectStatus(res, 200);
			expect(Object.keys(res.body).sort()).toEqual(["token", "user"]);
			expect(res.body.user).toEqual(reg.body.user);
			expectNoSecrets(res.body.user, password);
			const me = await api.get("/api/users/me", { token: res.body.token });
			expectStatus(me, 200);
			expect(me.body.id).toBe(reg.body.user.id);
		}
		// The password is case-sensitive.
		expectError(await api.post("/api/users/login", { email, password: password.toUpperCase() }), 401, "UNAUTHORIZED");
	});

	it("a registration cannot choose its role or id", async () => {
		const email = `${unique("role")}@example.test`;
		const res = await api.request("POST", "/api/users/register", {
			rawBody: JSON.stringify({ email, password: "password-role", name: "R", role: "admin", id: "chosen-id", createdAt: "2000-01-01T00:00:00.000Z" })
		});
		expectStatus(res, 201);
		expect(res.body.user.role).toBe("customer");
		expect(res.body.user.id).not.toBe("chosen-id");
		expect(res.body.user.createdAt).not.toBe("2000-01-01T00:00:00.000Z");
		const me = await api.get("/api/users/me", { token: res.body.token });
		expect(me.body.role).toBe("customer");
		// And the customer is still not allowed admin routes.
		expectError(await api.post("/api/products", { sku: unique("R"), name: "x", price: 1, stock: 1 }, { token: res.body.token }), 403, "FORBIDDEN");
	});

	it("ADMIN_EMAIL/ADMIN_PASSWORD give an admin account", async () => {
		const res = await api.post("/api/users/login", { email: ADMIN.email, password: ADMIN.password });
		expectStatus(res, 200);
		expect(res.body.user).toMatchObject({ email: ADMIN.email, role: "admin" });
		const me = await api.get("/api/users/me", { token: res.body.token });
		expect(me.body.role).toBe("admin");
		// Nobody can register the admin's email again.
		expectError(await api.post("/api/users/register", { email: ADMIN.email.toUpperCase(), password: "hijack-attempt", name: "Evil" }), 409, "ALREADY_EXISTS");
		expectError(await api.post("/api/users/login", { email: ADMIN.email, password: "hijack-attempt" }), 401, "UNAUTHORIZED");
	});

	it("two registrations of one email at the same time: exactly one wins", async () => {
		const email = `${unique("race")}@example.test`;
		const answers = await Promise.all(
			Array.from({ length: 6 }, (_, i) =>
				api.post("/api/users/register", { email: i % 2 ? email.toUpperCase() : email, password: `password-${i}`, name: `R${i}` })
			)
		);
		const statuses = answers.map(a => a.status).sort();
		expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
		for (const answer of answers.filter(a => a.status === 409)) expectError(answer, 409, "ALREADY_EXISTS");
	});
});
