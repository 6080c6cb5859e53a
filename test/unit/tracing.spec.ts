/**
 * lib/tracing.ts and the tracing block of lib/config.ts: W3C traceparent parsing, the id forms, the
 * span tags' allow-list (with Moleculer's real tracer), the request id in log lines of two nodes
 * (brokers on the Fake transporter), and TRACING_* validation.
 */
import { ServiceBroker, type Context } from "moleculer";
import { ConfigError, DEFAULT_TRACING_SAMPLE_RATE, loadConfig } from "../../lib/config";
import { parseTraceparent, RecentSpans, RequestLogContext, requestContext, shopTracing, spanIdHex, traceIdHex, traceLogFormatter } from "../../lib/tracing";
import { SERVICE_NAMES, SERVICES_DIR } from "../../lib/config";
import path from "node:path";

describe("traceparent", () => {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
	const parent = "00f067aa0ba902b7";

	it("reads a valid header, with its sampled flag", () => {
		expect(parseTraceparent(`00-${trace}-${parent}-01`)).toEqual({ traceId: trace, parentId: parent, sampled: true });
		expect(parseTraceparent(`00-${trace}-${parent}-00`)).toEqual({ traceId: trace, parentId: parent, sampled: false });
		// A later version may add fields.
		expect(parseTraceparent(`01-${trace}-${parent}-03-extra`)).toEqual({ traceId: trace, parentId: parent, sampled: true });
	});

	it.each([
		["absent", undefined],
		["two headers", [`00-${trace}-${parent}-01`, `00-${trace}-${parent}-01`]],
		["upper-case hex", `00-${trace.toUpperCase()}-${parent}-01`],
		["all-zero trace id", `00-${"0".repeat(32)}-${parent}-01`],
		["all-zero parent id", `00-${trace}-${"0".repeat(16)}-01`],
		["version ff", `ff-${trace}-${parent}-01`],
		["version 00 with a fifth field", `00-${trace}-${parent}-01-x`],
		["short trace id", `00-${trace.slice(2)}-${parent}-01`],
		["garbage", "hello"]
	])("ignores an invalid one (%s)", (_what, header) => {
		expect(parseTraceparent(header)).toBeNull();
	});

	it("writes ids as W3C/Zipkin hex: 32 for a trace, 16 for a span", () => {
		expect(traceIdHex(trace)).toBe(trace);
		expect(traceIdHex("4bf92f35-77b3-4da6-a3ce-929d0e0e4736")).toBe(trace);
		expect(traceIdHex("order-42")).toMatch(/^[0-9a-f]{32}$/);
		expect(traceIdHex("order-42")).toBe(traceIdHex("order-42"));
		expect(spanIdHex("4bf92f35-77b3-4da6-a3ce-929d0e0e4736")).toBe("4bf92f3577b34da6");
		expect(spanIdHex(parent)).toBe(parent);
	});
});

describe("spans", () => {
	let broker: ServiceBroker;
	let recent: RecentSpans;

	beforeAll(async () => {
		const tracing = shopTracing({ zipkinUrl: null, zipkinAuthorization: null, sampleRate: 1 });
		broker = new ServiceBroker({ logger: false, tracing: tracing.options, middlewares: tracing.middlewares });
		recent = (broker.tracer as unknown as { exporter: RecentSpans[] }).exporter[0];
		broker.createService({
			name: "orders",
			actions: {
				create: (ctx: Context<{ payment: { card: string } }>) =>
					ctx.call("payments.capture", { orderId: "o-1", card: ctx.params.payment.card }).then(() => ({ id: "o-1" }))
			}
		});
		broker.createService({ name: "payments", actions: { capture: () => ({ ok: true }) } });
		broker.createService({ name: "users", actions: { login: () => ({ token: "eyJsecret-token" }) } });
		await broker.start();
	});
	afterAll(() => broker.stop());

	it("carry the allow-listed params and the order id, never a card number, password or token", async () => {
		await broker.call("orders.create", { items: [{ productId: "p-1" }], payment: { card: "4242424242424242" } }, { requestID: "r-1" });
		await broker.call("users.login", { email: "a@b.test", password: "hunter2-secret" }, { requestID: "r-2" });
		const spans = recent.find({ traceIds: [traceIdHex("r-1"), traceIdHex("r-2")] });
		expect(spans.map(span => span.name).sort()).toEqual(["action 'orders.create'", "action 'payments.capture'", "action 'users.login'"]);
		const capture = spans.find(span => span.name.includes("capture"))!;
		expect(capture).toMatchObject({ orderId: "o-1", service: "payments", tags: { "params.orderId": "o-1" } });
		expect(spans.find(span => span.name.includes("create"))!.orderId).toBe("o-1");
		expect(capture.parentId).toBe(spans.find(span => span.name.includes("create"))!.id);
		const text = JSON.stringify(spans);
		for (const secret of ["4242424242424242", "hunter2-secret", "eyJsecret-token", "a@b.test"]) expect(text).not.toContain(secret);
	});

	it("keep a bounded number per node", () => {
		const small = new RecentSpans(3);
		small.init(broker.tracer as never);
		for (let i = 0; i < 5; i++) {
			small.spanFinished({ traceID: "t", id: `s${i}`, name: `n${i}`, tags: {}, startTime: i, duration: 1 } as never);
		}
		expect(small.find({ traceIds: [traceIdHex("t")] }).map(span => span.name)).toEqual(["n3", "n4", "n2"]);
	});

	it("are set per action by no service: the global allow-list applies to every action", () => {
		for (const name of SERVICE_NAMES.filter(service => service !== "api")) {
			// eslint-disable-next-line @typescript-eslint/no-require-imports -- the services' own schemas
			const schema = (require(path.join(SERVICES_DIR, name, `${name}.service`)) as { default: { actions?: Record<string, unknown> } }).default;
			for (const [action, definition] of Object.entries(schema.actions ?? {})) {
				expect([`${name}.${action}`, (definition as { tracing?: unknown }).tracing]).toEqual([`${name}.${action}`, undefined]);
			}
		}
	});
});

