/**
 * Chaos on purpose (lib/chaos.ts): the middleware on in-process brokers joined by Moleculer's Fake
 * transporter, a stub `payments.capture` on two nodes, and the switch broadcast as the REPL and the
 * admin action send it.
 */
import { Errors, ServiceBroker, type BrokerOptions } from "moleculer";
import { CHAOS_ERROR_TYPE, chaosMiddleware, chaosRule, parseDuration, switchChaos, type ChaosRequest, type NodeChaos } from "../../lib/chaos";
import { ConfigError, loadConfig } from "../../lib/config";
import { sleep, waitFor } from "./helpers";

const PRODUCTION = { NODE_ENV: "production", JWT_SECRET: "a-production-secret-0123" };

describe("CHAOS_ALLOWED", () => {
	it("allows chaos outside production, refuses it in production unless CHAOS_ALLOWED=true", () => {
		expect(loadConfig({}).chaosAllowed).toBe(true);
		expect(loadConfig({ NODE_ENV: "test" }).chaosAllowed).toBe(true);
		expect(loadConfig(PRODUCTION).chaosAllowed).toBe(false);
		expect(loadConfig({ ...PRODUCTION, CHAOS_ALLOWED: "true" }).chaosAllowed).toBe(true);
		expect(loadConfig({ CHAOS_ALLOWED: "false" }).chaosAllowed).toBe(false);
	});

	it("rejects a value that is not a boolean, naming the variable", () => {
		expect(() => loadConfig({ CHAOS_ALLOWED: "sometimes" })).toThrow(ConfigError);
		expect(() => loadConfig({ CHAOS_ALLOWED: "sometimes" })).toThrow(/^CHAOS_ALLOWED must be true or false/);
	});
});

describe("chaosRule", () => {
	it("reads durations as ms, s or m, and defaults to 30 s with seed 1 on every node", () => {
		expect(parseDuration("for", "2s")).toBe(2000);
		expect(parseDuration("for", "500ms")).toBe(500);
		expect(parseDuration("for", "1.5m")).toBe(90_000);
		expect(parseDuration("for", "250")).toBe(250);
		expect(chaosRule({ action: "payments.capture", errors: 1 })).toEqual({
			action: "payments.capture",
			nodes: [],
			errors: 1,
			timeouts: 0,
			latencyMs: 0,
			forMs: 30_000,
			seed: 1
		});
		expect(chaosRule({ action: "inventory.reserve", latency: "2s", node: "b,a,b", for: "10s", seed: 9 })).toMatchObject({
			latencyMs: 2000,
			nodes: ["a", "b"],
			forMs: 10_000,
			seed: 9
		});
	});

	it.each<[ChaosRequest, RegExp]>([
		[{ action: "payments.capture" }, /Name a fault/],
		[{ action: "payments.capture", errors: 1, for: "61m" }, /for must be between/],
		[{ action: "payments.capture", errors: 1, for: "soon" }, /for must be a duration/],
		[{ action: "payments.capture", latency: "5m" }, /latency must be at most/]
	])("refuses %j with a 422", (request, message) => {
		expect.assertions(3);
		try {
			chaosRule(request);
		} catch (err) {
			expect(err).toBeInstanceOf(Errors.MoleculerClientError);
			expect((err as Errors.MoleculerClientError).code).toBe(422);
			expect(JSON.stringify((err as Errors.MoleculerClientError).data)).toMatch(message);
		}
	});
});

