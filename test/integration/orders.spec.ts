/** Orders and payments, and who may see what: two customers and an admin. */
import { registerUser, type ShopProcess } from "../support/shop";
import {
	allOrders,
	createProduct,
	expectError,
	expectStatus,
	getProduct,
	paymentsOf,
	placeOrder,
	startShopWithAdmin,
	type Client,
	type ProductBody
} from "./helpers";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../../lib/cards";

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const ORDER_KEYS = ["cancelReason", "createdAt", "currency", "id", "items", "status", "total", "updatedAt", "userId"];
const PAYMENT_KEYS = ["amount", "cardLast4", "createdAt", "currency", "id", "orderId", "status"];

describe("orders and payments", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;
	let alice: { token: string; id: string; email: string };
	let bob: { token: string; id: string; email: string };
	let mug: ProductBody;
	let tee: ProductBody;

	beforeAll(async () => {
		({ shop, api, admin } = await startShopWithAdmin());
		alice = await registerUser(shop.baseUrl, "alice");
		bob = await registerUser(shop.baseUrl, "bob");
		mug = await createProduct(api, admin, { name: "Mug", price: 1299, stock: 100 });
		tee = await createProduct(api, admin, { name: "Tee", price: 2199, stock: 50 });
	});
	afterAll(async () => {
		await shop?.stop();
	});

	describe("create", () => {
		it("201 confirmed, items priced from the inventory (client prices ignored), total = Σ, stock taken, payment captured", async () => {
			const mugBefore = (await getProduct(api, mug.id)).stock;
			const teeBefore = (await getProduct(api, tee.id)).stock;
			const res = await api.post(
				"/api/orders",
				{
					items: [
						{ productId: mug.id, quantity: 2, unitPrice: 1, price: 1, name: "cheap", sku: "FAKE" },
						{ productId: tee.id, quantity: 3, unitPrice: 0 }
					],
					payment: { card: APPROVED_TEST_CARD, amount: 1 },
					total: 1,
					status: "confirmed",
					userId: bob.id
				},
				{ token: alice.token }
			);
			expectStatus(res, 201);
			const order = res.body;
			// Services name it under their own base path; the gateway puts it under /api.
			expect(res.headers.get("location")).toBe(`/api/orders/${order.id}`);
			expect(Object.keys(order).sort()).toEqual(ORDER_KEYS);
			expect(order).toMatchObject({ userId: alice.id, status: "confirmed", currency: "USD", cancelReason: null });
			expect(order.createdAt).toMatch(ISO_UTC);
			expect(order.updatedAt).toMatch(ISO_UTC);
			expect(order.items).toEqual([
				{ productId: mug.id, sku: mug.sku, name: "Mug", quantity: 2, unitPrice: 1299 },
				{ productId: tee.id, sku: tee.sku, name: "Tee", quantity: 3, unitPrice: 2199 }
			]);
			expect(order.total).toBe(2 * 1299 + 3 * 2199);
			expect((await getProduct(api, mug.id)).stock).toBe(mugBefore - 2);
			expect((await getProduct(api, tee.id)).stock).toBe(teeBefore - 3);

			const payments = await paymentsOf(api, alice.token, order.id);
			expect(payments).toHaveLength(1);
			expect(Object.keys(payments[0]).sort()).toEqual(PAYMENT_KEYS);
			expect(payments[0]).toMatchObject({ orderId: order.id, amount: order.total, currency: "USD", status: "captured", cardLast4: "4242" });
			expect(payments[0].createdAt).toMatch(ISO_UTC);
			// Only the last four digits of the card are ever given back.
			expect(JSON.stringify(payments)).not.toContain(APPROVED_TEST_CARD);
			expect(JSON.stringify(order)).not.toContain(APPROVED_TEST_CARD);
		});

		it("prices come from the inventory at the time of the order: a later price change leaves it alone", async () => {
			const product = await createProduct(api, admin, { price: 500, stock: 10 });
			const first = await placeOrder(api, alice.token, [{ productId: product.id, quantity: 1 }]);
			expectStatus(first, 201);
			expectStatus(await api.patch(`/api/products/${product.id}`, { price: 900 }, { token: admin }), 200);
			const second = await placeOrder(api, alice.token, [{ productId: product.id, quantity: 1 }]);
			expectStatus(second, 201);
			expect(second.body.items[0].unitPrice).toBe(900);
			expect(second.body.total).toBe(900);
			const again = await api.get(`/api/orders/${first.body.id}`, { token: alice.token });
			expect(again.body.items[0].unitPrice).toBe(500);
			expect(again.body.total).toBe(500);
		});

		it("any other Luhn-valid card of 12..19 digits is approved", async () => {
			const res = await placeOrder(api, alice.token, [{ productId: mug.id, quantity: 1 }], "5555555555554444");
			expectStatus(res, 201);
			const payments = await paymentsOf(api, alice.token, res.body.id);
			expect(payments).toEqual([expect.objectContaining({ status: "captured", cardLast4: "4444", amount: 1299 })]);
		});

		it("the declined card: 402, order cancelled with payment_declined, nothing captured, stock back", async () => {
			const before = (await getProduct(api, tee.id)).stock;
			const res = await placeOrder(api, alice.token, [{ productId: tee.id, quantity: 2 }], DECLINED_TEST_CARD);
			expectError(res, 402, "PAYMENT_DECLINED");
			expect((await getProduct(api, tee.id)).stock).toBe(before);
			const latest = (await api.get("/api/orders?pageSize=1", { token: alice.token })).body.rows[0];
			expect(latest).toMatchObject({ status: "cancelled", cancelReason: "payment_declined", total: 2 * 2199 });
			const payments = await paymentsOf(api, alice.token, latest.id);
			expect(payments.filter(p => p.status === "captured")).toEqual([]);
			for (const payment of payments) expect(payment.cardLast4).toBe("0002");
		});

		it("anonymous callers may not order", async () => {
			expectError(await api.post("/api/orders", { items: [{ productId: mug.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }), 401, "UNAUTHORIZED");
		});
	});

	describe("list", () => {
		it("the caller's own orders, newest first, with the page shape", async () => {
			const carol = await registerUser(shop.baseUrl, "carol");
			const ids: string[] = [];
			for (let i = 1; i <= 3; i++) {
				const res = await placeOrder(api, carol.token, [{ productId: mug.id, quantity: i }]);
				expectStatus(res, 201);
				ids.push(res.body.id);
			}
			const res = await api.get("/api/orders", { token: carol.token });
			expectStatus(res, 200);
			expect(Object.keys(res.body).sort()).toEqual(["page", "pageSize", "rows", "total", "totalPages"]);
			expect(res.body).toMatchObject({ total: 3, page: 1, pageSize: 20, totalPages: 1 });
			expect(res.body.rows.map((o: { id: string }) => o.id)).toEqual([...ids].reverse());
			for (const order of res.body.rows) {
				expect(Object.keys(order).sort()).toEqual(ORDER_KEYS);
				expect(order.userId).toBe(carol.id);
			}
			const created = res.body.rows.map((o: { createdAt: string }) => Date.parse(o.createdAt));
			expect([...created].sort((a, b) => b - a)).toEqual(created);

			const paged = await api.get("/api/orders?page=2&pageSize=2", { token: carol.token });
			expect(paged.body).toMatchObject({ total: 3, page: 2, pageSize: 2, totalPages: 2 });
			expect(paged.body.rows.map((o: { id: string }) => o.id)).toEqual([ids[0]]);
		});

		it("never shows another user's orders; the admin sees everybody's", async () => {
			const a = await placeOrder(api, alice.token, [{ productId: mug.id, quantity: 1 }]);
			const b = await placeOrder(api, bob.token, [{ productId: mug.id, quantity: 1 }]);
			expectStatus(a, 201);
			expectStatus(b, 201);
			const alices = await allOrders(api, alice.token);
			const bobs = await allOrders(api, bob.token);
			expect(alices.every(o => o.userId === alice.id)).toBe(true);
			expect(bobs.every(o => o.userId === bob.id)).toBe(true);
			expect(alices.map(o => o.id)).toContain(a.body.id);
			expect(alices.map(o => o.id)).not.toContain(b.body.id);
			expect(bobs.map(o => o.id)).toContain(b.body.id);
			expect(bobs.map(o => o.id)).not.toContain(a.body.id);

			const everything = await allOrders(api, admin);
			const everyId = everything.map(o => o.id);
			expect(everyId).toEqual(expect.arrayContaining([a.body.id, b.body.id, ...alices.map(o => o.id), ...bobs.map(o => o.id)]));
			expect(everything.some(o => o.userId === alice.id) && everything.some(o => o.userId === bob.id)).toBe(true);
		});
	});

	describe("get", () => {
		it("the owner and the admin see it; the other user gets 404", async () => {
			const res = await placeOrder(api, alice.token, [{ productId: tee.id, quantity: 1 }]);
			expectStatus(res, 201);
			const own = await api.get(`/api/orders/${res.body.id}`, { token: alice.token });
			expectStatus(own, 200);
			expect(own.body).toEqual(res.body);
			const byAdmin = await api.get(`/api/orders/${res.body.id}`, { token: admin });
			expectStatus(byAdmin, 200);
			expect(byAdmin.body).toEqual(own.body);
			expectError(await api.get(`/api/orders/${res.body.id}`, { token: bob.token }), 404, "NOT_FOUND");
			expectError(await api.get(`/api/orders/${res.body.id}`), 401, "UNAUTHORIZED");
		});
	});

	describe("cancel", () => {
		it("200 cancelled by the owner: payment refunded, stock back on sale", async () => {
			const product = await createProduct(api, admin, { price: 333, stock: 6 });
			const res = await placeOrder(api, alice.token, [{ productId: product.id, quantity: 4 }]);
			expectStatus(res, 201);
			expect((await getProduct(api, product.id)).stock).toBe(2);

			const cancel = await api.post(`/api/orders/${res.body.id}/cancel`, {}, { token: alice.token });
			expectStatus(cancel, 200);
			expect(Object.keys(cancel.body).sort()).toEqual(ORDER_KEYS);
			expect(cancel.body).toMatchObject({ id: res.body.id, status: "cancelled", cancelReason: "cancelled_by_user", total: 1332, items: res.body.items });
			expect((await api.get(`/api/orders/${res.body.id}`, { token: alice.token })).body).toEqual(cancel.body);

			const payments = await paymentsOf(api, alice.token, res.body.id);
			expect(payments).toHaveLength(1);
			expect(payments[0]).toMatchObject({ orderId: res.body.id, amount: 1332, status: "refunded" });
			expect((await getProduct(api, product.id)).stock).toBe(6);

			expectError(await api.post(`/api/orders/${res.body.id}/cancel`, {}, { token: alice.token }), 409, "INVALID_STATE");
			expect((await getProduct(api, product.id)).stock).toBe(6);
			expect((await paymentsOf(api, alice.token, res.body.id)).map(p => p.status)).toEqual(["refunded"]);
		});

		it("another user cannot cancel it (404) and it stays confirmed; the admin can", async () => {
			const product = await createProduct(api, admin, { stock: 3 });
			const res = await placeOrder(api, alice.token, [{ productId: product.id, quantity: 3 }]);
			expectStatus(res, 201);
			expectError(await api.post(`/api/orders/${res.body.id}/cancel`, {}, { token: bob.token }), 404, "NOT_FOUND");
			expect((await api.get(`/api/orders/${res.body.id}`, { token: alice.token })).body.status).toBe("confirmed");
			expect((await getProduct(api, product.id)).stock).toBe(0);
			expect((await paymentsOf(api, alice.token, res.body.id)).map(p => p.status)).toEqual(["captured"]);

			const byAdmin = await api.post(`/api/orders/${res.body.id}/cancel`, {}, { token: admin });
			expectStatus(byAdmin, 200);
			expect(byAdmin.body.status).toBe("cancelled");
			expect((await getProduct(api, product.id)).stock).toBe(3);
		});

		it("an order cancelled because of the declined card cannot be cancelled again", async () => {
			const product = await createProduct(api, admin, { stock: 3 });
			const res = await placeOrder(api, alice.token, [{ productId: product.id, quantity: 1 }], DECLINED_TEST_CARD);
			expectError(res, 402, "PAYMENT_DECLINED");
			const declined = (await api.get("/api/orders?pageSize=1", { token: alice.token })).body.rows[0];
			expect(declined.status).toBe("cancelled");
			expectError(await api.post(`/api/orders/${declined.id}/cancel`, {}, { token: alice.token }), 409, "INVALID_STATE");
			expect((await getProduct(api, product.id)).stock).toBe(3);
		});

		it("an unknown order: 404", async () => {
			expectError(await api.post("/api/orders/no-such-order/cancel", {}, { token: alice.token }), 404, "NOT_FOUND");
		});

		it("cancelling the same order many times at once: one 200, the rest 409, stock back once", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const res = await placeOrder(api, alice.token, [{ productId: product.id, quantity: 5 }]);
			expectStatus(res, 201);
			const answers = await Promise.all(Array.from({ length: 8 }, () => api.post(`/api/orders/${res.body.id}/cancel`, {}, { token: alice.token })));
			expect(answers.map(a => a.status).sort()).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
			for (const answer of answers.filter(a => a.status !== 200)) expectError(answer, 409, "INVALID_STATE");
			expect((await getProduct(api, product.id)).stock).toBe(5);
			expect((await paymentsOf(api, admin, res.body.id)).map(p => p.status)).toEqual(["refunded"]);
		});
	});

	describe("payments", () => {
		it("the owner and the admin see an order's payments; anyone else gets 404", async () => {
			const res = await placeOrder(api, alice.token, [{ productId: mug.id, quantity: 1 }]);
			expectStatus(res, 201);
			const owner = await paymentsOf(api, alice.token, res.body.id);
			expect(owner).toHaveLength(1);
			expect(owner[0]).toMatchObject({ orderId: res.body.id, status: "captured", amount: 1299 });
			expect(await paymentsOf(api, admin, res.body.id)).toEqual(owner);

			const other = await api.get(`/api/payments?orderId=${res.body.id}`, { token: bob.token });
			expectError(other, 404, "NOT_FOUND");
			expect(JSON.stringify(other.body)).not.toContain(owner[0].id);

			expectError(await api.get(`/api/payments?orderId=${res.body.id}`), 401, "UNAUTHORIZED");
			// The same answer for an order that does not exist: nothing tells the two apart.
			expectError(await api.get("/api/payments?orderId=no-such-order", { token: alice.token }), 404, "NOT_FOUND");
		});
	});
});