describe("log lines", () => {
	it("carry the request id on every node the request reaches", async () => {
		const lines: string[] = [];
		const logger = {
			type: "Console",
			options: { level: "info", colors: false, formatter: traceLogFormatter as never }
		};
		const spy = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")));
		const a = new ServiceBroker({ nodeID: "node-a", transporter: "Fake", logger, middlewares: [RequestLogContext] });
		const b = new ServiceBroker({ nodeID: "node-b", transporter: "Fake", logger, middlewares: [RequestLogContext] });
		a.createService({
			name: "front",
			actions: {
				async go(ctx: Context) {
					this.logger.info("front starts");
					// The Fake transporter delivers in this process, inside the caller's async context; exit() stands for the process boundary.
					await requestContext.exit(() => ctx.call("back.work"));
					this.logger.info("front ends");
				}
			}
		});
		b.createService({
			name: "back",
			actions: {
				async work() {
					await new Promise(resolve => setTimeout(resolve, 5));
					this.logger.info("back works");
				}
			}
		});
		try {
			await Promise.all([a.start(), b.start()]);
			await a.waitForServices("back");
			await a.call("front.go", {}, { requestID: "req-123" });
		} finally {
			await Promise.all([a.stop(), b.stop()]);
			spy.mockRestore();
		}
		for (const message of ["front starts", "back works", "front ends"]) {
			expect(lines.find(line => line.includes(message))).toMatch(/^\[[\d:.]+Z\] INFO +(FRONT|BACK): \[req req-123\] /);
		}
		expect(lines.find(line => line.includes("started successfully"))).not.toContain("[req");
		expect(requestContext.getStore()).toBeUndefined();
	});
});

describe("TRACING_ZIPKIN_URL and TRACING_SAMPLE_RATE", () => {
	const refused = (env: Record<string, string>) => {
		try {
			loadConfig(env);
		} catch (err) {
			expect(err).toBeInstanceOf(ConfigError);
			return (err as Error).message;
		}
		throw new Error(`accepted ${JSON.stringify(env)}`);
	};

	it("default: no Zipkin export, the documented rate", () => {
		expect(loadConfig({}).tracing).toEqual({ zipkinUrl: null, zipkinAuthorization: null, sampleRate: DEFAULT_TRACING_SAMPLE_RATE });
	});

	it("takes a base URL (credentials become a header, never part of the URL) and a rate from 0 to 1", () => {
		expect(loadConfig({ TRACING_ZIPKIN_URL: "http://zipkin:9411/", TRACING_SAMPLE_RATE: "0.25" }).tracing).toEqual({
			zipkinUrl: "http://zipkin:9411",
			zipkinAuthorization: null,
			sampleRate: 0.25
		});
		const withUser = loadConfig({ TRACING_ZIPKIN_URL: "https://ops:s3cret@collector.example/zipkin" }).tracing;
		expect(withUser.zipkinUrl).toBe("https://collector.example/zipkin");
		expect(withUser.zipkinAuthorization).toBe(`Basic ${Buffer.from("ops:s3cret").toString("base64")}`);
		expect(loadConfig({ TRACING_SAMPLE_RATE: "0" }).tracing.sampleRate).toBe(0);
		expect(loadConfig({ TRACING_SAMPLE_RATE: "1" }).tracing.sampleRate).toBe(1);
	});

	it.each(["1.5", "-0.1", "abc", "0x1", "1e-1", "NaN"])("refuses TRACING_SAMPLE_RATE=%s with one clear line", rate => {
		expect(refused({ TRACING_SAMPLE_RATE: rate })).toBe(`TRACING_SAMPLE_RATE must be a number from 0 to 1 (the fraction of requests traced), got "${rate}"`);
	});

	it("refuses a URL that is not an http(s) base URL, never printing its password", () => {
		expect(refused({ TRACING_ZIPKIN_URL: "zipkin:9411" })).toMatch(/^TRACING_ZIPKIN_URL must be an http/);
		expect(refused({ TRACING_ZIPKIN_URL: "not a url" })).toMatch(/^TRACING_ZIPKIN_URL is not a valid URL/);
		const message = refused({ TRACING_ZIPKIN_URL: "ftp://ops:s3cret@zipkin:9411" });
		expect(message).toContain("//***@zipkin");
		expect(message).not.toContain("s3cret");
		expect(refused({ TRACING_ZIPKIN_URL: "http://zipkin:9411/?x=1" })).toMatch(/without query/);
	});

	it("the exporters show neither kept spans nor the Zipkin credentials in the broker options ($node.options)", () => {
		const { options } = shopTracing({ zipkinUrl: "http://zipkin:9411", zipkinAuthorization: "Basic b3BzOnMzY3JldA==", sampleRate: 1 });
		const shown = JSON.stringify(options);
		expect(JSON.parse(shown).exporter).toEqual([
			{ type: "RecentSpans", size: 4096 },
			{ type: "Zipkin", baseURL: "http://zipkin:9411" }
		]);
		expect(shown).not.toContain("b3BzOnMzY3JldA");
	});

	it("a rate of 0 turns Moleculer's tracer off; the log context stays", () => {
		const off = shopTracing({ zipkinUrl: null, zipkinAuthorization: null, sampleRate: 0 });
		expect(off.options).toEqual({ enabled: false });
		expect(off.middlewares).toEqual([RequestLogContext]);
	});
});
