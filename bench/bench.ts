/**
 * `npm run bench`: how fast the shop is, against the limit of this machine, with the books checked.
 *
 * One run starts, side by side: a bare node:http server answering the shop's own bytes (the
 * ceiling), the shop in one process, and the shop as five processes on a local nats-server. Each
 * figure is measured in alternating short rounds (A, B, C, A, B, C, ...) and reported as the median
 * ratio with its min-max, because absolute figures on a shared 2-core machine vary by ±30%.
 *
 *   npm run bench                  5 rounds of 10 s per scenario, 1,000 products
 *   npm run bench -- --quick       a few seconds per scenario: the CI smoke test (books must balance)
 *   npm run bench -- --soak 300    also 300 s of orders on the single process, RSS sampled
 *   npm run bench -- --tracing     only what tracing costs: off vs the default rate vs every request (3 rounds of 8 s)
 *   npm run bench -- --rounds 3 --seconds 6 --no-tracing
 *                                  shorter rounds, without the tracing part (a before/after pair in less time)
 *
 * The table is printed and written as JSON to bench/results/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { ServiceBroker, type Context } from "moleculer";
import projectOptions from "../moleculer.config";
import { auditBooks } from "../test/support/books";
import { startBus } from "../test/support/bus";
import { registerUser, ROOT, startShop, type ShopProcess } from "../test/support/shop";
import { DEFAULT_TRACING_SAMPLE_RATE } from "../lib/config";
import { shopTracing } from "../lib/tracing";
import { shopMiddlewares } from "../lib/broker-middlewares";
import { callOverhead, DEFAULT_BROKER, formatCallOverhead, PROJECT, type CallOverhead } from "./call-overhead";
import { CACHE_COUNTERS, cacheHits, median, round2, rssMb, scrapeCounters, type CacheHits } from "./measure";
import { BENCH_ADMIN, BENCH_ENV, BENCH_SEED, benchAdminToken, option, orderRequest, progressLog, SEEDED_STOCK, seedProducts, startBare } from "./setup";
import { zipfSampler } from "./zipf";

// --- Options ------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const soakIndex = argv.indexOf("--soak");
const soakSeconds = soakIndex >= 0 ? Number(argv[soakIndex + 1] || 300) : 0;
const tracingOnly = argv.includes("--tracing");
const withTracing = !quick && !argv.includes("--no-tracing");
const defaults = quick
	? { rounds: 2, seconds: 2, warmupSeconds: 1, products: 200, connections: 32 }
	: tracingOnly
		? { rounds: 3, seconds: 8, warmupSeconds: 2, products: 200, connections: 32 }
		: { rounds: 5, seconds: 10, warmupSeconds: 3, products: 1000, connections: 32 };
const settings = { ...defaults, rounds: Number(option("--rounds", String(defaults.rounds))), seconds: Number(option("--seconds", String(defaults.seconds))) };

// --- Small helpers ------------------------------------------------------------------------------

const progress = progressLog("bench");

// --- Load -------------------------------------------------------------------------------------

interface LoadResult {
	rps: number;
	p50: number;
	p99: number;
	statusCounts: Record<string, number>;
	errors: number;
}

interface LoadSpec {
	url: string;
	seconds: number;
	connections: number;
	overallRate?: number;
	/** autocannon requests; their `setupRequest` builds each one (its `context` lives per connection). */
	requests?: autocannon.Request[];
}

async function load(spec: LoadSpec): Promise<LoadResult> {
	const result = await autocannon({
		url: spec.url,
		connections: spec.connections,
		duration: spec.seconds,
		overallRate: spec.overallRate,
		requests: spec.requests,
		timeout: 10
	});
	const statusCounts: Record<string, number> = {};
	for (const [code, stat] of Object.entries((result as unknown as { statusCodeStats: Record<string, { count: number }> }).statusCodeStats ?? {})) {
		statusCounts[code] = stat.count;
	}
	return {
		rps: Math.round(result.requests.total / spec.seconds),
		p50: result.latency.p50,
		p99: result.latency.p99,
		statusCounts,
		errors: result.errors + result.timeouts
	};
}

