/**
 * What one `broker.call` costs through the project's broker options (moleculer.config.ts), against
 * Moleculer's default broker and a direct function call, and what each option of the project costs
 * (an ablation: one option off at a time). Issue 10's target: project ÷ default ≥ 0.5.
 *
 * Every variant is a broker in this process (no transporter) with the same echo action (one number
 * param, validated), called and awaited one call after another; a rate is calls per second of this
 * process's CPU time (about calls/s on an idle core, and robust on a shared machine). The variants are measured in
 * alternated rounds (A, B, C, ..., A, B, C, ...; each round starting one variant later), and each
 * figure is the median of the rounds: on a shared machine the absolute figures vary by ±30%, their
 * ratios within a round much less.
 *
 * The project's broker runs as `npm start` would, less its logger (the benchmark prints nothing) and
 * transporter: metrics on with no reporter (no HTTP server), tracing at the configured rate, chaos,
 * the timeouts, retries, circuit breaker, tracking, validator and cacher of moleculer.config.ts.
 *
 * Last, apart from the rounds: the same with a logger, whose request log context (lib/tracing.ts,
 * Node's AsyncLocalStorage) turns on async hooks for the whole process once used, which would slow
 * every later round of every variant; so it is measured after them, against the project's broker
 * without a logger, both then paying the process-wide hooks.
 *
 *   node dist/bench/call-overhead.js            7 rounds of 1 s per variant
 *   node dist/bench/call-overhead.js --quick    3 rounds of 0.25 s
 *   node dist/bench/call-overhead.js --before /work/main/dist/moleculer.config.js
 *                                               also the broker options of another build, side by side
 */
import { ServiceBroker, type BrokerOptions, type Context, type Middleware } from "moleculer";
import projectOptions from "../moleculer.config";
import { shopTracing } from "../lib/tracing";
import { median, round2 } from "./measure";

type MiddlewareEntry = NonNullable<BrokerOptions["middlewares"]>[number];

export interface CallOverhead {
	rounds: number;
	msPerRound: number;
	/** calls/s per variant: the median of the rounds. */
	rates: Record<string, number>;
	/** The project's broker ÷ Moleculer's default broker: median of the per-round ratios, with min and max. */
	ratio: { median: number; min: number; max: number };
	/**
	 * Each ablation ÷ the project's broker (median of the per-round ratios): what turning that one
	 * option off would buy; and each of Moleculer's own middlewares back in place of the shop's
	 * replacement (lib/broker-middlewares.ts): below 1 by what the replacement bought.
	 */
	ablation: Record<string, number>;
	/**
	 * Measured after the rounds, once the request log context has turned on Node's async hooks for
	 * the process (see above): the project's broker with a logger, without, and the default broker;
	 * `ratio` = with ÷ without a logger; `processWide` = the default broker then ÷ the default broker
	 * in the rounds (what the hooks cost every call of the process, a shop's node with a logger).
	 */
	logContext: { withLogger: number; withoutLogger: number; defaultBroker: number; ratio: number; processWide: number };
}

export const DIRECT = "direct function call";
export const DEFAULT_BROKER = "default ServiceBroker";
export const PROJECT = "the project's broker";

const echo = async (params: { n: number }) => params.n;
const schema = {
	name: "bench",
	actions: { echo: { params: { n: "number" }, handler: (ctx: Context<{ n: number }>) => echo(ctx.params) } }
};

/** The name of a middleware entry: a built-in's name, a factory's function name, an object's `name`. */
function nameOf(entry: MiddlewareEntry): string {
	if (typeof entry === "string") return entry;
	if (typeof entry === "function") return (entry as { name: string }).name;
	return String((entry as Middleware).name ?? "");
}

/** The project's options as the benchmark runs them: no logger, no transporter, metrics on without a reporter. */
export function benchOptions(options: BrokerOptions = projectOptions): BrokerOptions {
	return { ...options, logger: false, transporter: null, metrics: { enabled: true, reporter: [] } };
}

/** The project's options less the middlewares named. */
function without(options: BrokerOptions, ...names: string[]): BrokerOptions {
	return { ...options, middlewares: (options.middlewares ?? []).filter(entry => !names.includes(nameOf(entry))) };
}

