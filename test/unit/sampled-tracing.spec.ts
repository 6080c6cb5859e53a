/**
 * lib/tracing.ts on the shop's middlewares (lib/broker-middlewares.ts): spans are made for the
 * requests the tracer samples, on every node the request reaches, and for no other; the request log
 * context is set where a logger prints it, and costs nothing on a broker without one.
 */
import { ServiceBroker, type BrokerOptions, type Context } from "moleculer";
import { shopMiddlewares } from "../../lib/broker-middlewares";
import { RecentSpans, requestContext, shopTracing, spanIdHex, traceIdHex } from "../../lib/tracing";

interface Seen {
	requestID: string;
	tracing: boolean | null;
	logContext: string | undefined;
}

function tracedBroker(sampleRate: number, options: BrokerOptions = {}) {
	const tracing = shopTracing({ zipkinUrl: null, zipkinAuthorization: null, sampleRate });
	const broker = new ServiceBroker({
		logger: false,
		tracing: tracing.options,
		internalMiddlewares: false,
		middlewares: shopMiddlewares(tracing.middlewares),
		...options
	});
	// No exporter when the rate is 0 (Moleculer's tracer off).
	const recent = (broker.tracer as unknown as { exporter?: RecentSpans[] }).exporter?.[0] ?? new RecentSpans(1);
	return { broker, recent };
}

function front() {
	return {
		name: "front",
		actions: {
			go: (ctx: Context) => ctx.call("back.work")
		}
	};
}

function back(seen: Seen[]) {
	return {
		name: "back",
		actions: {
			work(ctx: Context) {
				seen.push({ requestID: ctx.requestID!, tracing: ctx.tracing as boolean | null, logContext: requestContext.getStore() });
				return "done";
			}
		}
	};
}

describe("spans for sampled requests only", () => {
	it("samples a request as Moleculer's tracer decides (every 2nd at 0.5) and spans all of its calls, none of the others'", async () => {
		const seen: Seen[] = [];
		const { broker, recent } = tracedBroker(0.5);
		broker.createService(front());
		broker.createService(back(seen));
		try {
			await broker.start();
			for (const id of ["r-1", "r-2", "r-3", "r-4"]) await broker.call("front.go", {}, { requestID: id });
		} finally {
			await broker.stop();
		}
		// The decision reached the nested call: two requests sampled, two not.
		expect(seen.map(s => [s.requestID, s.tracing])).toEqual([
			["r-1", false],
			["r-2", true],
			["r-3", false],
			["r-4", true]
		]);
		for (const id of ["r-1", "r-3"]) expect(recent.find({ traceIds: [traceIdHex(id)] })).toEqual([]);
		for (const id of ["r-2", "r-4"]) {
			const spans = recent.find({ traceIds: [traceIdHex(id)] });
			expect(spans.map(span => span.name).sort()).toEqual(["action 'back.work'", "action 'front.go'"]);
			const parent = spans.find(span => span.name.includes("front"))!;
			const child = spans.find(span => span.name.includes("back"))!;
			expect(child.parentId).toBe(parent.id);
			expect(parent.parentId).toBeNull();
			expect(parent.id).toMatch(/^[0-9a-f]{16}$/);
			expect(parent.traceId).toBe(traceIdHex(id));
		}
	});

	it("takes the caller's decision on another node: spans there for a sampled request, none for another", async () => {
		const seen: Seen[] = [];
		const a = tracedBroker(0.5, { nodeID: "trace-a", transporter: "Fake" });
		const b = tracedBroker(0.5, { nodeID: "trace-b", transporter: "Fake" });
		a.broker.createService(front());
		b.broker.createService(back(seen));
		try {
			await Promise.all([a.broker.start(), b.broker.start()]);
			await a.broker.waitForServices("back");
			for (const id of ["x-1", "x-2", "x-3", "x-4"]) await a.broker.call("front.go", {}, { requestID: id });
		} finally {
			await Promise.all([a.broker.stop(), b.broker.stop()]);
		}
		expect(seen.map(s => s.tracing)).toEqual([false, true, false, true]);
		const onB = (id: string) => b.recent.find({ traceIds: [traceIdHex(id)] });
		expect(onB("x-1")).toEqual([]);
		expect(onB("x-3")).toEqual([]);
		const [child] = onB("x-2");
		expect(child).toMatchObject({ name: "action 'back.work'", nodeID: "trace-b" });
		const [parent] = a.recent.find({ traceIds: [traceIdHex("x-2")] });
		expect(child.parentId).toBe(parent.id);
		expect(spanIdHex(parent.id)).toBe(parent.id);
	});

	it("spans every call at rate 1, and none at rate 0 (Moleculer's tracer off)", async () => {
		for (const [rate, expected] of [
			[1, 2],
			[0, 0]
		]) {
			const seen: Seen[] = [];
			const { broker, recent } = tracedBroker(rate);
			const finished: string[] = [];
			recent.spanFinished = span => void finished.push(span.name);
			broker.createService(front());
			broker.createService(back(seen));
			try {
				await broker.start();
				await broker.call("front.go");
			} finally {
				await broker.stop();
			}
			expect(finished).toHaveLength(expected);
		}
	});
});

describe("the request log context", () => {
	it("is set for the handlers of a broker with a logger, on every call of the request", async () => {
		const seen: Seen[] = [];
		const { broker } = tracedBroker(0, { logger: { type: "Console", options: { level: "error" } } });
		broker.createService(front());
		broker.createService(back(seen));
		try {
			await broker.start();
			await broker.call("front.go", {}, { requestID: "logged-1" });
		} finally {
			await broker.stop();
		}
		expect(seen[0].logContext).toBe("logged-1");
	});

	it("is not made on a broker without a logger (no line to print it in)", async () => {
		const seen: Seen[] = [];
		const { broker } = tracedBroker(0);
		broker.createService(front());
		broker.createService(back(seen));
		try {
			await broker.start();
			await broker.call("front.go", {}, { requestID: "silent-1" });
		} finally {
			await broker.stop();
		}
		expect(seen[0].logContext).toBeUndefined();
	});
});
