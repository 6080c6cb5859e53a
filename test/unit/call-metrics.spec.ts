/**
 * lib/call-metrics.ts (with lib/broker-middlewares.ts): the per-action, per-node request metrics
 * operators read — the back office's cluster view (lib/cluster-view.ts, through `$node.metrics`) and
 * the Prometheus endpoint — are what Moleculer's own Metrics middleware records: same names, labels
 * and counts, errors counted, latency in the histogram; remote calls counted on the caller.
 */
import { Errors, ServiceBroker, type BrokerOptions, type Context } from "moleculer";
import { shopMiddlewares } from "../../lib/broker-middlewares";
import { clusterView } from "../../lib/cluster-view";
import { freePort } from "../support/shop";
import { sleep } from "./helpers";

interface MetricValue {
	labels: Record<string, unknown>;
	value?: number;
	count?: number;
	sum?: number;
	buckets?: Record<string, number>;
	quantiles?: Record<string, number>;
}
interface Metric {
	name: string;
	values: MetricValue[];
}

const REQUEST_METRICS = [
	"moleculer.request.total",
	"moleculer.request.active",
	"moleculer.request.error.total",
	"moleculer.request.time",
	"moleculer.request.levels"
];

/** A broker with the shop's middlewares (`internalMiddlewares: false`), or with Moleculer's own. */
function broker(shop: boolean, options: BrokerOptions = {}): ServiceBroker {
	return new ServiceBroker({
		logger: false,
		metrics: { enabled: true, reporter: [] },
		...(shop ? { internalMiddlewares: false, middlewares: shopMiddlewares([]) } : {}),
		...options
	});
}

function services(b: ServiceBroker) {
	b.createService({
		name: "greeter",
		actions: {
			hello: { params: { name: "string" }, handler: (ctx: Context<{ name: string }>) => `Hello ${ctx.params.name}` },
			slow: async () => {
				await sleep(30);
				return "late";
			},
			fail: () => {
				throw new Errors.MoleculerError("Broken", 500, "BROKEN");
			}
		}
	});
	b.createService({
		name: "front",
		actions: {
			// A second caller of greeter.hello, and a call one level deeper.
			twice: async (ctx: Context) => [await ctx.call("greeter.hello", { name: "a" }), await ctx.call("greeter.hello", { name: "b" })]
		}
	});
}

/** The calls every test makes: 3 hello from outside, 2 from front, 1 slow, 2 failures (one a validation error). */
async function traffic(b: ServiceBroker) {
	for (const name of ["x", "y", "z"]) await b.call("greeter.hello", { name });
	await b.call("front.twice");
	await b.call("greeter.slow");
	await expect(b.call("greeter.fail")).rejects.toThrow("Broken");
	await expect(b.call("greeter.hello", { name: 42 })).rejects.toThrow(Errors.ValidationError);
}

const metricsOf = (b: ServiceBroker) => b.call<Metric[], object>("$node.metrics", { includes: REQUEST_METRICS });

/** A metric's values as label set → figure, internal `$node` calls left out, for comparison. */
function figures(metrics: Metric[], name: string, figure: (value: MetricValue) => unknown): Record<string, unknown> {
	const metric = metrics.find(m => m.name === name)!;
	const out: Record<string, unknown> = {};
	for (const value of metric.values) {
		if (String(value.labels.action ?? "").startsWith("$")) continue;
		out[JSON.stringify(value.labels)] = figure(value);
	}
	return out;
}

