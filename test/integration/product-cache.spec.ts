/**
 * `GET /api/products/:id` from the gateway's cache of answers (lib/product-cache.ts): the same
 * answer and headers as the full path, a strong ETag and 304s, and never a product older than a
 * change made through this gateway (an update, a restock, an order's reservation, a cancel).
 */
import { once } from "node:events";
import { connect } from "node:net";
import { client, loginAs, metricSum, registerUser, startShop, type ShopProcess } from "../support/shop";
import { ADMIN, ADMIN_ENV, createProduct, errorShapeProblems, expectStatus, placeOrder, type Client, type ProductBody } from "./helpers";

jest.setTimeout(60_000);

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

describe("product reads from the gateway's cache", () => {
	let shop: ShopProcess;
	let api: Client;
	let admin: string;

	beforeAll(async () => {
		shop = await startShop({ env: { ...ADMIN_ENV, TRACING_SAMPLE_RATE: "0.1" } });
		api = client(shop.baseUrl);
		admin = await loginAs(shop.baseUrl, ADMIN.email, ADMIN.password);
	});
	afterAll(async () => {
		await shop?.stop();
	});

	/** The gateway's cache counters at /metrics (refreshed every second). */
	async function cacheHits(): Promise<number> {
		await new Promise(resolve => setTimeout(resolve, 1100));
		return metricSum(shop.metricsPort, "shop_gateway_product_cache_hits");
	}

	/** Reads a product until its answer is served from the cache (a hit counted), and answers that read. */
	async function cachedRead(id: string) {
		const before = await cacheHits();
		// A product changed in the last second is served but not kept: read until it is.
		for (let attempt = 0; attempt < 10; attempt++) {
			const res = await api.get<ProductBody>(`/api/products/${id}`);
			expectStatus(res, 200);
			if ((await cacheHits()) > before) return res;
		}
		throw new Error("the product's answer was never served from the gateway's cache");
	}

	it("answers the same bytes and headers from the cache as from inventory, with a strong ETag and no-cache", async () => {
		const product = await createProduct(api, admin, { name: "Cached once" });
		const first = await fetch(`${shop.baseUrl}/api/products/${product.id}`);
		const firstBody = await first.text();
		const cached = await cachedRead(product.id);
		const again = await fetch(`${shop.baseUrl}/api/products/${product.id}`);
		const againBody = await again.text();

		expect(JSON.parse(firstBody)).toEqual(product);
		expect(againBody).toBe(firstBody);
		expect(cached.body).toEqual(product);
		for (const res of [first, again]) {
			expect(res.status).toBe(200);
			expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
			expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(firstBody)));
			expect(res.headers.get("cache-control")).toBe("no-cache");
			expect(res.headers.get("etag")).toMatch(/^"[\w-]{27}"$/);
			expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f]{32}$/);
			expect(res.headers.get("traceparent")).toBe(
				`00-${res.headers.get("x-request-id")}-${res.headers.get("traceparent")!.split("-")[2]}-${res.headers.get("traceparent")!.split("-")[3]}`
			);
			expect(res.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
		}
		expect(again.headers.get("etag")).toBe(first.headers.get("etag"));
		// Every answer has its own request id.
		expect(again.headers.get("x-request-id")).not.toBe(first.headers.get("x-request-id"));
	});

	it("answers 304 to If-None-Match with the ETag, from the cache and from the full path, and 200 with the new one after a change", async () => {
		const product = await createProduct(api, admin);
		const { headers } = await cachedRead(product.id);
		const etag = headers.get("etag")!;

		// `/api/products/<id>/` (a trailing slash) always takes the full path.
		for (const url of [`/api/products/${product.id}`, `/api/products/${product.id}/`]) {
			for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
				// fetch() adds `Cache-Control: no-cache` to a request with If-None-Match (the Fetch standard): still a 304.
				const res = await fetch(shop.baseUrl + url, { headers: { "if-none-match": ifNoneMatch, "x-request-id": "revalidate-1" } });
				expect({ url, ifNoneMatch, status: res.status, body: await res.text() }).toEqual({ url, ifNoneMatch, status: 304, body: "" });
				expect(res.headers.get("etag")).toBe(etag);
				expect(res.headers.get("cache-control")).toBe("no-cache");
				expect(res.headers.get("x-request-id")).toBe("revalidate-1");
				expect(res.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
			}
			const stale = await fetch(shop.baseUrl + url, { headers: { "if-none-match": '"not-this-one"' } });
			expect({ url, status: stale.status }).toEqual({ url, status: 200 });
			expect(await stale.json()).toEqual(product);
		}

		expectStatus(await api.patch(`/api/products/${product.id}`, { price: 4321 }, { token: admin }), 200);
		const changed = await fetch(`${shop.baseUrl}/api/products/${product.id}`, { headers: { "if-none-match": etag } });
		expect(changed.status).toBe(200);
		expect(changed.headers.get("etag")).not.toBe(etag);
		expect(((await changed.json()) as ProductBody).price).toBe(4321);
	});

	it("shows an update and a restock at once on the next read (read-your-writes)", async () => {
		const product = await createProduct(api, admin, { stock: 10 });
		await cachedRead(product.id);
		expectStatus(await api.patch(`/api/products/${product.id}`, { name: "Renamed" }, { token: admin }), 200);
		expect((await api.get(`/api/products/${product.id}`)).body).toMatchObject({ name: "Renamed", stock: 10 });

		await cachedRead(product.id);
		expectStatus(await api.post(`/api/products/${product.id}/restock`, { quantity: 5 }, { token: admin }), 200);
		expect((await api.get(`/api/products/${product.id}`)).body).toMatchObject({ name: "Renamed", stock: 15 });
	});

	it("shows the stock an order took, and gave back, at once on the next read", async () => {
		const product = await createProduct(api, admin, { stock: 10 });
		const buyer = await registerUser(shop.baseUrl);
		expect((await cachedRead(product.id)).body.stock).toBe(10);

		const order = await placeOrder(api, buyer.token, [{ productId: product.id, quantity: 3 }]);
		expectStatus(order, 201);
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(7);

		await cachedRead(product.id);
		expectStatus(await api.post(`/api/orders/${order.body.id}/cancel`, undefined, { token: buyer.token }), 200);
		expect((await api.get(`/api/products/${product.id}`)).body.stock).toBe(10);
	});

	it("answers unknown and bad ids as before: 404 and 422 in the contract's shape, never cached", async () => {
		for (let i = 0; i < 2; i++) {
			const missing = await api.get("/api/products/no-such-product");
			expect(missing.status).toBe(404);
			expect(missing.body).toEqual({
				name: "MoleculerClientError",
				message: "Product not found",
				code: 404,
				type: "NOT_FOUND",
				data: { id: "no-such-product" }
			});
			expect(errorShapeProblems(missing)).toEqual([]);
			expect(missing.headers.get("etag")).toBeNull();
			expect(missing.headers.get("x-request-id")).toMatch(/^[0-9a-f]{32}$/);

			const bad = await api.get(`/api/products/${"x".repeat(65)}`);
			expect(bad.status).toBe(422);
			expect(bad.body).toMatchObject({ type: "VALIDATION_ERROR", data: [expect.objectContaining({ field: "id", type: "stringMax" })] });
			expect(errorShapeProblems(bad)).toEqual([]);
		}
	});

	it("answers a cached product's other spellings (a query, a trailing slash) through the full path, alike", async () => {
		const product = await createProduct(api, admin);
		await cachedRead(product.id);
		for (const suffix of ["?page=2", "/", "?id=someone-else"]) {
			const res = await api.get(`/api/products/${product.id}${suffix}`);
			expect({ suffix, status: res.status, body: res.body }).toEqual({ suffix, status: 200, body: product });
		}
	});

	it("continues the client's trace, and keeps a span of a sampled cached read", async () => {
		const product = await createProduct(api, admin);
		await cachedRead(product.id);
		const parent = "00f067aa0ba902b7";
		const res = await api.get(`/api/products/${product.id}`, { headers: { traceparent: `00-${TRACE_ID}-${parent}-01` } });
		expect(res.status).toBe(200);
		expect(res.headers.get("x-request-id")).toBe(TRACE_ID);
		const [, traceId, spanId, flags] = res.headers.get("traceparent")!.split("-");
		expect({ traceId, flags }).toEqual({ traceId: TRACE_ID, flags: "01" });

		const trace = await api.get(`/api/admin/traces/${TRACE_ID}`, { token: admin });
		expect(trace.status).toBe(200);
		expect(trace.body.spans).toEqual([
			expect.objectContaining({ traceId: TRACE_ID, id: spanId, parentId: parent, name: `GET /api/products/${product.id}`, service: "api", error: null })
		]);
		expect(trace.body.spans[0].tags).toMatchObject({ fromCache: "true", "http.method": "GET" });

		// X-Correlation-ID wins over X-Request-ID, an insane one is replaced, as on the full path.
		const correlated = await api.get(`/api/products/${product.id}`, { headers: { "x-correlation-id": "corr-1", "x-request-id": "req-1" } });
		expect(correlated.headers.get("x-request-id")).toBe("corr-1");
		const insane = await api.get(`/api/products/${product.id}`, { headers: { "x-request-id": "has space" } });
		expect(insane.headers.get("x-request-id")).toMatch(/^[0-9a-f]{32}$/);

		// Not sampled by the client: no span, and the answer says so.
		const unsampled = await api.get(`/api/products/${product.id}`, { headers: { traceparent: `00-${"a".repeat(32)}-${parent}-00` } });
		expect(unsampled.headers.get("traceparent")).toMatch(new RegExp(`^00-${"a".repeat(32)}-[0-9a-f]{16}-00$`));
		expect((await api.get(`/api/admin/traces/${"a".repeat(32)}`, { token: admin })).status).toBe(404);
	});
});