describe("the chaos middleware", () => {
	const brokers: ServiceBroker[] = [];
	let namespace = 0;

	/** A node of a Fake-transported cluster, with the shop's circuit breaker settings. */
	async function node(nodeID: string, options: { allowed?: boolean; capture?: boolean; ns: string; extra?: Partial<BrokerOptions> }): Promise<ServiceBroker> {
		const broker = new ServiceBroker({
			namespace: options.ns,
			nodeID,
			transporter: "Fake",
			logger: false,
			middlewares: [chaosMiddleware({ allowed: options.allowed ?? true })],
			retryPolicy: { enabled: false },
			...options.extra
		});
		if (options.capture) {
			broker.createService({
				name: "payments",
				actions: {
					capture: (): { node: string } => ({ node: broker.nodeID }),
					list: (): string => "listed"
				}
			});
		}
		await broker.start();
		brokers.push(broker);
		return broker;
	}

	/** Two payments nodes and a caller, all seeing each other. */
	async function cluster(extra: Partial<BrokerOptions> = {}, allowed = true) {
		const ns = `chaos-${process.pid}-${namespace++}`;
		const [p1, p2] = await Promise.all([node("payments-1", { ns, capture: true, allowed }), node("payments-2", { ns, capture: true, allowed })]);
		const caller = await node("orders-1", { ns, extra, allowed });
		await caller.waitForServices(["payments"]);
		await waitFor(() => caller.registry.getActionEndpoints("payments.capture")?.count() === 2, 5000, "both payments nodes");
		return { p1, p2, caller };
	}

	const rulesOn = (broker: ServiceBroker, nodeID: string) => broker.call<NodeChaos, object>("$chaos.rules", {}, { nodeID });
	const capture = (broker: ServiceBroker) => broker.call<{ node: string }, object>("payments.capture", {});
	const settled = (broker: ServiceBroker, times: number) => Promise.allSettled(Array.from({ length: times }, () => capture(broker)));

	afterEach(async () => {
		await Promise.all(brokers.splice(0).map(broker => broker.stop()));
	});

	it("fails every call of the chosen action on the chosen node with a retryable 503, and nothing else", async () => {
		const { caller } = await cluster();
		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", errors: 1, node: "payments-1", for: "10s" }) });
		await waitFor(async () => (await rulesOn(caller, "payments-1")).rules.length === 1, 2000, "the rule on payments-1");
		expect((await rulesOn(caller, "payments-2")).rules).toEqual([]);

		const results = await settled(caller, 10);
		const failed = results.filter(result => result.status === "rejected").map(result => (result as PromiseRejectedResult).reason);
		const served = results.filter(result => result.status === "fulfilled").map(result => (result as PromiseFulfilledResult<{ node: string }>).value.node);
		expect(failed).toHaveLength(5);
		expect(served).toEqual(Array(5).fill("payments-2"));
		for (const err of failed) {
			expect(err).toBeInstanceOf(Errors.MoleculerRetryableError);
			expect(err).toMatchObject({ code: 503, type: CHAOS_ERROR_TYPE, retryable: true, data: { action: "payments.capture", nodeID: "payments-1" } });
		}
		// Another action of the same service is untouched.
		expect(await Promise.all([1, 2, 3, 4].map(() => caller.call("payments.list")))).toEqual(Array(4).fill("listed"));
	});

	it("opens the caller's circuit breaker for that endpoint, so the balancer sends every call to the healthy node", async () => {
		const { caller } = await cluster({
			circuitBreaker: {
				enabled: true,
				threshold: 0.5,
				minRequestCount: 4,
				windowTime: 10,
				halfOpenTime: 5000,
				check: err => (err as { code?: number }).code! >= 500
			},
			metrics: { enabled: true, reporter: [] }
		});
		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", errors: 1, node: "payments-1" }) });
		await waitFor(async () => (await rulesOn(caller, "payments-1")).rules.length === 1, 2000, "the rule on payments-1");
		for (let i = 0; i < 8; i++) await capture(caller).catch(() => null);
		const open = caller.metrics
			.getMetric("moleculer.circuit-breaker.opened.active")!
			.get({ affectedNodeID: "payments-1", service: "payments", action: "payments.capture" });
		expect(open?.value).toBe(1);
		const after = await settled(caller, 10);
		expect(after.map(result => (result.status === "fulfilled" ? result.value.node : "failed"))).toEqual(Array(10).fill("payments-2"));
	});

	it("draws failures from the seed: the same seed fails the same calls, another seed others", async () => {
		const pattern = async (seed: number) => {
			const ns = `chaos-seed-${process.pid}-${namespace++}`;
			const broker = await node("payments-1", { ns, capture: true });
			await switchChaos(broker, { on: chaosRule({ action: "payments.capture", errors: 0.5, seed }) });
			await waitFor(async () => (await broker.call<NodeChaos>("$chaos.rules")).rules.length === 1, 2000, "the rule");
			const results = await settled(broker, 32);
			await broker.stop();
			return results.map(result => (result.status === "fulfilled" ? "." : "x")).join("");
		};
		const first = await pattern(7);
		expect(first).toMatch(/x/);
		expect(first).toMatch(/\./);
		expect(await pattern(7)).toBe(first);
		expect(await pattern(8)).not.toBe(first);
	});

	it("adds latency, and holds a 'timeout' past the caller's timeout", async () => {
		const { caller } = await cluster();
		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", latency: "300ms", for: "10s" }) });
		await waitFor(async () => (await rulesOn(caller, "payments-2")).rules.length === 1, 2000, "the rule");
		let started = Date.now();
		await capture(caller);
		expect(Date.now() - started).toBeGreaterThanOrEqual(290);

		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", timeouts: 1, for: "10s" }) });
		await sleep(100);
		started = Date.now();
		await expect(caller.call("payments.capture", {}, { timeout: 200 })).rejects.toBeInstanceOf(Errors.RequestTimeoutError);
		expect(Date.now() - started).toBeLessThan(1000);
	});

	it("ends a rule by itself when its time is up, and at once when switched off", async () => {
		const { caller } = await cluster();
		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", errors: 1, for: "400ms" }) });
		await waitFor(async () => (await rulesOn(caller, "payments-1")).rules.length === 1, 2000, "the rule");
		expect((await settled(caller, 4)).every(result => result.status === "rejected")).toBe(true);
		await sleep(600);
		for (const id of ["payments-1", "payments-2", "orders-1"]) expect((await rulesOn(caller, id)).rules).toEqual([]);
		expect((await settled(caller, 4)).every(result => result.status === "fulfilled")).toBe(true);

		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", errors: 1, for: "60s" }) });
		await waitFor(async () => (await rulesOn(caller, "payments-2")).rules.length === 1, 2000, "the rule");
		await switchChaos(caller, { off: {} });
		await waitFor(async () => (await rulesOn(caller, "payments-2")).rules.length === 0, 2000, "no rule");
		expect((await settled(caller, 4)).every(result => result.status === "fulfilled")).toBe(true);
	});

	it("is refused by a node that does not allow chaos (production without CHAOS_ALLOWED)", async () => {
		const { caller } = await cluster({}, false);
		await switchChaos(caller, { on: chaosRule({ action: "payments.capture", errors: 1 }) });
		await sleep(200);
		expect(await rulesOn(caller, "payments-1")).toEqual({ nodeID: "payments-1", allowed: false, rules: [] });
		expect((await settled(caller, 6)).every(result => result.status === "fulfilled")).toBe(true);
	});
});