interface Side {
	name: string;
	spec: (seconds: number, overallRate?: number) => LoadSpec;
}

interface Comparison {
	scenario: string;
	sides: Record<string, { rps: number[]; p50: number[]; p99: number[]; fixedRateP99?: number; statusCounts: Record<string, number> }>;
	ratios: Record<string, { median: number; min: number; max: number }>;
	fixedRate?: number;
}

/** Warm up every side, then alternate them in rounds; ratios of each side to the first one, per round. */
async function compare(scenario: string, sides: Side[], options: { fixedRateOf?: string } = {}): Promise<Comparison> {
	progress(`${scenario}: warm-up`);
	for (const side of sides) await load(side.spec(settings.warmupSeconds));
	const comparison: Comparison = { scenario, sides: {}, ratios: {} };
	for (const side of sides) comparison.sides[side.name] = { rps: [], p50: [], p99: [], statusCounts: {} };
	for (let round = 1; round <= settings.rounds; round++) {
		for (const side of sides) {
			progress(`${scenario}: round ${round}/${settings.rounds}, ${side.name}`);
			const result = await load(side.spec(settings.seconds));
			const figures = comparison.sides[side.name];
			figures.rps.push(result.rps);
			figures.p50.push(result.p50);
			figures.p99.push(result.p99);
			for (const [code, count] of Object.entries(result.statusCounts)) figures.statusCounts[code] = (figures.statusCounts[code] ?? 0) + count;
		}
	}
	// Every later side against every earlier one, round by round (the rounds ran back to back).
	sides.forEach((side, i) =>
		sides.slice(0, i).forEach(base => {
			const ratios = comparison.sides[side.name].rps.map((rps, round) => rps / comparison.sides[base.name].rps[round]);
			comparison.ratios[`${side.name} / ${base.name}`] = { median: round2(median(ratios)), min: round2(Math.min(...ratios)), max: round2(Math.max(...ratios)) };
		})
	);
	// p99 at a fixed arrival rate (half the measured maximum), so slow answers are not hidden by
	// the load generator waiting for them (coordinated omission).
	if (options.fixedRateOf) {
		const rate = Math.max(1, Math.round(median(comparison.sides[options.fixedRateOf].rps) / 2));
		comparison.fixedRate = rate;
		for (const side of sides) {
			progress(`${scenario}: fixed rate ${rate}/s, ${side.name}`);
			comparison.sides[side.name].fixedRateP99 = (await load(side.spec(settings.seconds, rate))).p99;
		}
	}
	return comparison;
}

// --- The shops under test -------------------------------------------------------------------------

interface Shop {
	name: string;
	baseUrl: string;
	processes: Array<{ name: string; pid: number | undefined; metricsUrl: string; output(): string }>;
	adminToken: string;
	buyers: string[];
	productIds: string[];
	/** Each product's stock after seeding: the start of the books. */
	initialStock: Map<string, number>;
	stop(): Promise<void>;
}

/** `settings.products` products (fixed seed) with ample stock, and one token per load connection. */
async function prepare(
	name: string,
	baseUrl: string,
	processes: ShopProcess[],
	stop: () => Promise<void>,
	nodeNames: string[],
	admin = BENCH_ADMIN
): Promise<Shop> {
	const adminToken = await benchAdminToken(baseUrl, admin);
	progress(`${name}: seeding ${settings.products} products`);
	const productIds = await seedProducts(baseUrl, adminToken, settings.products);
	const buyers = await Promise.all(Array.from({ length: settings.connections }, () => registerUser(baseUrl, "bench").then(user => user.token)));
	const initialStock = new Map(productIds.map(id => [id, SEEDED_STOCK]));
	return {
		name,
		baseUrl,
		processes: processes.map((p, i) => ({ name: nodeNames[i], pid: p.child.pid, metricsUrl: `http://127.0.0.1:${p.metricsPort}/metrics`, output: p.output })),
		adminToken,
		buyers,
		productIds,
		initialStock,
		stop
	};
}

