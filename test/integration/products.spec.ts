/** Products (the inventory service): list, search, get, create, patch, restock. */
import { registerUser, type ShopProcess } from "../support/shop";
import { startShopWithAdmin, createProduct, expectError, expectStatus, getProduct, unique, type Client, type ProductBody } from "./helpers";

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const PRODUCT_KEYS = ["createdAt", "currency", "description", "id", "name", "price", "sku", "stock", "updatedAt"];

function expectProductShape(product: ProductBody) {
	expect(Object.keys(product).sort()).toEqual(PRODUCT_KEYS);
	expect(typeof product.id).toBe("string");
	expect(product.currency).toBe("USD");
	expect(Number.isInteger(product.price)).toBe(true);
	expect(Number.isInteger(product.stock)).toBe(true);
	expect(product.stock).toBeGreaterThanOrEqual(0);
	expect(product.createdAt).toMatch(ISO_UTC);
	expect(product.updatedAt).toMatch(ISO_UTC);
}

describe("products", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;

	beforeAll(async () => {
		({ shop, api, admin } = await startShopWithAdmin());
	});
	afterAll(async () => {
		await shop?.stop();
	});

	describe("list", () => {
		it("has the page shape and the demo catalogue at first start", async () => {
			const res = await api.get("/api/products");
			expectStatus(res, 200);
			expect(Object.keys(res.body).sort()).toEqual(["page", "pageSize", "rows", "total", "totalPages"]);
			expect(res.body).toMatchObject({ page: 1, pageSize: 20 });
			expect(res.body.total).toBeGreaterThan(0);
			expect(res.body.totalPages).toBe(Math.ceil(res.body.total / 20));
			for (const product of res.body.rows) expectProductShape(product);
		});

		it("pages through a search: total, totalPages, disjoint pages that add up, an empty page beyond", async () => {
			const tag = unique("page").replace(/-/g, "_");
			const created: ProductBody[] = [];
			for (let i = 0; i < 25; i++) created.push(await createProduct(api, admin, { sku: `${tag}-${String(i).padStart(2, "0")}`, name: `Paged ${i}` }));

			const seen: string[] = [];
			for (let page = 1; page <= 3; page++) {
				const res = await api.get(`/api/products?search=${tag}&page=${page}&pageSize=10`);
				expectStatus(res, 200);
				expect(res.body).toMatchObject({ total: 25, page, pageSize: 10, totalPages: 3 });
				expect(res.body.rows).toHaveLength(page === 3 ? 5 : 10);
				seen.push(...res.body.rows.map((p: ProductBody) => p.id));
			}
			expect(new Set(seen).size).toBe(25);
			expect(seen.sort()).toEqual(created.map(p => p.id).sort());

			const beyond = await api.get(`/api/products?search=${tag}&page=4&pageSize=10`);
			expectStatus(beyond, 200);
			expect(beyond.body).toMatchObject({ rows: [], total: 25, page: 4, totalPages: 3 });

			const all = await api.get(`/api/products?search=${tag}&pageSize=100`);
			expect(all.body).toMatchObject({ total: 25, pageSize: 100, totalPages: 1 });
			expect(all.body.rows).toHaveLength(25);
		});

		it("pageSize is 1..100", async () => {
			expectStatus(await api.get("/api/products?pageSize=100"), 200);
			expectStatus(await api.get("/api/products?pageSize=1"), 200);
			expectError(await api.get("/api/products?pageSize=101"), 422, "VALIDATION_ERROR");
			expectError(await api.get("/api/products?pageSize=1000000"), 422, "VALIDATION_ERROR");
			expectError(await api.get("/api/products?pageSize=-5"), 422, "VALIDATION_ERROR");
		});

		it("search matches name or sku, case-insensitively, and takes % and _ literally", async () => {
			const tag = unique("srch");
			const byName = await createProduct(api, admin, { name: `Quantum ${tag} Kettle` });
			const bySku = await createProduct(api, admin, { sku: `${tag}-SKU`, name: "Plain" });
			const percent = await createProduct(api, admin, { name: `${tag} 100% cotton` });

			const found = async (search: string) => {
				const res = await api.get(`/api/products?search=${encodeURIComponent(search)}&pageSize=100`);
				expectStatus(res, 200);
				return (res.body.rows as ProductBody[]).map(p => p.id).sort();
			};
			expect(await found(tag)).toEqual([byName.id, bySku.id, percent.id].sort());
			expect(await found(`quantum ${tag.toUpperCase()} KETTLE`)).toEqual([byName.id]);
			expect(await found(`${tag}-sku`)).toEqual([bySku.id]);
			expect(await found("100%")).toEqual([percent.id]);
			expect(await found("%")).toEqual([percent.id]);
			expect(await found(`${tag}_`)).toEqual([]);
			expect(await found(`no-such-thing-${tag}`)).toEqual([]);
		});
	});

	describe("get", () => {
		it("answers the product, or 404", async () => {
			const product = await createProduct(api, admin, { description: "With a description", price: 4321, stock: 9 });
			const res = await api.get(`/api/products/${product.id}`);
			expectStatus(res, 200);
			expect(res.body).toEqual(product);
			expectError(await api.get(`/api/products/${product.id}x`), 404, "NOT_FOUND");
		});
	});

	describe("create (admin)", () => {
		it("answers 201 with the product as given, description defaulting to empty", async () => {
			const sku = unique("NEW");
			const res = await api.post("/api/products", { sku, name: "New thing", price: 1999, stock: 12 }, { token: admin });
			expectStatus(res, 201);
			expectProductShape(res.body);
			expect(res.body).toMatchObject({ sku, name: "New thing", description: "", price: 1999, currency: "USD", stock: 12 });
			expect(await getProduct(api, res.body.id)).toEqual(res.body);
			const listed = await api.get(`/api/products?search=${sku}`);
			expect(listed.body.rows).toEqual([res.body]);
		});

		it("accepts a price and stock of 0 and a description", async () => {
			const res = await api.post("/api/products", { sku: unique("FREE"), name: "Free", description: "gratis", price: 0, stock: 0 }, { token: admin });
			expectStatus(res, 201);
			expect(res.body).toMatchObject({ price: 0, stock: 0, description: "gratis" });
		});

		it("is for admins only", async () => {
			const customer = await registerUser(shop.baseUrl, "prod");
			const body = { sku: unique("NOPE"), name: "x", price: 1, stock: 1 };
			expectError(await api.post("/api/products", body), 401, "UNAUTHORIZED");
			expectError(await api.post("/api/products", body, { token: customer.token }), 403, "FORBIDDEN");
		});

		it("409 for a taken sku", async () => {
			const first = await createProduct(api, admin);
			expectError(await api.post("/api/products", { sku: first.sku, name: "dup", price: 5, stock: 5 }, { token: admin }), 409, "ALREADY_EXISTS");
		});
	});

	describe("patch (admin)", () => {
		it("changes name, description and price only; stock, sku and id stay", async () => {
			const product = await createProduct(api, admin, { name: "Before", description: "old", price: 100, stock: 7 });
			await new Promise(resolve => setTimeout(resolve, 5));
			const res = await api.patch(
				`/api/products/${product.id}`,
				{ name: "After", description: "new", price: 250, stock: 9999, sku: "HIJACK", id: "other-id", currency: "EUR", createdAt: "2000-01-01T00:00:00.000Z" },
				{ token: admin }
			);
			expectStatus(res, 200);
			expectProductShape(res.body);
			expect(res.body).toMatchObject({
				id: product.id,
				sku: product.sku,
				name: "After",
				description: "new",
				price: 250,
				stock: 7,
				currency: "USD",
				createdAt: product.createdAt
			});
			expect(Date.parse(res.body.updatedAt)).toBeGreaterThan(Date.parse(product.updatedAt));
			// Read back (and through the list, which is cached): the change is visible at once.
			expect(await getProduct(api, product.id)).toEqual(res.body);
			const listed = await api.get(`/api/products?search=${product.sku}`);
			expect(listed.body.rows).toEqual([res.body]);
		});

		it("one field at a time", async () => {
			const product = await createProduct(api, admin, { name: "One", description: "d", price: 100 });
			const res = await api.patch(`/api/products/${product.id}`, { price: 101 }, { token: admin });
			expectStatus(res, 200);
			expect(res.body).toMatchObject({ name: "One", description: "d", price: 101 });
		});

		it("rejects a bad price or name and changes nothing", async () => {
			const product = await createProduct(api, admin, { price: 300 });
			for (const body of [{ price: -1 }, { price: 1.5 }, { price: "5" }, { name: "" }, { name: "x".repeat(201) }, { price: 1_000_000_001 }]) {
				expectError(await api.patch(`/api/products/${product.id}`, body, { token: admin }), 422, "VALIDATION_ERROR");
			}
			expect(await getProduct(api, product.id)).toEqual(product);
		});
	});

	describe("restock (admin)", () => {
		it("adds the quantity to the stock", async () => {
			const product = await createProduct(api, admin, { stock: 3 });
			const res = await api.post(`/api/products/${product.id}/restock`, { quantity: 4 }, { token: admin });
			expectStatus(res, 200);
			expectProductShape(res.body);
			expect(res.body.stock).toBe(7);
			expect(res.body.price).toBe(product.price);
			expect((await getProduct(api, product.id)).stock).toBe(7);
			expectStatus(await api.post(`/api/products/${product.id}/restock`, { quantity: 1 }, { token: admin }), 200);
			expect((await getProduct(api, product.id)).stock).toBe(8);
		});

		it("quantity must be an integer ≥ 1", async () => {
			const product = await createProduct(api, admin, { stock: 3 });
			for (const quantity of [0, -1, -100, 0.5, 1.5, "3", null]) {
				const res = await api.post(`/api/products/${product.id}/restock`, { quantity }, { token: admin });
				expectError(res, 422, "VALIDATION_ERROR");
				expect([...new Set(res.body.data.map((d: { field: string }) => d.field))]).toEqual(["quantity"]);
			}
			expectError(await api.post(`/api/products/${product.id}/restock`, {}, { token: admin }), 422, "VALIDATION_ERROR");
			expect((await getProduct(api, product.id)).stock).toBe(3);
		});

		it("restocks at the same time all count", async () => {
			const product = await createProduct(api, admin, { stock: 0 });
			const answers = await Promise.all(Array.from({ length: 20 }, () => api.post(`/api/products/${product.id}/restock`, { quantity: 3 }, { token: admin })));
			for (const answer of answers) expectStatus(answer, 200);
			expect((await getProduct(api, product.id)).stock).toBe(60);
		});
	});
});