describe("a cached product read while the gateway stops", () => {
	const canConnect = (port: number) =>
		new Promise<boolean>(resolve => {
			const socket = connect(port, "127.0.0.1");
			socket.once("connect", () => {
				socket.destroy();
				resolve(true);
			});
			socket.once("error", () => resolve(false));
		});

	it("is refused like any other request: 503 in the contract's shape, with Connection: close", async () => {
		const shop = await startShop({ env: { ...ADMIN_ENV } });
		try {
			const api = client(shop.baseUrl);
			const product = await createProduct(api, await loginAs(shop.baseUrl, ADMIN.email, ADMIN.password));
			const socket = connect(shop.port, "127.0.0.1");
			await once(socket, "connect");
			let received = "";
			socket.on("data", chunk => (received += String(chunk)));
			const request = `GET /api/products/${product.id} HTTP/1.1\r\nHost: shop\r\n`;
			// Served (and cached) on this keep-alive connection; then more than the 1 s a change keeps it uncached.
			await new Promise(resolve => setTimeout(resolve, 1100));
			for (let i = 0; i < 2; i++) {
				socket.write(`${request}\r\n`);
				await new Promise(resolve => setTimeout(resolve, 200));
			}
			expect(received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
			received = "";

			// A request still arriving when the stop begins.
			socket.write(request);
			await new Promise(resolve => setTimeout(resolve, 100));
			shop.child.kill("SIGTERM");
			for (let waited = 0; (await canConnect(shop.port)) && waited < 10_000; waited += 50) await new Promise(resolve => setTimeout(resolve, 50));
			socket.write("\r\n");
			await once(socket, "close");

			const [head, body] = received.split("\r\n\r\n");
			expect(head).toMatch(/^HTTP\/1\.1 503/);
			expect(head).toMatch(/^connection: close$/im);
			expect(head).toMatch(/^retry-after: \d+$/im);
			expect(JSON.parse(body)).toMatchObject({ code: 503, type: "SERVICE_NOT_AVAILABLE", data: null });
			expect(await shop.exited).toBe(0);
		} finally {
			await shop.stop();
		}
	});
});
