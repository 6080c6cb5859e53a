/**
 * lib/cacher.ts: the node's cache is bounded in entries and in bytes, its entries die at their TTL
 * even when read, and its keys are made of the params as the action's validator hands them over.
 */
import { ServiceBroker, type Context } from "moleculer";
import { BoundedCacher, entrySize, validatedKeygen } from "../../lib/cacher";
import { sleep } from "./helpers";

const limits = { max: 50, maxBytes: 20_000, ttl: 30, maxParamsLength: 60 };

describe("BoundedCacher", () => {
	let broker: ServiceBroker;
	let cacher: BoundedCacher;

	beforeEach(async () => {
		cacher = new BoundedCacher(limits);
		broker = new ServiceBroker({ logger: false, transporter: null, cacher });
		await broker.start();
	});
	afterEach(async () => {
		await broker.stop();
	});

	it("keeps at most `max` entries, the most recently used", async () => {
		for (let i = 0; i < 3 * limits.max; i++) await cacher.set(`k${i}`, { i });
		expect(cacher.usage().entries).toBe(limits.max);
		expect(await cacher.get(`k${3 * limits.max - 1}`)).toEqual({ i: 3 * limits.max - 1 });
		expect(await cacher.get("k0")).toBeUndefined();
	});

	it("keeps at most `maxBytes` of JSON, however few the entries", async () => {
		const page = { rows: Array.from({ length: 20 }, (_, i) => ({ id: i, description: "x".repeat(200) })) };
		expect(entrySize(page)).toBeGreaterThan(4000);
		for (let i = 0; i < 20; i++) await cacher.set(`page${i}`, page);
		const { entries, bytes } = cacher.usage();
		expect(bytes).toBeLessThanOrEqual(limits.maxBytes);
		expect(entries).toBe(Math.floor(limits.maxBytes / entrySize(page)));
	});

	it("drops an entry at its TTL even when it is read all along", async () => {
		await cacher.set("hot", { v: 1 }, 1);
		for (let waited = 0; waited < 700; waited += 100) {
			expect(await cacher.get("hot")).toEqual({ v: 1 });
			await sleep(100);
		}
		await sleep(500);
		expect(await cacher.get("hot")).toBeUndefined();
	});
});

describe("validatedKeygen", () => {
	let broker: ServiceBroker;
	let calls: unknown[];

	beforeEach(async () => {
		calls = [];
		broker = new ServiceBroker({ logger: false, transporter: null, cacher: new BoundedCacher({ ...limits, keygen: validatedKeygen() }) });
		broker.createService({
			name: "catalogue",
			actions: {
				list: {
					cache: { keys: ["page", "search"] },
					params: {
						page: { type: "number", integer: true, min: 1, convert: true, default: 1 },
						search: { type: "string", trim: true, optional: true }
					},
					handler(ctx: Context<{ page: number; search?: string }>) {
						calls.push(ctx.params);
						return { page: ctx.params.page, search: ctx.params.search ?? null };
					}
				},
				filter: {
					cache: { keys: ["where"] },
					params: { where: { type: "object", props: { page: { type: "number", integer: true, convert: true } } } },
					handler(ctx: Context<{ where: { page: number } }>) {
						calls.push(ctx.params);
						return { page: ctx.params.where.page };
					}
				}
			}
		});
		await broker.start();
	});
	afterEach(async () => {
		await broker.stop();
	});

	it("one entry for every spelling of the same params, as the validator converts them", async () => {
		for (const page of ["1", "01", "001", 1, "1.0", undefined]) {
			expect(await broker.call("catalogue.list", { page, search: "  mug " })).toEqual({ page: 1, search: "mug" });
		}
		expect(calls).toHaveLength(1);
		expect(await broker.call("catalogue.list", { page: "2", search: "mug" })).toEqual({ page: 2, search: "mug" });
		expect(calls).toHaveLength(2);
	});

	it("validates a copy: a cache hit leaves the caller's params as they were, flat or nested", async () => {
		await broker.call("catalogue.list", { page: "1" });
		await broker.call("catalogue.filter", { where: { page: "1" } });
		const flat = { page: "01", search: " mug" };
		const nested = { where: { page: "01" } };
		await broker.call("catalogue.list", { page: "1", search: "mug" });
		expect(await broker.call("catalogue.list", flat)).toEqual({ page: 1, search: "mug" });
		expect(await broker.call("catalogue.filter", nested)).toEqual({ page: 1 });
		expect(calls).toHaveLength(3);
		expect(flat).toEqual({ page: "01", search: " mug" });
		expect(nested).toEqual({ where: { page: "01" } });
	});

	it("params the validator refuses are refused as before, and leave nothing in the cache", async () => {
		const cacher = broker.cacher as BoundedCacher;
		await expect(broker.call("catalogue.list", { page: "abc" })).rejects.toMatchObject({ name: "ValidationError" });
		await expect(broker.call("catalogue.list", { page: "0" })).rejects.toMatchObject({ name: "ValidationError" });
		expect(calls).toHaveLength(0);
		expect(cacher.usage().entries).toBe(0);
	});
});
