/** Many buyers at once on scarce stock, and Idempotency-Key under concurrency. */
import { registerUser, type ShopProcess } from "../support/shop";
import {
	startShopWithAdmin,
	allOrders,
	createProduct,
	expectError,
	expectStatus,
	getProduct,
	mapLimit,
	paymentsOf,
	placeOrder,
	unique,
	type Client
} from "./helpers";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../../lib/cards";

describe("concurrency", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;

	beforeAll(async () => {
		({ shop, api, admin } = await startShopWithAdmin());
	});
	afterAll(async () => {
		await shop?.stop();
	});

	it("60 buyers, 1 unit each, stock 20: exactly 20 confirmed, 40 OUT_OF_STOCK, stock 0, never negative, 20 captured payments", async () => {
		const product = await createProduct(api, admin, { name: "Scarce", price: 4999, stock: 20 });
		const buyers = await mapLimit(Array.from({ length: 60 }), 8, () => registerUser(shop.baseUrl, "crowd"));
		expect(new Set(buyers.map(b => b.id)).size).toBe(60);

		// Watch the stock while the crowd buys.
		let storming = true;
		const observed: number[] = [];
		const watcher = (async () => {
			while (storming) {
				const res = await api.get(`/api/products/${product.id}`);
				expectStatus(res, 200);
				observed.push(res.body.stock);
			}
		})();
		const answers = await Promise.all(buyers.map(buyer => placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }])));
		storming = false;
		await watcher;

		const byStatus = new Map<number, number>();
		for (const answer of answers) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
		expect(Object.fromEntries(byStatus)).toEqual({ 201: 20, 409: 40 });

		const confirmed = answers.filter(a => a.status === 201);
		for (const answer of confirmed) {
			expect(answer.body).toMatchObject({ status: "confirmed", total: 4999 });
			expect(answer.body.items).toEqual([expect.objectContaining({ productId: product.id, quantity: 1, unitPrice: 4999 })]);
		}
		expect(new Set(confirmed.map(a => a.body.id)).size).toBe(20);
		for (const answer of answers.filter(a => a.status === 409)) {
			expectError(answer, 409, "OUT_OF_STOCK");
			expect(answer.body.data.products.map((p: { productId: string }) => p.productId)).toEqual([product.id]);
		}

		expect((await getProduct(api, product.id)).stock).toBe(0);
		expect(observed.length).toBeGreaterThan(0);
		expect(observed.every(stock => stock >= 0 && stock <= 20)).toBe(true);

		// Exactly 20 captured payments over every order of this product, each of the order's total.
		const orders = (await allOrders(api, admin)).filter(o => o.items.some((item: { productId: string }) => item.productId === product.id));
		expect(
			orders
				.filter(o => o.status === "confirmed")
				.map(o => o.id)
				.sort()
		).toEqual(confirmed.map(a => a.body.id).sort());
		expect(orders.filter(o => o.status === "pending")).toEqual([]);
		const payments = (await mapLimit(orders, 10, order => paymentsOf(api, admin, order.id))).flat();
		const captured = payments.filter(p => p.status === "captured");
		expect(captured).toHaveLength(20);
		expect(captured.map(p => p.orderId).sort()).toEqual(confirmed.map(a => a.body.id).sort());
		for (const payment of captured) expect(payment.amount).toBe(4999);
	});

	describe("Idempotency-Key", () => {
		it("two concurrent requests with one key from one user: one order, one status, one charge; a later replay too", async () => {
			const product = await createProduct(api, admin, { price: 1500, stock: 10 });
			const buyer = await registerUser(shop.baseUrl, "idem");
			const key = unique("key");
			const send = () => placeOrder(api, buyer.token, [{ productId: product.id, quantity: 2 }], APPROVED_TEST_CARD, { "Idempotency-Key": key });

			const [first, second] = await Promise.all([send(), send()]);
			expectStatus(first, 201);
			expect(second.status).toBe(first.status);
			expect(second.body.id).toBe(first.body.id);
			expect(second.body).toMatchObject({ status: "confirmed", total: 3000 });

			const replay = await send();
			expect(replay.status).toBe(201);
			expect(replay.body.id).toBe(first.body.id);

			expect((await getProduct(api, product.id)).stock).toBe(8);
			const payments = await paymentsOf(api, buyer.token, first.body.id);
			expect(payments.filter(p => p.status === "captured")).toHaveLength(1);
			expect(payments).toHaveLength(1);
			const mine = (await allOrders(api, buyer.token)).filter(o => o.items.some((i: { productId: string }) => i.productId === product.id));
			expect(mine.map(o => o.id)).toEqual([first.body.id]);
		});

		it("many concurrent requests with one key: still one order and one charge", async () => {
			const product = await createProduct(api, admin, { price: 700, stock: 10 });
			const buyer = await registerUser(shop.baseUrl, "idem-many");
			const key = unique("many");
			const answers = await Promise.all(
				Array.from({ length: 10 }, () => placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": key }))
			);
			expect(new Set(answers.map(a => a.status))).toEqual(new Set([201]));
			expect(new Set(answers.map(a => a.body.id)).size).toBe(1);
			expect((await getProduct(api, product.id)).stock).toBe(9);
			expect((await paymentsOf(api, admin, answers[0].body.id)).filter(p => p.status === "captured")).toHaveLength(1);
		});

		it("the same key from another user is another order", async () => {
			const product = await createProduct(api, admin, { price: 100, stock: 10 });
			const [u1, u2] = [await registerUser(shop.baseUrl, "k1"), await registerUser(shop.baseUrl, "k2")];
			const key = unique("shared");
			const [a, b] = await Promise.all([
				placeOrder(api, u1.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": key }),
				placeOrder(api, u2.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": key })
			]);
			expectStatus(a, 201);
			expectStatus(b, 201);
			expect(a.body.id).not.toBe(b.body.id);
			expect(a.body.userId).toBe(u1.id);
			expect(b.body.userId).toBe(u2.id);
			expect((await getProduct(api, product.id)).stock).toBe(8);
			// Each replays its own.
			const again = await placeOrder(api, u2.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": key });
			expect(again.status).toBe(201);
			expect(again.body.id).toBe(b.body.id);
		});

		it("different keys from one user are different orders", async () => {
			const product = await createProduct(api, admin, { stock: 10 });
			const buyer = await registerUser(shop.baseUrl, "k3");
			const a = await placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": unique("a") });
			const b = await placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": unique("b") });
			expectStatus(a, 201);
			expectStatus(b, 201);
			expect(a.body.id).not.toBe(b.body.id);
			expect((await getProduct(api, product.id)).stock).toBe(8);
		});

		it("a declined first attempt replays as the same 402, and charges nothing more", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const buyer = await registerUser(shop.baseUrl, "k4");
			const key = unique("declined");
			const send = (card: string) => placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }], card, { "Idempotency-Key": key });
			const [first, second] = await Promise.all([send(DECLINED_TEST_CARD), send(DECLINED_TEST_CARD)]);
			expectError(first, 402, "PAYMENT_DECLINED");
			expectError(second, 402, "PAYMENT_DECLINED");
			// A replay with a good card still answers the first attempt's outcome: nothing is charged.
			const replay = await send(APPROVED_TEST_CARD);
			expectError(replay, 402, "PAYMENT_DECLINED");
			expect((await getProduct(api, product.id)).stock).toBe(5);
			const orders = await allOrders(api, buyer.token);
			expect(orders).toHaveLength(1);
			expect(orders[0]).toMatchObject({ status: "cancelled", cancelReason: "payment_declined" });
			expect((await paymentsOf(api, buyer.token, orders[0].id)).filter(p => p.status === "captured")).toEqual([]);
		});

		it("an out-of-stock first attempt replays as the same 409 even after a restock", async () => {
			const product = await createProduct(api, admin, { stock: 1 });
			const buyer = await registerUser(shop.baseUrl, "k5");
			const key = unique("oos");
			const send = () => placeOrder(api, buyer.token, [{ productId: product.id, quantity: 2 }], APPROVED_TEST_CARD, { "Idempotency-Key": key });
			const first = await send();
			expectError(first, 409, "OUT_OF_STOCK");
			expectStatus(await api.post(`/api/products/${product.id}/restock`, { quantity: 5 }, { token: admin }), 200);
			const replay = await send();
			expectError(replay, 409, "OUT_OF_STOCK");
			expect((await getProduct(api, product.id)).stock).toBe(6);
			expect(await allOrders(api, buyer.token)).toHaveLength(1);
		});

		it("a replay after the order was cancelled answers the same order id and the first status", async () => {
			const product = await createProduct(api, admin, { stock: 5 });
			const buyer = await registerUser(shop.baseUrl, "k6");
			const key = unique("cancelled");
			const send = () => placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }], APPROVED_TEST_CARD, { "Idempotency-Key": key });
			const first = await send();
			expectStatus(first, 201);
			expectStatus(await api.post(`/api/orders/${first.body.id}/cancel`, {}, { token: buyer.token }), 200);
			const replay = await send();
			expect(replay.status).toBe(201);
			expect(replay.body.id).toBe(first.body.id);
			expect(replay.body.status).toBe("cancelled");
			// Nothing new was taken or charged.
			expect((await getProduct(api, product.id)).stock).toBe(5);
			expect((await paymentsOf(api, buyer.token, first.body.id)).map(p => p.status)).toEqual(["refunded"]);
		});
	});
});
