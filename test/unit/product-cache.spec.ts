/**
 * lib/product-cache.ts: the gateway's product answers are bounded (entries, bytes, age), never put
 * back older than a change, and revalidated by a strong ETag.
 */
import { matchesIfNoneMatch, ProductCache, strongETag, type ProductCacheLimits } from "../../lib/product-cache";
import { sleep } from "./helpers";

const limits: ProductCacheLimits = { max: 50, maxBytes: 20_000, ttlMs: 30_000, settleMs: 200 };
const product = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: `Product ${id}`, stock: 10, ...extra });

describe("ProductCache", () => {
	it("keeps an answer as the JSON bytes of the product, with a strong ETag of those bytes", () => {
		const cache = new ProductCache(limits);
		const stored = cache.store(product("a"), cache.epoch);
		expect(stored.body).toBe(JSON.stringify(product("a")));
		expect(stored.bytes).toBe(Buffer.byteLength(stored.body));
		expect(stored.etag).toMatch(/^"[\w-]{27}"$/);
		expect(cache.lookup("a")).toBe(stored);
		// The same bytes get the same ETag on any gateway; other bytes another.
		expect(new ProductCache(limits).store(product("a"), 0).etag).toBe(stored.etag);
		expect(strongETag(JSON.stringify(product("a", { stock: 9 })))).not.toBe(stored.etag);
		expect(cache.stats()).toMatchObject({ hits: 1, misses: 0, entries: 1 });
		expect(cache.lookup("b")).toBeUndefined();
		expect(cache.stats()).toMatchObject({ hits: 1, misses: 1 });
	});

	it("counts multi-byte characters in bytes (Content-Length), not UTF-16 units", () => {
		const stored = new ProductCache(limits).store(product("a", { name: "Café 🙂" }), 0);
		expect(stored.bytes).toBe(Buffer.from(stored.body).length);
		expect(stored.bytes).toBeGreaterThan(stored.body.length);
	});

	it("keeps at most `max` entries, the most recently used", () => {
		const cache = new ProductCache(limits);
		for (let i = 0; i < 3 * limits.max; i++) cache.store(product(`p${i}`), cache.epoch);
		expect(cache.stats().entries).toBe(limits.max);
		expect(cache.lookup(`p${3 * limits.max - 1}`)).toBeDefined();
		expect(cache.lookup("p0")).toBeUndefined();
	});

	it("keeps at most `maxBytes`, however few the entries", () => {
		const cache = new ProductCache(limits);
		for (let i = 0; i < 20; i++) cache.store(product(`p${i}`, { description: "x".repeat(4000) }), cache.epoch);
		const { entries, bytes } = cache.stats();
		expect(bytes).toBeLessThanOrEqual(limits.maxBytes);
		expect(entries).toBe(4);
	});

	it("drops an entry at its TTL even when it is read all along", async () => {
		// Reads over the first quarter of a 2 s TTL, with room to spare on a loaded machine.
		const cache = new ProductCache({ ...limits, ttlMs: 2_000 });
		const storedAt = Date.now();
		cache.store(product("a"), cache.epoch);
		for (let i = 0; i < 5; i++) {
			await sleep(100);
			expect(cache.lookup("a")).toBeDefined();
		}
		await sleep(storedAt + 2_100 - Date.now());
		expect(cache.lookup("a")).toBeUndefined();
	});

	it("drops the products named, and only those", () => {
		const cache = new ProductCache(limits);
		for (const id of ["a", "b", "c"]) cache.store(product(id), cache.epoch);
		cache.drop(["a", "c"]);
		expect([cache.lookup("a"), cache.lookup("b"), cache.lookup("c")].map(Boolean)).toEqual([false, true, false]);
		cache.clear();
		expect(cache.stats().entries).toBe(0);
	});

	it("does not keep an answer whose call began before a drop (a read that raced an order)", () => {
		const cache = new ProductCache(limits);
		const epoch = cache.epoch;
		cache.drop(["other"]);
		const served = cache.store(product("a", { stock: 10 }), epoch);
		expect(served.body).toContain('"stock":10');
		expect(cache.lookup("a")).toBeUndefined();
	});

	it("does not keep answers for a product dropped less than `settleMs` ago, then keeps them again", async () => {
		const cache = new ProductCache(limits);
		cache.drop(["a"]);
		cache.store(product("a"), cache.epoch);
		cache.store(product("b"), cache.epoch);
		expect(cache.lookup("a")).toBeUndefined();
		expect(cache.lookup("b")).toBeDefined();
		await sleep(limits.settleMs + 50);
		cache.store(product("a"), cache.epoch);
		expect(cache.lookup("a")).toBeDefined();
	});

	it("remembers at most `max` recent drops", () => {
		const cache = new ProductCache({ ...limits, settleMs: 60_000 });
		for (let i = 0; i < 10 * limits.max; i++) cache.drop([`p${i}`]);
		expect((cache as unknown as { droppedAt: Map<string, number> }).droppedAt.size).toBeLessThanOrEqual(limits.max);
	});
});

describe("matchesIfNoneMatch", () => {
	const etag = '"abc"';
	it.each([
		[etag, true],
		[`W/${etag}`, true],
		[`"x", ${etag}`, true],
		[`"x",${etag} , "y"`, true],
		["*", true],
		['"abcd"', false],
		['"ab"', false],
		["abc", false],
		["", false],
		[undefined, false]
	])("If-None-Match %p matches: %p", (header, expected) => {
		expect(matchesIfNoneMatch(header, etag)).toBe(expected);
	});
});
