/**
 * Accounts and the gateway under an attacker's eye, against real processes: ADMIN_EMAIL cannot take
 * over an account, tokens die with the password or role that issued them and never live forever,
 * register is limited per address (behind a trusted proxy, by the address it names), X-Request-ID
 * is bounded, and a write's input is its body.
 */
import { connect } from "node:net";
import jwt from "jsonwebtoken";
import { client, registerUser, startShop, tempDataDir, type ShopProcess } from "../support/shop";
import { ADMIN, ADMIN_ENV, adminToken, createProduct, expectError, expectStatus, runUntilExit, unique, type Client } from "./helpers";

const JWT_SECRET = "security-suite-secret-0123456789";

describe("security: the admin account and tokens", () => {
	const dataDir = tempDataDir("shop-security-");
	let shop: ShopProcess | undefined;
	afterEach(async () => {
		await shop?.stop();
		shop = undefined;
	});

	it("ADMIN_EMAIL naming a customer's account: the node refuses to start with one line; the account and its token stay a customer's", async () => {
		shop = await startShop({ dataDir, env: { JWT_SECRET, ADMIN_EMAIL: undefined, ADMIN_PASSWORD: undefined } });
		const victim = await registerUser(shop.baseUrl, "future-admin");
		await shop.stop();
		shop = undefined;

		const exit = await runUntilExit({ DATA_DIR: dataDir, JWT_SECRET, ADMIN_EMAIL: victim.email.toUpperCase(), ADMIN_PASSWORD: "operator-password-1" }, 20_000);
		expect(exit.code).toBe(1);
		const lines = `${exit.stdout}\n${exit.stderr}`.split("\n").filter(line => line.includes("ADMIN_EMAIL"));
		expect(lines).toHaveLength(1);
		expect(lines[0]).toMatch(/customer/);
		expect(lines[0]).not.toContain("operator-password-1");

		shop = await startShop({ dataDir, env: { JWT_SECRET, ADMIN_EMAIL: undefined, ADMIN_PASSWORD: undefined } });
		const api = client(shop.baseUrl);
		const me = await api.get("/api/users/me", { token: victim.token });
		expectStatus(me, 200);
		expect(me.body.role).toBe("customer");
		expectError(await api.post("/api/products", { sku: unique("TAKE"), name: "x", price: 1, stock: 1 }, { token: victim.token }), 403, "FORBIDDEN");
		expectError(await api.post("/api/users/login", { email: victim.email, password: "operator-password-1" }), 401, "UNAUTHORIZED");
	});

	it("a restart with a new ADMIN_PASSWORD revokes every token the admin had", async () => {
		shop = await startShop({ dataDir, env: { JWT_SECRET, ...ADMIN_ENV } });
		const before = await adminToken(client(shop.baseUrl));
		expectStatus(await client(shop.baseUrl).get("/api/users/me", { token: before }), 200);
		await shop.stop();

		shop = await startShop({ dataDir, env: { JWT_SECRET, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: "a-brand-new-password" } });
		const api = client(shop.baseUrl);
		expectError(await api.get("/api/users/me", { token: before }), 401, "UNAUTHORIZED");
		const login = await api.post("/api/users/login", { email: ADMIN.email, password: "a-brand-new-password" });
		expectStatus(login, 200);
		expectStatus(await api.get("/api/users/me", { token: login.body.token }), 200);
	});

	it("a correctly signed token without an expiry is refused (401)", async () => {
		shop = await startShop({ dataDir, env: { JWT_SECRET } });
		const api = client(shop.baseUrl);
		const user = await registerUser(shop.baseUrl, "forever");
		const forever = jwt.sign({ role: "customer", ver: 0 }, JWT_SECRET, { subject: user.id, algorithm: "HS256" });
		expectError(await api.get("/api/users/me", { token: forever }), 401, "UNAUTHORIZED");
		// The token the shop issued carries an expiry of at most 24 h, and works.
		const claims = jwt.decode(user.token) as jwt.JwtPayload;
		expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(24 * 3600);
		expectStatus(await api.get("/api/users/me", { token: user.token }), 200);
	});
});

