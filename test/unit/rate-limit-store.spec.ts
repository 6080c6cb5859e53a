/**
 * The gateway's per-address limits on login and register (services/api/rate-limit-store.ts), taken
 * from the routes as moleculer-web builds them: a sliding window per client address, bounded memory.
 */
import type { ApiRouteSchema } from "moleculer-web";
import ApiService from "../../services/api/api.service";
import { SlidingWindowStore } from "../../services/api/rate-limit-store";

interface LimitStore {
	inc(key: string): number | Promise<number>;
	resetTime: number;
}
type StoreClass = new (window: number, opts: unknown, broker?: unknown) => LimitStore;
interface RouteLimit {
	window: number;
	limit: number;
	StoreFactory?: StoreClass;
}

/** The route's store as moleculer-web instantiates it (its own MemoryStore when no StoreFactory is given). */
function storeOf(routeName: string): { store: LimitStore; limit: number; window: number } {
	const routes = (ApiService.settings as { routes: Array<ApiRouteSchema & { name?: string; rateLimit?: RouteLimit }> }).routes;
	const route = routes.find(r => r.name === routeName);
	if (!route?.rateLimit) throw new Error(`no rate-limited route named ${routeName}`);
	const { window = 60_000, limit, StoreFactory } = route.rateLimit;
	// eslint-disable-next-line @typescript-eslint/no-require-imports -- moleculer-web's default store, as it falls back to it
	const Store: StoreClass = StoreFactory ?? (require("moleculer-web/src/memory-store") as StoreClass);
	return { store: new Store(window, route.rateLimit), limit, window };
}

const count = async (store: LimitStore, key: string) => await store.inc(key);

describe("rate limits of login and register", () => {
	beforeEach(() => jest.useFakeTimers({ now: new Date("2030-01-01T00:00:00Z") }));
	afterEach(() => jest.useRealTimers());

	it.each(["login", "register"])("%s: at most the limit in ANY window, also across the minute's boundary", async name => {
		const { store, limit, window } = storeOf(name);
		jest.advanceTimersByTime(window - 1000);
		for (let i = 1; i <= limit; i++) expect(await count(store, "198.51.100.1")).toBe(i);
		expect(await count(store, "198.51.100.1")).toBeGreaterThan(limit);
		// Two seconds later: a fixed window would have reset every counter here.
		jest.advanceTimersByTime(2000);
		for (let i = 0; i < limit; i++) expect(await count(store, "198.51.100.1")).toBeGreaterThan(limit);
		// Other addresses have their own count.
		expect(await count(store, "198.51.100.2")).toBe(1);
		// Once the first hits are a window old, the address may try again.
		jest.advanceTimersByTime(window);
		expect(await count(store, "198.51.100.1")).toBe(1);
	});

	it("register's limit is its own (REGISTER_RATE_LIMIT, 10 by default), counted apart from login's", async () => {
		const login = storeOf("login");
		const register = storeOf("register");
		expect(register.limit).toBe(Number(process.env.REGISTER_RATE_LIMIT || 10));
		expect(register.window).toBe(60_000);
		for (let i = 0; i < register.limit; i++) await count(register.store, "203.0.113.9");
		expect(await count(login.store, "203.0.113.9")).toBe(1);
	});

	it("forgets addresses whose hits are older than the window (memory stays bounded)", async () => {
		const { store, window } = storeOf("login");
		const sized = store as LimitStore & { size: number };
		for (let i = 0; i < 5000; i++) await count(store, `10.0.${i >> 8}.${i & 255}`);
		expect(sized.size).toBe(5000);
		jest.advanceTimersByTime(window * 2 + 1);
		await count(store, "10.9.9.9");
		expect(sized.size).toBe(1);
	});

	it("past maxKeys live addresses, forgets the least recently seen one", () => {
		const store = new SlidingWindowStore(60_000, { limit: 2, maxKeys: 3 });
		for (const key of ["a", "b", "c"]) store.inc(key);
		store.inc("a"); // a is now the most recently seen
		store.inc("d");
		expect(store.size).toBe(3);
		// b was forgotten (a fresh count), a was kept (its second hit, then refused).
		expect(store.inc("b")).toBe(1);
		expect(store.inc("a")).toBe(3);
		expect(store.retryAfterSeconds("a")).toBe(60);
		store.close();
	});
});
