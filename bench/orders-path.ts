/**
 * The order path, old against new: `node dist/bench/orders-path.js [--old <root>] [--rounds 3] [--seconds 6] [--nats] [--cpu-prof <dir>]`
 *
 * Starts two shops side by side, the old one from `<root>` (required unless `--topology`: a checkout, its dist/ built)
 * and this checkout's, with the same env, seeds each with 100 hot products and 32 buyers, and runs
 * POST /api/orders as bench/bench.ts's `orderSide` does (32 connections, each its own buyer token,
 * 1-3 units of one of 100 products, the approved test card), alternating the sides round by round.
 * Per side and round: orders/s, p50, p99, and the CPU time its processes spent per order (utime +
 * stime from /proc/<pid>/stat). `--nats`: each side is five processes on its own nats-server, as
 * bench.ts's `startCluster`. `--topology [<root>]`: one code (this checkout by default) as one process ("old" in
 * the output) against five on NATS ("new"), for the NATS ÷ one-process ratio. `--cpu-prof <dir>`: the new side's
 * processes write V8 CPU profiles there.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { startNats, type NatsServer } from "../test/support/nats";
import { freePort, registerUser, ROOT, startShop, tempDataDir } from "../test/support/shop";
import { CLK_TCK, cpuTicks, median } from "./measure";
import { BENCH_ENV, benchAdminToken, option, orderRequest, progressLog, seedProducts } from "./setup";

const argv = process.argv.slice(2);
const OLD_ROOT = option("--old", "");
const ROUNDS = Number(option("--rounds", "3"));
const SECONDS = Number(option("--seconds", "6"));
const NATS = argv.includes("--nats");
/** `--topology [<root>]`: instead of old against new, one code (default this checkout) as one process against five on NATS. */
const TOPOLOGY = argv.includes("--topology");
const TOPOLOGY_ROOT =
	TOPOLOGY && argv[argv.indexOf("--topology") + 1] && !argv[argv.indexOf("--topology") + 1].startsWith("--") ? argv[argv.indexOf("--topology") + 1] : ROOT;
const CPU_PROF = argv.includes("--cpu-prof") ? option("--cpu-prof", "") : "";
const envOption = (name: string): Record<string, string> =>
	Object.fromEntries(
		option(name, "")
			.split(",")
			.filter(Boolean)
			.map(pair => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)])
	);
/** `--new-env K=V,K2=V2`: environment only the new side gets (e.g. to try a setting on the same code); `--env`: both sides. */
const NEW_ENV = envOption("--new-env");
const BOTH_ENV = envOption("--env");
const CONNECTIONS = 32;
const PRODUCTS = 100;

const log = progressLog("orders-path");

interface Node {
	pid: number;
	stop(): Promise<void>;
	output(): string;
}

/** One shop node of `root`, started as `npm start` starts it (with `--cpu-prof` when `profDir` is given). */
async function startNode(root: string, env: Record<string, string>, port: number, wait: boolean, profDir: string): Promise<Node> {
	const shop = await startShop({
		root,
		port,
		env: { ...BENCH_ENV, ...env },
		waitFor: wait ? "ready" : "none",
		timeoutMs: 60_000,
		nodeArgs: profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []
	});
	return { pid: shop.child.pid!, output: shop.output, stop: async () => void (await shop.stop()) };
}

interface Side {
	name: string;
	baseUrl: string;
	nodes: Node[];
	nats?: NatsServer;
	buyers: string[];
	productIds: string[];
}

async function startSide(name: string, root: string, profDir: string, extraEnv: Record<string, string>, nats = NATS): Promise<Side> {
	const dataDir = tempDataDir(`orders-path-${name}-`);
	const port = await freePort();
	let nodes: Node[];
	let natsServer: NatsServer | undefined;
	if (nats) {
		natsServer = await startNats();
		const env = { ...extraEnv, DATA_DIR: dataDir, TRANSPORTER: natsServer.url, JWT_SECRET: "bench-cluster-secret-0123456789" };
		const backends = await Promise.all(
			["users", "inventory", "orders", "payments"].map(async service =>
				startNode(root, { ...env, SERVICES: service, NODEID: `${name}-${service}` }, await freePort(), false, profDir)
			)
		);
		nodes = [await startNode(root, { ...env, SERVICES: "api", NODEID: `${name}-api` }, port, true, profDir), ...backends];
	} else {
		nodes = [await startNode(root, { ...extraEnv, DATA_DIR: dataDir }, port, true, profDir)];
	}
	const baseUrl = `http://127.0.0.1:${port}`;
	const productIds = await seedProducts(baseUrl, await benchAdminToken(baseUrl), PRODUCTS);
	const buyers = await Promise.all(Array.from({ length: CONNECTIONS }, () => registerUser(baseUrl, "bench").then(user => user.token)));
	log(`${name}: ${nodes.length} process(es) up from ${root}`);
	return { name, baseUrl, nodes, nats: natsServer, buyers, productIds };
}