/** The shop in one process; `metrics: false` is the same shop with Moleculer's metrics off (METRICS_PORT=0), to show their cost. */
async function startSingle(metrics = true): Promise<Shop> {
	const name = metrics ? "single" : "single, no metrics";
	progress(`starting the shop in one process${metrics ? "" : ", metrics off"}`);
	const shop = await startShop({ env: { ...BENCH_ENV, ...(metrics ? {} : { METRICS_PORT: "0" }) } });
	return prepare(name, shop.baseUrl, [shop], async () => void (await shop.stop()), [metrics ? "shop" : "shop (no metrics)"]);
}

/**
 * The shop as five processes on a closed bus, as production runs it (test/support/bus.ts: a NATS
 * user per role with subject permissions, every packet encrypted with a TRANSIT_KEY).
 */
async function startCluster(): Promise<Shop> {
	progress("starting the shop as five processes on NATS (closed bus, TRANSIT_KEY)");
	const roles = ["api", "users", "inventory", "orders", "payments"] as const;
	const nodes = Object.fromEntries(roles.map(role => [role, [`bench-${role}`]]));
	const bus = await startBus({ name: "bench", nodes, observer: false });
	const env = { SEED_DEMO: "false", LOG_LEVEL: "warn" };
	const backends = await Promise.all(roles.slice(1).map(role => bus.startNode(`bench-${role}`, role, { env })));
	const gateway = await bus.startNode("bench-api", "api", { env });
	return prepare("cluster", gateway.baseUrl, [gateway, ...backends], () => bus.stop(), [...roles], bus.admin);
}

// --- Scenarios ------------------------------------------------------------------------------------

function getSide(name: string, baseUrl: string, urlPath: string): Side {
	return { name, spec: (seconds, overallRate) => ({ url: baseUrl + urlPath, seconds, connections: settings.connections, overallRate }) };
}

/**
 * Catalogue reads as a shop sees them: each request asks for one of the seeded products, drawn
 * Zipf (s = 1) by popularity rank with a fixed seed, so every side and round replays the same ids.
 */
function readSide(name: string, baseUrl: string, productIds: string[]): Side {
	return {
		name,
		spec: (seconds, overallRate) => {
			const rank = zipfSampler(productIds.length, 1, BENCH_SEED + 2);
			return {
				url: baseUrl,
				seconds,
				connections: settings.connections,
				overallRate,
				requests: [{ method: "GET", setupRequest: (request: autocannon.Request) => ({ ...request, path: `/api/products/${productIds[rank()]}` }) }]
			};
		}
	};
}

/** Orders from `connections` buyers, each connection with its own token, products drawn with a fixed seed. */
function orderSide(shop: Shop): Side {
	return {
		name: shop.name,
		// The 100 first products (the most popular of the Zipf reads): orders compete for the same rows.
		spec: (seconds, overallRate) => ({
			url: shop.baseUrl,
			seconds,
			connections: settings.connections,
			overallRate,
			requests: [orderRequest(shop.buyers, shop.productIds.slice(0, 100))]
		})
	};
}

interface BooksCheck {
	orders: number;
	problems: string[];
	/** How long the audit took, as an operator's `books` would. */
	seconds: number;
}

/** The books of one shop after the load: every order settled within a minute, invariants kept. */
async function checkBooks(shop: Shop): Promise<BooksCheck> {
	// The load generator has stopped; let the requests it left in flight finish before listing.
	await new Promise(resolve => setTimeout(resolve, 1000));
	const started = Date.now();
	const books = await auditBooks({ baseUrl: shop.baseUrl, adminToken: shop.adminToken, expectedStock: shop.initialStock, settleWithinMs: 60_000 });
	const seconds = round2((Date.now() - started) / 1000);
	if (books.problems.length > 0) {
		// What the shop said about it (warnings and errors: the shops run at LOG_LEVEL=warn).
		for (const process of shop.processes)
			console.error(`--- ${shop.name}: ${process.name}, last log lines ---\n${process.output().split("\n").slice(-60).join("\n")}`);
	}
	return { orders: books.orders.length, problems: books.problems, seconds };
}