describe("request metrics with labels bound per action", () => {
	let shop: ServiceBroker;
	let moleculer: ServiceBroker;

	beforeAll(async () => {
		shop = broker(true, { nodeID: "shop-node" });
		moleculer = broker(false, { nodeID: "moleculer-node" });
		for (const b of [shop, moleculer]) {
			services(b);
			await b.start();
			await traffic(b);
		}
	});
	afterAll(async () => {
		await Promise.all([shop.stop(), moleculer.stop()]);
	});

	it("count what Moleculer's own middleware counts: requests, active, errors and levels, per action, caller and type", async () => {
		const [ours, theirs] = await Promise.all([metricsOf(shop), metricsOf(moleculer)]);
		for (const name of ["moleculer.request.total", "moleculer.request.active", "moleculer.request.error.total", "moleculer.request.levels"]) {
			expect(figures(ours, name, value => value.value)).toEqual(figures(theirs, name, value => value.value));
		}
		expect(figures(ours, "moleculer.request.time", value => value.count)).toEqual(figures(theirs, "moleculer.request.time", value => value.count));

		// And the figures themselves, not only their equality to Moleculer's.
		const total = figures(ours, "moleculer.request.total", value => value.value);
		expect(total[JSON.stringify({ service: "greeter", action: "greeter.hello", type: "local", caller: null })]).toBe(4);
		expect(total[JSON.stringify({ service: "greeter", action: "greeter.hello", type: "local", caller: "front" })]).toBe(2);
		const errors = figures(ours, "moleculer.request.error.total", value => value.value);
		expect(errors).toEqual({
			[JSON.stringify({
				service: "greeter",
				action: "greeter.fail",
				type: "local",
				caller: null,
				errorName: "MoleculerError",
				errorCode: 500,
				errorType: "BROKEN"
			})]: 1,
			[JSON.stringify({
				service: "greeter",
				action: "greeter.hello",
				type: "local",
				caller: null,
				errorName: "ValidationError",
				errorCode: 422,
				errorType: "VALIDATION_ERROR"
			})]: 1
		});
		const active = figures(ours, "moleculer.request.active", value => value.value);
		expect(Object.values(active).every(value => value === 0)).toBe(true);
		const levels = figures(ours, "moleculer.request.levels", value => value.value);
		expect(levels[JSON.stringify({ level: 2 })]).toBe(2);
	});

	it("record each action's latency in Moleculer's histogram: buckets, sum, count and quantiles", async () => {
		const ours = await metricsOf(shop);
		const time = figures(ours, "moleculer.request.time", value => value);
		const slow = time[JSON.stringify({ service: "greeter", action: "greeter.slow", type: "local", caller: null })] as MetricValue;
		expect(slow.count).toBe(1);
		expect(slow.sum).toBeGreaterThanOrEqual(25);
		// Cumulative, as Moleculer's: its one duration (the sum) counts in every bucket whose bound is at or above it.
		for (const [bound, count] of Object.entries(slow.buckets!)) expect([bound, count]).toEqual([bound, slow.sum! <= Number(bound) ? 1 : 0]);
		expect(slow.buckets!["25"]).toBe(0);
		expect(slow.quantiles!["0.5"]).toBeGreaterThanOrEqual(25);
		const hello = time[JSON.stringify({ service: "greeter", action: "greeter.hello", type: "local", caller: null })] as MetricValue;
		expect(hello.count).toBe(4);
		expect(hello.buckets!["10000"]).toBe(4);

		// Calls after a snapshot are in the next one.
		await shop.call("greeter.hello", { name: "w" });
		const again = figures(await metricsOf(shop), "moleculer.request.time", value => value);
		const helloAgain = again[JSON.stringify({ service: "greeter", action: "greeter.hello", type: "local", caller: null })] as MetricValue;
		expect(helloAgain.count).toBe(5);
		expect(helloAgain.buckets!["10000"]).toBe(5);
	});

	it("give the back office's cluster view its per-node, per-action requests and errors", async () => {
		const view = await clusterView(shop);
		const node = view.nodes.find(n => n.id === "shop-node")!;
		// 3 + 2 + 1 (and 1 more from the test above) hello, front.twice, slow, fail: every local request of the node's own services.
		expect(node.actions["greeter.hello"]).toBeGreaterThanOrEqual(6);
		expect(node.actions["front.twice"]).toBe(1);
		expect(node.actions["greeter.fail"]).toBe(1);
		expect(node.errors).toBe(2);
		expect(node.requests).toBe(Object.values(node.actions).reduce((a, b) => a + b, 0));
	});
});

describe("request metrics across nodes", () => {
	it("are counted on the caller as remote calls and on the node that runs them as local ones", async () => {
		const caller = broker(true, { nodeID: "caller", transporter: "Fake" });
		const callee = broker(true, { nodeID: "callee", transporter: "Fake" });
		services(callee);
		try {
			await Promise.all([caller.start(), callee.start()]);
			await caller.waitForServices("greeter");
			for (const name of ["a", "b"]) await caller.call("greeter.hello", { name });
			await expect(caller.call("greeter.fail")).rejects.toThrow("Broken");

			const remote = figures(await metricsOf(caller), "moleculer.request.total", value => value.value);
			expect(remote[JSON.stringify({ service: "greeter", action: "greeter.hello", type: "remote", caller: null })]).toBe(2);
			const local = figures(await metricsOf(callee), "moleculer.request.total", value => value.value);
			expect(local[JSON.stringify({ service: "greeter", action: "greeter.hello", type: "local", caller: null })]).toBe(2);
			const errors = figures(await metricsOf(caller), "moleculer.request.error.total", value => value.value);
			expect(Object.entries(errors)).toEqual([[expect.stringContaining('"type":"remote"'), 1]]);

			// The cluster view, from the caller: the callee's own counts, read over the bus.
			const view = await clusterView(caller);
			const node = view.nodes.find(n => n.id === "callee")!;
			expect(node.actions).toEqual({ "greeter.hello": 2, "greeter.fail": 1 });
			expect(node.errors).toBe(1);
		} finally {
			await Promise.all([caller.stop(), callee.stop()]);
		}
	});
});

describe("the Prometheus endpoint", () => {
	it("serves the request counts and latency histogram per action", async () => {
		const port = await freePort();
		const b = broker(true, { metrics: { enabled: true, reporter: [{ type: "Prometheus", options: { host: "127.0.0.1", port, path: "/metrics" } }] } });
		services(b);
		try {
			await b.start();
			await traffic(b);
			const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
			expect(text).toMatch(/\nmoleculer_request_total\{[^}]*,service="greeter",action="greeter\.hello",type="local",caller="front"\} 2\n/);
			expect(text).toMatch(/\nmoleculer_request_error_total\{[^}]*,action="greeter\.fail",type="local",caller="null",errorName="MoleculerError",[^}]*\} 1\n/);
			expect(text).toMatch(/\nmoleculer_request_time_bucket\{[^}]*,action="greeter\.slow",type="local",caller="null",le="25"\} 0\n/);
			expect(text).toMatch(/\nmoleculer_request_time_bucket\{[^}]*,action="greeter\.slow",type="local",caller="null",le="10000"\} 1\n/);
			expect(text).toMatch(/\nmoleculer_request_time_count\{[^}]*,action="greeter\.hello",type="local",caller="null"\} 4\n/);
			expect(text).toMatch(/\nmoleculer_request_time\{[^}]*,action="greeter\.slow",type="local",caller="null",quantile="0\.5"\} (2[5-9]|[3-9]\d|\d{3,})/);
		} finally {
			await b.stop();
		}
	});
});