/**
 * node-sqlite3 trips (statements and execs) the side's processes made so far, when they were started
 * with a counting preload that writes `/tmp/counts-<pid>.json` (`--env NODE_OPTIONS=--require=<it>`); else NaN.
 */
function sqliteTrips(side: Side): number {
	let trips = 0;
	for (const node of side.nodes) {
		try {
			const counts = JSON.parse(readFileSync(`/tmp/counts-${node.pid}.json`, "utf8")) as Record<string, number>;
			trips += Object.values(counts).reduce((sum, n) => sum + n, 0);
		} catch {
			return NaN;
		}
	}
	return trips;
}

interface Round {
	rps: number;
	p50: number;
	p99: number;
	cpuUsPerOrder: number;
	sqliteTripsPerOrder?: number;
	non2xx: number;
}

async function load(side: Side, seconds: number): Promise<Round> {
	const before = side.nodes.map(node => cpuTicks(node.pid));
	const tripsBefore = sqliteTrips(side);
	const result = await autocannon({
		url: side.baseUrl,
		connections: CONNECTIONS,
		duration: seconds,
		timeout: 10,
		requests: [orderRequest(side.buyers, side.productIds)]
	});
	const ticks = side.nodes.reduce((sum, node, i) => sum + cpuTicks(node.pid) - before[i], 0);
	const orders = result.requests.total;
	// The preload writes its counts every 500 ms.
	await new Promise(resolve => setTimeout(resolve, 600));
	const trips = sqliteTrips(side) - tripsBefore;
	return {
		rps: Math.round(orders / seconds),
		p50: result.latency.p50,
		p99: result.latency.p99,
		cpuUsPerOrder: Math.round(((ticks / CLK_TCK) * 1e6) / Math.max(1, orders)),
		...(Number.isNaN(trips) ? {} : { sqliteTripsPerOrder: Math.round((trips / Math.max(1, orders)) * 10) / 10 }),
		non2xx: result.non2xx + result.errors + result.timeouts
	};
}

async function main(): Promise<void> {
	if (!TOPOLOGY && !OLD_ROOT) throw new Error("--old <root>: the checkout to compare against (its dist/ built)");
	const sides = TOPOLOGY
		? [await startSide("old", TOPOLOGY_ROOT, "", BOTH_ENV, false), await startSide("new", TOPOLOGY_ROOT, CPU_PROF, BOTH_ENV, true)]
		: [await startSide("old", OLD_ROOT, "", BOTH_ENV), await startSide("new", ROOT, CPU_PROF, { ...BOTH_ENV, ...NEW_ENV })];
	if (TOPOLOGY) log(`topology: "old" is ${TOPOLOGY_ROOT} in one process, "new" the same code as five processes on NATS`);
	try {
		for (const side of sides) await load(side, 2); // warm-up
		const rounds: Record<string, Round[]> = { old: [], new: [] };
		for (let round = 1; round <= ROUNDS; round++) {
			for (const side of round % 2 ? sides : [...sides].reverse()) {
				const figures = await load(side, SECONDS);
				rounds[side.name].push(figures);
				log(`round ${round} ${side.name}: ${JSON.stringify(figures)}`);
			}
		}
		const summary = Object.fromEntries(
			Object.entries(rounds).map(([name, list]) => [
				name,
				{
					rps: median(list.map(r => r.rps)),
					p50: median(list.map(r => r.p50)),
					p99: median(list.map(r => r.p99)),
					cpuUsPerOrder: median(list.map(r => r.cpuUsPerOrder)),
					non2xx: list.reduce((sum, r) => sum + r.non2xx, 0)
				}
			])
		);
		const ratios = rounds.new.map((r, i) => Math.round((r.rps / rounds.old[i].rps) * 100) / 100);
		process.stdout.write(`${JSON.stringify({ nats: NATS, seconds: SECONDS, rounds: ROUNDS, summary, newOverOldPerRound: ratios }, null, 2)}\n`);
	} finally {
		for (const side of sides) {
			await Promise.all(side.nodes.map(node => node.stop()));
			await side.nats?.stop();
		}
	}
}

main().catch(err => {
	process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
	process.exit(1);
});
