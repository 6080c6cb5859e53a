/**
 * Memory any client can fill: the catalogue cache is keyed on validated, normalised params
 * (`page=01` is `page=1`, a search's surrounding spaces and ASCII case do not make a new entry) and
 * bounded (an LRU with a maximum in entries and in bytes), so thousands of spellings and of
 * genuinely distinct searches keep the shop's RSS within a stated bound, and every answer is right.
 *
 * The shop runs in a fixed heap (a 128 MB old space, as a container's memory limit would impose):
 * before the fix this flood exhausted it ("JavaScript heap out of memory"; without the cap, RSS grew
 * by 315 MB and stayed there). V8 keeps the heap it has grown, so RSS measured without a cap mostly
 * shows how fast garbage was made, not what is kept.
 */
import { readFileSync } from "node:fs";
import { CACHE_LIMITS } from "../../lib/cacher";
import { client, metricSum, startShop, type ShopProcess } from "../support/shop";
import { ADMIN_ENV, adminToken, createProduct, mapLimit, type Client } from "./helpers";

/** What the flood may add to the shop's RSS (README, "### Memory"); measured: about 35 MB. */
const RSS_GROWTH_BOUND_MB = 64;
const HEAP_CAP = "--max-old-space-size=128";
const PRODUCTS = 100;
/** Every product's name has it, so each of its substrings finds all of them: a full page of 100 per distinct search. */
const COMMON = "zyxwv quokka vermilion tessellate marmalade obsidian kerfuffle lantern jubilant ibex hazelnut gossamer";
const DESCRIPTION = "A product described at some length, as catalogues do. ".repeat(11);
const SPELLINGS = 1000;
const DISTINCT_SEARCHES = 1500;

function rssMb(pid: number): number {
	const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
	if (!match) throw new Error(`no VmRSS for pid ${pid}`);
	return Number(match[1]) / 1024;
}

const cacheSets = (shop: ShopProcess) => metricSum(shop.metricsPort, "moleculer_cacher_set_total");

/** `text` with its ASCII letters' case flipped by the bits of `n`. */
function caseVariant(text: string, n: number): string {
	let bit = 0;
	return [...text].map(ch => (/[a-z]/.test(ch) && (n >> bit++) & 1 ? ch.toUpperCase() : ch)).join("");
}

describe("memory", () => {
	let shop: ShopProcess;
	let api: Client;
	let ids: string[];

	beforeAll(async () => {
		shop = await startShop({ env: { ...ADMIN_ENV, SEED_DEMO: "false", NODE_OPTIONS: HEAP_CAP } });
		api = client(shop.baseUrl);
		const admin = await adminToken(api);
		const products = await mapLimit(Array.from({ length: PRODUCTS }), 4, (_, i) =>
			createProduct(api, admin, { name: `${COMMON} ${i}`, description: DESCRIPTION, stock: 5 })
		);
		ids = products.map(product => product.id).sort();
	});
	afterAll(async () => {
		await shop?.stop();
	});

	/** Fails unless the answer is the full page of the 100 products. */
	async function expectFullPage(query: string): Promise<void> {
		const res = await api.get(`/api/products?${query}`).catch((err: Error) => {
			throw new Error(`GET /api/products?${query} failed (${err.message}); the shop (exit ${shop.child.exitCode}) printed:\n${shop.output().slice(-1500)}`);
		});
		const got = { status: res.status, total: res.body?.total, page: res.body?.page, pageSize: res.body?.pageSize };
		expect({ query, ...got }).toEqual({ query, status: 200, total: PRODUCTS, page: 1, pageSize: 100 });
		expect((res.body.rows as Array<{ id: string }>).map(row => row.id).sort()).toEqual(ids);
	}

	it(`${SPELLINGS} spellings of one query and ${DISTINCT_SEARCHES} distinct searches: the answers stay right, RSS grows less than ${RSS_GROWTH_BOUND_MB} MB`, async () => {
		// Warm up: the code paths, and the one entry every spelling below means.
		for (let i = 0; i < 50; i++) await expectFullPage("page=1&pageSize=100&search=quokka");
		const before = rssMb(shop.child.pid!);
		const setsBefore = await cacheSets(shop);

		// Spellings of one query: zeros before the numbers, spaces around the search, its letters' case.
		const spellings = Array.from({ length: SPELLINGS }, (_, i) => {
			const zeros = "0".repeat(i % 200);
			const pad = (n: number) => "%20".repeat(n);
			return `page=${zeros}1&pageSize=${zeros}100&search=${pad(i % 7)}${caseVariant("quokka", i)}${pad((i >> 3) % 5)}`;
		});
		await mapLimit(spellings, 8, query => expectFullPage(query));
		const setsBySpellings = (await cacheSets(shop)) - setsBefore;

		// Genuinely distinct searches, each a full page: only the cache's bound limits these.
		const substrings = new Set<string>();
		for (let length = 3; substrings.size < DISTINCT_SEARCHES; length++) {
			for (let start = 0; start + length <= COMMON.length && substrings.size < DISTINCT_SEARCHES; start++) {
				const piece = COMMON.slice(start, start + length);
				if (piece.trim() === piece) substrings.add(piece);
			}
		}
		const distinct = [...substrings];
		await mapLimit(distinct, 8, search => expectFullPage(`page=1&pageSize=100&search=${encodeURIComponent(search)}`));

		const after = rssMb(shop.child.pid!);
		const growth = after - before;
		const measured = `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MB (+${growth.toFixed(0)} MB); cache writes for ${SPELLINGS} spellings of one query: ${setsBySpellings}; ${distinct.length} distinct searches`;
		// Every spelling is the query already cached: not one new entry.
		expect({ measured, setsBySpellings }).toEqual({ measured, setsBySpellings: 0 });
		expect({ measured, withinBound: growth < RSS_GROWTH_BOUND_MB }).toEqual({ measured, withinBound: true });

		// The cache itself stays within its limits (lib/cacher.ts), and is in use.
		const entries = await metricSum(shop.metricsPort, "shop_cacher_entries");
		const bytes = await metricSum(shop.metricsPort, "shop_cacher_bytes");
		expect(entries).toBeGreaterThan(0);
		expect(entries).toBeLessThanOrEqual(CACHE_LIMITS.max);
		expect(bytes).toBeGreaterThan(0);
		expect(bytes).toBeLessThanOrEqual(CACHE_LIMITS.maxBytes);

		// Still the right answers afterwards, from the cache or not.
		await expectFullPage("page=1&pageSize=100&search=QUOKKA");
		await expectFullPage(`page=1&pageSize=100&search=${encodeURIComponent(distinct[0])}`);
	});
});
