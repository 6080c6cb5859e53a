/**
 * `GET /api/admin/orders/export` over HTTP: admins only, its params checked, every order once
 * across keyset pages while customers keep ordering, each order with its payments.
 */
import { registerUser, type ApiAnswer, type ShopProcess } from "../support/shop";
import { createProduct, expectError, expectStatus, mapLimit, placeOrder, startShopWithAdmin, type Client, type ProductBody } from "./helpers";

describe("the admin export of orders with their payments", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;
	let buyer: { token: string; id: string };
	let product: ProductBody;

	beforeAll(async () => {
		({ shop, api, admin } = await startShopWithAdmin());
		buyer = await registerUser(shop.baseUrl, "exporter");
		product = await createProduct(api, admin, { price: 250, stock: 1000 });
	});
	afterAll(async () => {
		await shop?.stop();
	});

	const exportUrl = (query: string) => `/api/admin/orders/export${query}`;

	it("401 without a token, 403 for a customer, in the contract's error shape", async () => {
		expectError(await api.get(exportUrl("")), 401, "UNAUTHORIZED");
		expectError(await api.get(exportUrl(""), { token: buyer.token }), 403, "FORBIDDEN");
	});

	it.each([
		["?after=not-a-cursor", "after"],
		["?after=-5", "after"],
		["?limit=0", "limit"],
		["?limit=1001", "limit"],
		["?limit=many", "limit"]
	])("422 for %s, naming the field", async (query, field) => {
		const res = await api.get(exportUrl(query), { token: admin });
		expectError(res, 422, "VALIDATION_ERROR");
		expect((res.body.data as Array<{ field: string }>).map(item => item.field)).toEqual([field]);
	});

	it("lists every order once across its pages while orders are created, each with its payments", async () => {
		const before = await mapLimit(
			Array.from({ length: 30 }, (_, i) => i),
			8,
			async () => {
				const res = await placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }]);
				expectStatus(res, 201);
				return res.body.id as string;
			}
		);
		const cancelled = before[3];
		expectStatus(await api.post(`/api/orders/${cancelled}/cancel`, {}, { token: buyer.token }), 200);

		// Customers keep ordering while the export pages (5 orders a page), 30 orders at most: an endless
		// load could outrun the pages, and the export would never reach its end.
		let ordering = true;
		const during: string[] = [];
		const load = (async () => {
			while (ordering && during.length < 30) {
				const res = await placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }]);
				expectStatus(res, 201);
				during.push(res.body.id);
			}
		})();
		const listed: Array<{ id: string; status: string; total: number; payments: Array<{ orderId: string; status: string; amount: number }> }> = [];
		let after: string | null = null;
		let pages = 0;
		try {
			do {
				const res: ApiAnswer = await api.get(exportUrl(`?limit=5${after === null ? "" : `&after=${after}`}`), { token: admin });
				expectStatus(res, 200);
				expect(Object.keys(res.body).sort()).toEqual(["next", "rows"]);
				expect(res.body.rows.length).toBeLessThanOrEqual(5);
				listed.push(...res.body.rows);
				after = res.body.next;
				pages++;
				// Let a few orders in between the pages.
				await new Promise(resolve => setTimeout(resolve, 20));
			} while (after !== null && pages < 200);
		} finally {
			ordering = false;
			await load;
		}
		expect(after).toBeNull();
		const ids = listed.map(order => order.id);
		expect(new Set(ids).size).toBe(ids.length);
		// Every order there before the export (placed 8 at a time: in any order), then those created meanwhile, in creation order.
		expect(ids.slice(0, before.length).sort()).toEqual([...before].sort());
		expect(ids.slice(before.length)).toEqual(during.slice(0, ids.length - before.length));
		expect(during.length).toBeGreaterThan(0);

		const byId = new Map(listed.map(order => [order.id, order]));
		expect(byId.get(cancelled)).toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user" });
		expect(byId.get(cancelled)!.payments).toMatchObject([{ orderId: cancelled, status: "refunded", amount: 250, cardLast4: "4242" }]);
		for (const id of before.filter(id => id !== cancelled)) {
			expect(byId.get(id)).toMatchObject({ status: "confirmed", total: 250, payments: [{ orderId: id, status: "captured", amount: 250 }] });
			expect(byId.get(id)!.payments).toHaveLength(1);
		}
	});
});