/** A GET with raw header bytes (fetch and node:http refuse what a hostile client may still send); answers the status and the X-Request-ID echoed. */
function rawGet(port: number, path: string, requestId: string): Promise<{ status: number; requestId: string | undefined }> {
	return new Promise((resolve, reject) => {
		const socket = connect(port, "127.0.0.1", () => {
			socket.end(Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: ${requestId}\r\nConnection: close\r\n\r\n`, "latin1"));
		});
		let answer = "";
		socket.setEncoding("latin1");
		socket.on("data", chunk => (answer += chunk));
		socket.on("error", reject);
		socket.on("end", () => {
			const head = answer.split("\r\n\r\n")[0].split("\r\n");
			const echoed = head.find(line => /^x-request-id:/i.test(line));
			resolve({ status: Number(head[0].split(" ")[1]), requestId: echoed?.slice(echoed.indexOf(":") + 1).trim() });
		});
	});
}

describe("security: the gateway", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;

	beforeAll(async () => {
		// The contract's default limits (REGISTER_RATE_LIMIT unset), debug logs to see what is logged.
		shop = await startShop({ env: { ...ADMIN_ENV, LOGIN_RATE_LIMIT: "1000", REGISTER_RATE_LIMIT: undefined, LOG_LEVEL: "debug", CI: "1" } });
		api = client(shop.baseUrl);
		admin = await adminToken(api);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("X-Request-ID: a sane one is echoed; an overlong or non-printable one is replaced by a generated id, and never logged", async () => {
		const sane = "req-0123456789abcdef:trace/1";
		const ok = await api.get("/api/health", { headers: { "x-request-id": sane } });
		expect(ok.headers.get("x-request-id")).toBe(sane);

		const marker = `LONGID${"x".repeat(2994)}`;
		const long = await api.get("/api/products", { headers: { "x-request-id": marker } });
		expectStatus(long, 200);
		const replaced = long.headers.get("x-request-id");
		expect(replaced).not.toBeNull();
		expect(replaced!.length).toBeLessThanOrEqual(128);
		expect(replaced).toMatch(/^[\x21-\x7e]+$/);
		expect(replaced).not.toContain("LONGID");

		const correlation = await api.get("/api/health", { headers: { "x-correlation-id": "y".repeat(500) } });
		expect(correlation.headers.get("x-request-id")!.length).toBeLessThanOrEqual(128);

		// Bytes fetch will not send but Node's parser accepts (it refuses CR, LF, NUL, DEL itself): a tab, Latin-1, spaces, nothing.
		for (const hostile of ["tab\there", "latin\xe9here", "with spaces", "   "]) {
			const res = await rawGet(shop.port, "/api/health", hostile);
			expect(res.status).toBe(200);
			expect(res.requestId).toMatch(/^[\x21-\x7e]{1,128}$/);
			expect(res.requestId).not.toBe(hostile.trim());
		}
		expect(shop.output()).not.toContain("LONGID");
	});

	it("a write's input is its body: ?email= does not replace register's email", async () => {
		const email = `${unique("body")}@example.test`;
		const evil = `${unique("query")}@example.test`;
		const res = await api.post(`/api/users/register?email=${encodeURIComponent(evil)}&role=admin`, { email, password: "password-body", name: "Body" });
		expectStatus(res, 201);
		expect(res.body.user.email).toBe(email);
		expect(res.body.user.role).toBe("customer");
		expectStatus(await api.post("/api/users/login", { email, password: "password-body" }), 200);
		expectError(await api.post("/api/users/login", { email: evil, password: "password-body" }), 401, "UNAUTHORIZED");
	});

	it("... nor does ?price= replace a product patch's price, nor add a field the body did not send; the path's :id stays the path's", async () => {
		const product = await createProduct(api, admin, { price: 1000, description: "kept" });
		const other = await createProduct(api, admin, { price: 2000 });
		const res = await api.patch(`/api/products/${product.id}?price=1&description=from-query&id=${other.id}`, { price: 1500, id: other.id }, { token: admin });
		expectStatus(res, 200);
		expect(res.body).toMatchObject({ id: product.id, price: 1500, description: "kept" });
		const untouched = await api.get(`/api/products/${other.id}`);
		expect(untouched.body.price).toBe(2000);
		// Query-only input on a write is ignored too: the body is the whole input.
		expectError(await api.request("POST", `/api/products/${product.id}/restock?quantity=5`, { token: admin, body: {} }), 422, "VALIDATION_ERROR");
		// Reads still take their query.
		const page = await api.get("/api/products?pageSize=1&page=2");
		expectStatus(page, 200);
		expect(page.body).toMatchObject({ page: 2, pageSize: 1 });
	});
});

describe("security: register's limit per client address", () => {
	let shop: ShopProcess;
	let api: Client;
	beforeAll(async () => {
		// The contract's default (REGISTER_RATE_LIMIT unset) and a login limit of its own.
		shop = await startShop({ env: { ...ADMIN_ENV, LOGIN_RATE_LIMIT: "1000", REGISTER_RATE_LIMIT: undefined } });
		api = client(shop.baseUrl);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("register: 10 a minute per client address, then 429 RATE_LIMIT_EXCEEDED with Retry-After; login keeps its own count", async () => {
		const taken = `${unique("taken")}@example.test`;
		const statuses: number[] = [];
		for (let i = 0; i < 10; i++) {
			const res = await api.post("/api/users/register", { email: i % 2 ? taken : `${unique("reg")}@example.test`, password: "password-limit", name: "L" });
			statuses.push(res.status);
		}
		expect(statuses).toEqual([201, 201, 201, 409, 201, 409, 201, 409, 201, 409]);
		const eleventh = await api.post("/api/users/register", { email: `${unique("reg")}@example.test`, password: "password-limit", name: "L" });
		expectError(eleventh, 429, "RATE_LIMIT_EXCEEDED");
		const retryAfter = Number(eleventh.headers.get("retry-after"));
		expect(Number.isInteger(retryAfter)).toBe(true);
		expect(retryAfter).toBeGreaterThanOrEqual(1);
		expect(retryAfter).toBeLessThanOrEqual(60);
		// X-Forwarded-For is the client's to forge: no fresh count.
		expectError(
			await api.post(
				"/api/users/register",
				{ email: "x@example.test", password: "password-limit", name: "L" },
				{ headers: { "x-forwarded-for": "203.0.113.50" } }
			),
			429,
			"RATE_LIMIT_EXCEEDED"
		);
		expectStatus(await api.post("/api/users/login", { email: ADMIN.email, password: ADMIN.password }), 200);
	});
});

describe("security: the limits per address behind a trusted load balancer (TRUSTED_PROXIES)", () => {
	let shop: ShopProcess;
	let api: Client;
	beforeAll(async () => {
		// The test's requests come from 127.0.0.1, as nginx's do in `npm run cluster`.
		shop = await startShop({ env: { ...ADMIN_ENV, LOGIN_RATE_LIMIT: "2", TRUSTED_PROXIES: "127.0.0.1" } });
		api = client(shop.baseUrl);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	const login = (forwardedFor: string) =>
		api.post("/api/users/login", { email: ADMIN.email, password: ADMIN.password }, { headers: { "x-forwarded-for": forwardedFor } });

	it("counts each client by the address the proxy appended, not the proxy's, and not what the client wrote before it", async () => {
		expectStatus(await login("203.0.113.1"), 200);
		expectStatus(await login("203.0.113.1"), 200);
		expectError(await login("203.0.113.1"), 429, "RATE_LIMIT_EXCEEDED");
		// Another client behind the same proxy has its own count.
		expectStatus(await login("203.0.113.2"), 200);
		// A hop the client forged to the left of the one the proxy appended changes nothing.
		expectError(await login("198.51.100.7, 203.0.113.1"), 429, "RATE_LIMIT_EXCEEDED");
	});

	it("refuses a malformed TRUSTED_PROXIES at start with one line", async () => {
		const exit = await runUntilExit({ TRUSTED_PROXIES: "127.0.0.1,not-an-address" }, 20_000);
		expect(exit.code).toBe(1);
		expect(exit.stderr).toContain('TRUSTED_PROXIES must be IP addresses or subnets (e.g. 127.0.0.1,10.0.0.0/8), got "not-an-address"');
	});
});