// --- What the shops counted ----------------------------------------------------------------------

/** RSS of every process, every 5 s, for the whole run. */
function sampleMemory(processes: Shop["processes"]): { samples: Record<string, number[]>; stop(): void } {
	const samples: Record<string, number[]> = Object.fromEntries(processes.map(p => [p.name, [rssMb(p.pid)]]));
	const timer = setInterval(() => processes.forEach(p => samples[p.name].push(rssMb(p.pid))), 5000);
	return { samples, stop: () => (clearInterval(timer), processes.forEach(p => samples[p.name].push(rssMb(p.pid)))) };
}

// --- What tracing costs (README "Operating the shop / Traces") ---------------------------------------

interface TracingCost {
	/** broker.call/s through the project's broker (in this process), median of alternated rounds, per variant; and the ratio to off. */
	calls: Record<string, { rate: number; ratio: number }>;
	reads: Comparison;
	orders: Comparison;
	books: Record<string, { orders: number; problems: string[] }>;
}

/** The shop in one process with tracing off (rate 0), at the default rate, and on every request; reads and orders. */
async function tracingCost(): Promise<TracingCost> {
	const variants: Array<[string, string]> = [
		["tracing off", "0"],
		[`tracing ${DEFAULT_TRACING_SAMPLE_RATE} (default)`, String(DEFAULT_TRACING_SAMPLE_RATE)],
		["tracing 1", "1"]
	];
	const shops: Shop[] = [];
	try {
		for (const [name, rate] of variants) {
			progress(`starting the shop in one process, ${name}`);
			const shop = await startShop({ env: { ...BENCH_ENV, TRACING_SAMPLE_RATE: rate } });
			shops.push(await prepare(name, shop.baseUrl, [shop], async () => void (await shop.stop()), [name]));
		}
		const reads = await compare(
			"tracing: GET /api/products/:id (Zipf)",
			shops.map(shop => readSide(shop.name, shop.baseUrl, shop.productIds))
		);
		const orders = await compare("tracing: POST /api/orders", shops.map(orderSide));
		const books: TracingCost["books"] = {};
		for (const shop of shops) books[shop.name] = await checkBooks(shop);
		return { calls: await tracedCallRates(variants), reads, orders, books };
	} finally {
		for (const shop of shops) await shop.stop();
	}
}

/**
 * The same cost without HTTP and SQLite around it: an action calling a second one (two spans a call),
 * through the project's broker options with each TRACING_SAMPLE_RATE, in alternated rounds of 1 s.
 */
async function tracedCallRates(variants: Array<[string, string]>): Promise<TracingCost["calls"]> {
	const brokers = variants.map(([name, rate]) => {
		const tracing = shopTracing({ zipkinUrl: null, zipkinAuthorization: null, sampleRate: Number(rate) });
		const broker = new ServiceBroker({
			...projectOptions,
			logger: false,
			transporter: null,
			metrics: { enabled: false },
			tracing: tracing.options,
			middlewares: shopMiddlewares(tracing.middlewares)
		});
		broker.createService({
			name: "bench",
			actions: {
				outer: (ctx: Context<{ id: string }>) => ctx.call("bench.inner", { id: ctx.params.id }),
				inner: (ctx: Context<{ id: string }>) => ({ id: ctx.params.id })
			}
		});
		return { name, broker };
	});
	await Promise.all(brokers.map(({ broker }) => broker.start()));
	const rates: Record<string, number[]> = Object.fromEntries(variants.map(([name]) => [name, []]));
	for (let round = 0; round < 5; round++) {
		for (const { name, broker } of brokers) {
			const until = Date.now() + 1000;
			let count = 0;
			while (Date.now() < until) {
				for (let i = 0; i < 200; i++) await broker.call("bench.outer", { id: "o-1" });
				count += 200;
			}
			rates[name].push(count);
		}
	}
	await Promise.all(brokers.map(({ broker }) => broker.stop()));
	const off = median(rates[variants[0][0]]);
	return Object.fromEntries(variants.map(([name]) => [name, { rate: median(rates[name]), ratio: round2(median(rates[name]) / off) }]));
}

