/**
 * Secrets never reach the log, even at LOG_LEVEL=trace: no card number (only its last four digits),
 * no password, no access token, no JWT secret.
 */
import { client, eventually, registerUser, startShop, type ShopProcess } from "../support/shop";
import { ADMIN, ADMIN_ENV, adminToken, createProduct, expectStatus, placeOrder } from "./helpers";

const CARD = "4000056655665556"; // approved (Luhn-valid, not the decline card)
const JWT_SECRET = "secrets-spec-jwt-secret-0123456789";

describe("the log at LOG_LEVEL=trace", () => {
	let shop: ShopProcess;

	beforeAll(async () => {
		shop = await startShop({ env: { ...ADMIN_ENV, LOG_LEVEL: "trace", JWT_SECRET } });
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("holds no card number, password, token or secret after registering, logging in and ordering", async () => {
		const api = client(shop.baseUrl);
		const admin = await adminToken(api);
		const product = await createProduct(api, admin, { stock: 5 });
		const buyer = await registerUser(shop.baseUrl);
		const login = await api.post("/api/users/login", { email: buyer.email, password: "correct horse battery" });
		expectStatus(login, 200);
		const order = await placeOrder(api, login.body.token, [{ productId: product.id, quantity: 1 }], CARD);
		expectStatus(order, 201);
		expectStatus(await api.get("/api/users/me", { token: login.body.token }), 200);

		const log = shop.output();
		expect(log).toContain("card ending 5556");
		for (const secret of [CARD, "correct horse battery", ADMIN.password, JWT_SECRET, buyer.token, login.body.token, admin]) {
			expect({ secret: secret.slice(0, 12), found: log.includes(secret) }).toEqual({ secret: secret.slice(0, 12), found: false });
		}
	});

	it("holds no card number nor password that a client sent in the wrong type or the wrong field (a 422)", async () => {
		const api = client(shop.baseUrl);
		const buyer = await registerUser(shop.baseUrl, "typo");
		const productId = (await api.get("/api/products")).body.rows[0].id as string;
		const items = [{ productId, quantity: 1 }];
		// Moleculer's validator puts the offending value in its error (`actual`), and the broker logs a rejected request with its error at debug.
		const sent: Array<[string, unknown]> = [
			["/api/orders", { items, payment: { card: 4000056655665556 } }],
			["/api/orders", { items, payment: "5105105105105100" }],
			["/api/orders", { items: "4111111111111111", payment: { card: CARD } }],
			["/api/users/login", { email: buyer.email, password: 73917391739173 }],
			["/api/users/register", { email: "typo-secret@example.test", password: ["hunter2-hunter2"], name: "x" }]
		];
		const requestIds = sent.map((_, i) => `typo-${process.pid}-${i}`);
		const answers = await Promise.all(
			sent.map(([url, body], i) => api.post(url, body, { token: url === "/api/orders" ? buyer.token : undefined, headers: { "x-request-id": requestIds[i] } }))
		);
		expect(answers.map(answer => answer.status)).toEqual([422, 422, 422, 422, 422]);
		// Each refusal's log lines are in (they may arrive after the answer; the gateway's is the last) before the log is searched.
		let log = "";
		await eventually(async () => {
			log = shop.output();
			const lines = log.split("\n");
			return requestIds.every(id => lines.some(line => line.includes(`[req ${id}] The 'api.rest' request is rejected`)));
		}, 10_000);
		const secrets = ["4000056655665556", "5105105105105100", "4111111111111111", "73917391739173", "hunter2-hunter2"];
		expect(secrets.filter(secret => log.includes(secret))).toEqual([]);
	});
});