/** The project's options with tracing at another rate (as TRACING_SAMPLE_RATE would set it). */
function withSampleRate(options: BrokerOptions, sampleRate: number): BrokerOptions {
	const tracing = shopTracing({ zipkinUrl: null, zipkinAuthorization: null, sampleRate });
	const rest = without(options, "RequestLogContext", "TracingService");
	return { ...rest, tracing: tracing.options, middlewares: [...tracing.middlewares, ...(rest.middlewares ?? [])] };
}

/** The project's options with one of Moleculer's own middlewares back in place of the shop's replacement. */
function withMoleculers(options: BrokerOptions, replacement: string, builtin: string): BrokerOptions {
	return { ...options, middlewares: (options.middlewares ?? []).map(entry => (nameOf(entry) === replacement ? builtin : entry)) };
}

/** One option of the project's broker off at a time, then each replacement undone. */
export function ablations(project: BrokerOptions): Array<[string, BrokerOptions]> {
	return [
		["project, metrics off", { ...project, metrics: { enabled: false } }],
		["project, tracing off", { ...without(project, "RequestLogContext", "TracingService"), tracing: { enabled: false } }],
		["project, TRACING_SAMPLE_RATE 0.01", withSampleRate(project, 0.01)],
		["project, chaos off", without(project, "Chaos")],
		["project, requestTimeout 0", { ...project, requestTimeout: 0 }],
		["project, circuit breaker + retry off", { ...project, circuitBreaker: { enabled: false }, retryPolicy: { enabled: false } }],
		["project, tracking off", { ...project, tracking: { enabled: false } }],
		["project, validator off", { ...project, validator: false }],
		["project, Moleculer's Timeout (every call timed)", withMoleculers(project, "CallTimeouts", "Timeout")],
		["project, Moleculer's Tracing (a span every call)", withMoleculers(project, "SampledTracing", "Tracing")],
		["project, Moleculer's Metrics (labels hashed)", withMoleculers(project, "CallMetrics", "Metrics")]
	];
}

type Call = (n: number) => Promise<number>;

/**
 * Calls per second of this process's CPU time (user + system) of `call`, over `ms` of wall time, in
 * batches of 1,000 awaited calls. CPU time, not wall time: the machine is shared, and a round that
 * other processes preempt would otherwise count their time as this variant's.
 */
async function rate(call: Call, ms: number): Promise<number> {
	const until = performance.now() + ms;
	const cpu = process.cpuUsage();
	let count = 0;
	while (performance.now() < until) {
		for (let i = 0; i < 1000; i++) await call(i);
		count += 1000;
	}
	const used = process.cpuUsage(cpu);
	return Math.round(count / ((used.user + used.system) / 1e6));
}

async function brokerSide(options: BrokerOptions): Promise<{ call: Call; stop(): Promise<void> }> {
	const broker = new ServiceBroker(options);
	broker.createService(schema);
	await broker.start();
	return { call: n => broker.call<number, { n: number }>("bench.echo", { n }), stop: () => broker.stop() };
}

/** Measures `sides` in `rounds` alternated rounds; answers each side's rates. */
async function alternate(sides: Array<[string, Call]>, rounds: number, ms: number): Promise<Map<string, number[]>> {
	const rates = new Map<string, number[]>(sides.map(([name]) => [name, []]));
	for (const [, call] of sides) await rate(call, Math.min(ms, 200)); // warm-up (JIT)
	for (let round = 0; round < rounds; round++) {
		for (let i = 0; i < sides.length; i++) {
			const [name, call] = sides[(i + round) % sides.length];
			rates.get(name)!.push(await rate(call, ms));
		}
	}
	return rates;
}

/** Median over the rounds of a ÷ b, round by round. */
function ratioOf(a: number[], b: number[]) {
	const ratios = a.map((value, i) => value / b[i]);
	return { median: round2(median(ratios)), min: round2(Math.min(...ratios)), max: round2(Math.max(...ratios)) };
}