function printTracingCost(cost: TracingCost): void {
	console.log("\nTracing cost, in-process calls (an action calling another; calls/s, median of 5 alternated rounds, ratio to off):");
	for (const [name, { rate, ratio }] of Object.entries(cost.calls)) console.log(`  ${name.padEnd(24)} ${String(rate).padStart(8)} calls/s  ${ratio}`);
	console.log("\nTracing cost (one process over HTTP; req/s median of rounds, ratio to tracing off, min-max):");
	for (const comparison of [cost.reads, cost.orders]) {
		for (const [side, figures] of Object.entries(comparison.sides)) {
			const ratio = comparison.ratios[`${side} / tracing off`];
			console.log(
				`  ${comparison.scenario.padEnd(32)} ${side.padEnd(22)} ${String(median(figures.rps)).padStart(6)} req/s  p99 ${String(median(figures.p99)).padStart(4)} ms  ${ratio ? `${ratio.median} (${ratio.min}-${ratio.max})` : "1"}`
			);
		}
	}
	for (const [name, books] of Object.entries(cost.books))
		console.log(`  books, ${name}: ${books.orders} orders, ${books.problems.length === 0 ? "balanced" : `${books.problems.length} PROBLEMS`}`);
}

async function tracingMain(): Promise<void> {
	const started = Date.now();
	const cost = await tracingCost();
	printTracingCost(cost);
	const report = { date: new Date().toISOString(), mode: "tracing", settings, ...cost, seconds: Math.round((Date.now() - started) / 1000) };
	mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
	const file = path.join(ROOT, `bench/results/bench-tracing-${report.date.replace(/[:.]/g, "-")}.json`);
	writeFileSync(file, JSON.stringify(report, null, 2));
	console.log(`\nJSON: ${path.relative(ROOT, file)}`);
	const problems = Object.values(cost.books).flatMap(book => book.problems);
	if (problems.length > 0) console.error(`THE BOOKS DO NOT BALANCE:\n${problems.slice(0, 20).join("\n")}`);
	process.exit(problems.length > 0 ? 1 : 0);
}

// --- Main -------------------------------------------------------------------------------------------

/** Catalogue reads answered by the gateway's product cache, and the misses' inventory.get answered by Moleculer's cacher. */
interface Target {
	figure: string;
	measured: string;
	target: string;
	/** null: a figure shown for context, without a target. */
	met: boolean | null;
}

/** RSS of the NATS gateway may grow while caches and pools fill in the first scenario; after that it must stay flat. */
const RSS_FLAT_GROWTH = 0.15;
/** The audit of the books, per 100,000 orders. */
const BOOKS_SECONDS_PER_100K = 30;

