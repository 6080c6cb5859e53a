/**
 * Secrets never reach the log, even at LOG_LEVEL=trace: no card number (only its last four digits),
 * no password, no access token, no JWT secret.
 */
import { client, registerUser, startShop, type ShopProcess } from "../support/shop";
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
});