export async function callOverhead(options: { quick: boolean; extra?: Array<[string, BrokerOptions]> }): Promise<CallOverhead> {
	const rounds = options.quick ? 3 : 7;
	const ms = options.quick ? 250 : 1000;
	const project = benchOptions();
	const brokers: Array<[string, BrokerOptions]> = [[DEFAULT_BROKER, { logger: false }], [PROJECT, project], ...(options.extra ?? []), ...ablations(project)];
	const started: Array<[string, { call: Call; stop(): Promise<void> }]> = [];
	try {
		for (const [name, brokerOptions] of brokers) started.push([name, await brokerSide(brokerOptions)]);
		const sides: Array<[string, Call]> = [[DIRECT, n => echo({ n })], ...started.map(([name, side]): [string, Call] => [name, side.call])];
		const measured = await alternate(sides, rounds, ms);
		const rates = Object.fromEntries([...measured].map(([name, values]) => [name, Math.round(median(values))]));
		const ablation = Object.fromEntries(ablations(project).map(([name]) => [name, ratioOf(measured.get(name)!, measured.get(PROJECT)!).median]));

		// Last: the request log context, which turns on process-wide async hooks (see the header).
		const logged = await brokerSide({ ...project, logger: { type: "Console", options: { level: "error" } }, logLevel: "error" });
		started.push(["project with a logger", logged]);
		const projectCall = started.find(([name]) => name === PROJECT)![1].call;
		const defaultCall = started.find(([name]) => name === DEFAULT_BROKER)![1].call;
		const hooked = await alternate(
			[
				["with", logged.call],
				["without", projectCall],
				["default", defaultCall]
			],
			rounds,
			ms
		);
		const logContext = {
			withLogger: Math.round(median(hooked.get("with")!)),
			withoutLogger: Math.round(median(hooked.get("without")!)),
			defaultBroker: Math.round(median(hooked.get("default")!)),
			ratio: ratioOf(hooked.get("with")!, hooked.get("without")!).median,
			processWide: round2(median(hooked.get("default")!) / median(measured.get(DEFAULT_BROKER)!))
		};
		return { rounds, msPerRound: ms, rates, ratio: ratioOf(measured.get(PROJECT)!, measured.get(DEFAULT_BROKER)!), ablation, logContext };
	} finally {
		for (const [, side] of started) await side.stop();
	}
}

/** The table `node dist/bench/call-overhead.js` prints. */
export function formatCallOverhead(result: CallOverhead): string {
	const direct = result.rates[DIRECT];
	const lines = [
		`broker.call overhead (calls per CPU-second, awaited one after another; median of ${result.rounds} alternated rounds of ${result.msPerRound} ms)`
	];
	for (const [name, calls] of Object.entries(result.rates)) {
		const note = result.ablation[name] !== undefined ? `  ${result.ablation[name]} x the project's` : "";
		lines.push(`  ${name.padEnd(48)} ${String(calls).padStart(10)}  ${String(round2(calls / direct)).padStart(5)} x direct${note}`);
	}
	lines.push(`  project ÷ default: ${result.ratio.median} (${result.ratio.min}-${result.ratio.max}); target ≥ 0.5`);
	const log = result.logContext;
	lines.push(`  then, async hooks on (a logger's request log context): project with a logger ${log.withLogger}, without ${log.withoutLogger} (${log.ratio})`);
	lines.push(`    default ServiceBroker ${log.defaultBroker} = ${log.processWide} x its rate before the hooks: what they cost every call of the process`);
	return lines.join("\n");
}

if (require.main === module) {
	const argv = process.argv.slice(2);
	const beforeIndex = argv.indexOf("--before");
	const extra: Array<[string, BrokerOptions]> = [];
	if (beforeIndex >= 0) {
		// Another build's broker options (e.g. main's dist), with its own copy of Moleculer.
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const before = require(argv[beforeIndex + 1]) as BrokerOptions;
		extra.push(["the project's broker, before", benchOptions(before)]);
	}
	callOverhead({ quick: argv.includes("--quick"), extra })
		.then(result => {
			console.log(formatCallOverhead(result));
			process.exit(0);
		})
		.catch((err: unknown) => {
			console.error(err);
			process.exit(1);
		});
}