async function main() {
	const started = Date.now();
	const single = await startSingle();
	const unmetered = await startSingle(false);
	const cluster = await startCluster();
	const stops: Array<() => unknown> = [() => single.stop(), () => unmetered.stop(), () => cluster.stop()];
	let failed = false;
	try {
		const listPath = "/api/products?page=1&pageSize=20";
		// The ceiling answers each product's bytes as the shop answered them, from memory.
		const routes: Record<string, string> = { [listPath]: await (await fetch(single.baseUrl + listPath)).text() };
		for (const id of single.productIds) routes[`/api/products/${id}`] = await (await fetch(`${single.baseUrl}/api/products/${id}`)).text();
		const bare = await startBare(routes);
		stops.push(() => bare.stop());

		const gateway = cluster.processes.find(p => p.name === "api")!;
		const memory = sampleMemory([...single.processes, ...unmetered.processes, ...cluster.processes.map(p => ({ ...p, name: `cluster ${p.name}` }))]);
		const rssMarks: Record<string, number> = { start: rssMb(gateway.pid) };

		const countersBefore = {
			single: await scrapeCounters(
				single.processes.map(p => p.metricsUrl),
				CACHE_COUNTERS
			),
			cluster: await scrapeCounters(
				cluster.processes.map(p => p.metricsUrl),
				CACHE_COUNTERS
			)
		};
		const reads = await compare(
			"GET /api/products/:id (Zipf)",
			[
				readSide("bare", bare.url, single.productIds),
				readSide("single", single.baseUrl, single.productIds),
				readSide("cluster", cluster.baseUrl, cluster.productIds),
				readSide("single, no metrics", unmetered.baseUrl, unmetered.productIds)
			],
			{ fixedRateOf: "single" }
		);
		// The gateway refreshes its cache gauges every second.
		await new Promise(resolve => setTimeout(resolve, 1500));
		const cacheHitsOf: Record<string, CacheHits> = {};
		for (const [name, shop] of [
			["single", single],
			["cluster", cluster]
		] as const) {
			const after = await scrapeCounters(
				shop.processes.map(p => p.metricsUrl),
				CACHE_COUNTERS
			);
			cacheHitsOf[name] = cacheHits(countersBefore[name], after);
		}
		rssMarks["after reads"] = rssMb(gateway.pid);
		const lists = await compare("GET /api/products?page=1&pageSize=20", [
			getSide("bare", bare.url, listPath),
			getSide("single", single.baseUrl, listPath),
			getSide("cluster", cluster.baseUrl, listPath)
		]);
		rssMarks["after lists"] = rssMb(gateway.pid);
		const orders = await compare("POST /api/orders", [orderSide(single), orderSide(cluster), orderSide(unmetered)], { fixedRateOf: "single" });
		rssMarks["after orders"] = rssMb(gateway.pid);

		let soak: { seconds: number; rssMb: number[]; growthPercent: number } | undefined;
		if (soakSeconds > 0) {
			progress(`soak: ${soakSeconds} s of orders on the single process`);
			const samples: number[] = [rssMb(single.processes[0].pid)];
			const timer = setInterval(() => samples.push(rssMb(single.processes[0].pid)), 10_000);
			await load(orderSide(single).spec(soakSeconds));
			clearInterval(timer);
			samples.push(rssMb(single.processes[0].pid));
			const settled = samples.slice(Math.floor(samples.length / 3));
			soak = { seconds: soakSeconds, rssMb: samples, growthPercent: round2(((settled[settled.length - 1] - settled[0]) / settled[0]) * 100) };
		}

		progress("checking the books");
		const books = { single: await checkBooks(single), cluster: await checkBooks(cluster), "single, no metrics": await checkBooks(unmetered) };
		rssMarks.end = rssMb(gateway.pid);
		memory.stop();
		// The shops are stopped first: what follows gets the machine to itself.
		for (const stop of stops.splice(0).reverse()) await stop();
		progress("broker.call overhead");
		const overhead = await callOverhead({ quick });
		const tracing = withTracing ? await tracingCost() : undefined;

		const targets = targetsOf({ reads, orders, cacheHits: cacheHitsOf, rssMarks, books, overhead });
		const report = {
			date: new Date().toISOString(),
			mode: quick ? "quick" : "full",
			settings,
			targets,
			reads,
			cacheHits: cacheHitsOf,
			lists,
			orders,
			memory: { gateway: rssMarks, samples: memory.samples },
			soak,
			books,
			overhead,
			tracing,
			seconds: Math.round((Date.now() - started) / 1000)
		};
		printReport(report);
		mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
		const file = path.join(ROOT, `bench/results/bench-${report.mode}-${report.date.replace(/[:.]/g, "-")}.json`);
		writeFileSync(file, JSON.stringify(report, null, 2));
		console.log(`\nJSON: ${path.relative(ROOT, file)}`);
		const problems = [...Object.values(books), ...Object.values(tracing?.books ?? {})].flatMap(book => book.problems);
		failed = problems.length > 0;
		if (failed) console.error(`THE BOOKS DO NOT BALANCE:\n${problems.slice(0, 20).join("\n")}`);
	} finally {
		for (const stop of stops.reverse()) await stop();
	}
	process.exit(failed ? 1 : 0);
}

/** Issue 10's table: every figure with its target. */
function targetsOf(run: {
	reads: Comparison;
	orders: Comparison;
	cacheHits: Record<string, CacheHits>;
	rssMarks: Record<string, number>;
	books: Record<string, BooksCheck>;
	overhead: CallOverhead;
}): Target[] {
	const ratio = (comparison: Comparison, name: string) => comparison.ratios[name];
	const shown = (r: { median: number; min: number; max: number }) => `${r.median} (${r.min}-${r.max})`;
	const rps = (comparison: Comparison, side: string) => median(comparison.sides[side].rps);
	const singleOverBare = ratio(run.reads, "single / bare");
	const unmeteredOverBare = ratio(run.reads, "single, no metrics / bare");
	const readsClusterOverSingle = ratio(run.reads, "cluster / single");
	const ordersClusterOverSingle = ratio(run.orders, "cluster / single");
	const single = run.orders.sides.single;
	const ordersPerSecond = rps(run.orders, "single");
	const p99 = median(single.p99);
	const rssBase = run.rssMarks["after reads"];
	const rssPeak = Math.max(
		...Object.entries(run.rssMarks)
			.filter(([mark]) => mark !== "start")
			.map(([, mb]) => mb)
	);
	const slowestAudit = Math.max(...Object.values(run.books).map(book => (book.seconds / Math.max(1, book.orders)) * 100_000));
	return [
		{
			figure: "GET /api/products/:id, one process ÷ bare node:http",
			measured: `${shown(singleOverBare)}; ${rps(run.reads, "single")} vs ${rps(run.reads, "bare")} req/s`,
			target: "≥ 0.75",
			met: singleOverBare.median >= 0.75
		},
		{ figure: "same, metrics off ÷ bare", measured: shown(unmeteredOverBare), target: "", met: null },
		{ figure: "GET product, NATS ÷ one process", measured: shown(readsClusterOverSingle), target: "≥ 0.5", met: readsClusterOverSingle.median >= 0.5 },
		{
			figure: "catalogue cache hit rate: the gateway's product cache; then inventory.get's cacher",
			measured: Object.entries(run.cacheHits)
				.map(([name, { gateway, cacher }]) => `${name} ${gateway.rate} (${gateway.hits}/${gateway.reads}); ${cacher.rate} (${cacher.hits}/${cacher.gets})`)
				.join("; "),
			target: "",
			met: null
		},
		{
			figure: "POST /api/orders, one process",
			measured: `${ordersPerSecond} orders/s, p50 ${median(single.p50)} ms, p99 ${p99} ms`,
			target: "≥ 1,000/s, p99 < 100 ms",
			met: ordersPerSecond >= 1000 && p99 < 100
		},
		{ figure: "orders, NATS ÷ one process", measured: shown(ordersClusterOverSingle), target: "≥ 0.8", met: ordersClusterOverSingle.median >= 0.8 },
		{
			figure: "broker.call, the project's broker ÷ Moleculer's default",
			measured: `${shown(run.overhead.ratio)}; ${run.overhead.rates[PROJECT]} vs ${run.overhead.rates[DEFAULT_BROKER]} calls per CPU-second`,
			target: "≥ 0.5",
			met: run.overhead.ratio.median >= 0.5
		},
		{
			figure: "RSS of the NATS gateway across the run",
			measured: Object.entries(run.rssMarks)
				.map(([mark, mb]) => `${mark} ${mb}`)
				.join(", ")
				.concat(" MB"),
			target: `flat: ≤ ${RSS_FLAT_GROWTH * 100}% over "after reads"`,
			met: rssPeak <= rssBase * (1 + RSS_FLAT_GROWTH)
		},
		{
			figure: "books audit after the run",
			measured: Object.entries(run.books)
				.map(([name, book]) => `${name} ${book.orders} orders in ${book.seconds} s`)
				.join("; "),
			target: `≤ ${BOOKS_SECONDS_PER_100K} s per 100k orders, balanced`,
			met: slowestAudit <= BOOKS_SECONDS_PER_100K && Object.values(run.books).every(book => book.problems.length === 0)
		}
	];
}

function printReport(report: {
	targets: Target[];
	reads: Comparison;
	cacheHits: Record<string, CacheHits>;
	lists: Comparison;
	orders: Comparison;
	memory: { gateway: Record<string, number>; samples: Record<string, number[]> };
	soak?: { seconds: number; rssMb: number[]; growthPercent: number };
	books: Record<string, BooksCheck>;
	overhead: CallOverhead;
	tracing?: TracingCost;
	mode: string;
	seconds: number;
}) {
	const table = (rows: string[][]) => {
		const widths = rows[0].map((_, col) => Math.max(...rows.map(row => row[col].length)));
		for (const row of rows) console.log(row.map((cell, col) => cell.padEnd(widths[col])).join("  "));
	};
	const rows: string[][] = [["scenario", "side", "req/s (median)", "p50 ms", "p99 ms", `p99 ms at fixed rate`, "answers"]];
	for (const comparison of [report.reads, report.lists, report.orders]) {
		for (const [side, figures] of Object.entries(comparison.sides)) {
			rows.push([
				comparison.scenario,
				side,
				String(median(figures.rps)),
				String(median(figures.p50)),
				String(median(figures.p99)),
				figures.fixedRateP99 === undefined ? "" : `${figures.fixedRateP99} (at ${comparison.fixedRate}/s)`,
				Object.entries(figures.statusCounts)
					.map(([code, count]) => `${code}:${count}`)
					.join(" ")
			]);
		}
	}
	console.log(
		`\nShop benchmark (${report.mode}, ${settings.rounds} rounds of ${settings.seconds} s, ${settings.connections} connections, ${report.seconds} s in all)\n`
	);
	table(rows);
	console.log("\nRatios (median of rounds, min-max):");
	for (const comparison of [report.reads, report.lists, report.orders]) {
		for (const [name, ratio] of Object.entries(comparison.ratios))
			console.log(`  ${comparison.scenario.padEnd(38)} ${name.padEnd(34)} ${ratio.median} (${ratio.min}-${ratio.max})`);
	}
	console.log(`\n${formatCallOverhead(report.overhead)}`);
	console.log("\nRSS MB, first and last sample and peak:");
	for (const [name, samples] of Object.entries(report.memory.samples))
		console.log(`  ${name.padEnd(20)} ${samples[0]} -> ${samples[samples.length - 1]} (peak ${Math.max(...samples)})`);
	if (report.soak)
		console.log(
			`\nSoak ${report.soak.seconds} s: RSS samples ${report.soak.rssMb.join(", ")} MB; growth over the last two thirds ${report.soak.growthPercent}%`
		);
	console.log("\nBooks after the load:");
	for (const [name, books] of Object.entries(report.books))
		console.log(
			`  ${name.padEnd(20)} ${books.orders} orders, audited in ${books.seconds} s, ${books.problems.length === 0 ? "balanced" : `${books.problems.length} PROBLEMS`}`
		);
	if (report.tracing) printTracingCost(report.tracing);
	console.log("\nTargets (issue 10):");
	table([["figure", "measured", "target", ""], ...report.targets.map(t => [t.figure, t.measured, t.target, t.met === null ? "" : t.met ? "met" : "NOT MET"])]);
}

(tracingOnly ? tracingMain() : main()).catch(err => {
	console.error(err);
	process.exit(1);
});
