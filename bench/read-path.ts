/**
 * Catalogue reads, old gateway against new, against the bare server (issue 10): `GET /api/products/:id`
 * with ids drawn Zipf (s = 1, fixed seed) over 1,000 seeded products, in alternated rounds.
 *
 *   node dist/bench/read-path.js --old <checkout> [--rounds 3] [--seconds 5] [--cluster] [--profile]
 *
 * Sides: the bare node:http server answering the new shop's very bytes from memory; the shop in one
 * process from `--old` (a checkout with its own dist/ and node_modules/) and from this one; with
 * `--cluster`, each also as a gateway node, an inventory node and a users node on one nats-server.
 * Per side: req/s per round, the ratios per round (median, min-max), CPU-µs per request (utime +
 * stime of the side's processes, /proc/<pid>/stat, over the rounds), and the cache hit rates (the
 * gateway's product cache, Moleculer's cacher of `inventory.get`) from the nodes' /metrics.
 * `--profile` runs only the new single process (`--profile old`: the old one), under `--cpu-prof`, and
 * prints where its time went.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { startNats, type NatsServer } from "../test/support/nats";
import { eventually, ROOT, startShop, tempDataDir } from "../test/support/shop";
import { zipfSampler } from "./zipf";
import { CACHE_COUNTERS, cacheHits, CLK_TCK, cpuTicks, median, round2, scrapeCounters } from "./measure";
import { BENCH_ENV, BENCH_SEED, benchAdminToken, option, progressLog, seedProducts, startBare } from "./setup";

const argv = process.argv.slice(2);
const OLD_DIR = option("--old", "") && path.resolve(option("--old", ""));
const ROUNDS = Number(option("--rounds", "3"));
const SECONDS = Number(option("--seconds", "5"));
const PRODUCTS = Number(option("--products", "1000"));
const CONNECTIONS = 32;
const WITH_CLUSTER = argv.includes("--cluster");
const PROFILE = argv.includes("--profile");
/** `--profile old`: profile the `--old` checkout instead. */
const PROFILE_OLD = PROFILE && option("--profile", "") === "old";
const ZIPF_S = 1;

const progress = progressLog("read-path");

// --- Processes -----------------------------------------------------------------------------------

interface Node {
	name: string;
	child: ChildProcess;
	baseUrl: string;
	metricsUrl: string;
	output(): string;
	stop(): Promise<void>;
}

/** A shop node from a checkout (`dir`: its dist/ and node_modules/), as `npm start` runs it. */
async function startNode(
	dir: string,
	name: string,
	env: Record<string, string>,
	options: { wait: "ready" | "health" | "none"; nodeArgs?: string[] }
): Promise<Node> {
	const shop = await startShop({ root: dir, env: { ...BENCH_ENV, ...env }, waitFor: options.wait, nodeArgs: options.nodeArgs, timeoutMs: 60_000 });
	return {
		name,
		child: shop.child,
		baseUrl: shop.baseUrl,
		metricsUrl: `http://127.0.0.1:${shop.metricsPort}/metrics`,
		output: shop.output,
		stop: async () => void (await shop.stop())
	};
}

// --- Shops ---------------------------------------------------------------------------------------

interface Side {
	name: string;
	baseUrl: string;
	/** The product paths, by popularity rank. */
	paths: string[];
	/** Every process of the side (for CPU), the gateway first. */
	nodes: Node[];
	stop(): Promise<void>;
}

async function seed(name: string, baseUrl: string): Promise<string[]> {
	progress(`${name}: seeding ${PRODUCTS} products`);
	const ids = await seedProducts(baseUrl, await benchAdminToken(baseUrl), PRODUCTS);
	return ids.map(id => `/api/products/${id}`);
}

async function singleSide(name: string, dir: string, nodeArgs: string[] = []): Promise<Side> {
	progress(`starting ${name}`);
	const node = await startNode(dir, name, { DATA_DIR: tempDataDir("shop-reads-") }, { wait: "ready", nodeArgs });
	return { name, baseUrl: node.baseUrl, paths: await seed(name, node.baseUrl), nodes: [node], stop: () => node.stop() };
}

/** A gateway node, an inventory node and a users node (for the admin's login) on NATS. */
async function clusterSide(name: string, dir: string, nats: NatsServer): Promise<Side> {
	progress(`starting ${name}`);
	const env = { DATA_DIR: tempDataDir("shop-reads-cluster-"), TRANSPORTER: nats.url, JWT_SECRET: "read-path-bench-secret-0123456789" };
	const tag = name.replace(/\W+/g, "-");
	const backends = await Promise.all(
		["inventory", "users"].map(service => startNode(dir, `${name} ${service}`, { ...env, SERVICES: service, NODEID: `${tag}-${service}` }, { wait: "none" }))
	);
	const gateway = await startNode(dir, `${name} api`, { ...env, SERVICES: "api", NODEID: `${tag}-api` }, { wait: "health" });
	// The gateway answers health at once; the catalogue and the admin's login once it has seen the inventory and users nodes.
	await eventually(
		async () => {
			const catalogue = await fetch(`${gateway.baseUrl}/api/products?pageSize=1`).catch(() => null);
			return (
				catalogue?.ok === true &&
				(await benchAdminToken(gateway.baseUrl).then(
					() => true,
					() => false
				))
			);
		},
		30_000,
		200
	).catch(() => {
		throw new Error(`${name}: the gateway never saw its backends`);
	});
	const nodes = [gateway, ...backends];
	return {
		name,
		baseUrl: gateway.baseUrl,
		paths: await seed(name, gateway.baseUrl),
		nodes,
		stop: async () => void (await Promise.all(nodes.map(n => n.stop())))
	};
}

async function bareSide(routes: Record<string, string>): Promise<Side> {
	const bare = await startBare(routes);
	const node: Node = { name: "bare", child: bare.child, baseUrl: bare.url, metricsUrl: "", output: () => "", stop: async () => bare.stop() };
	return { name: "bare", baseUrl: node.baseUrl, paths: Object.keys(routes), nodes: [node], stop: node.stop };
}

// --- Load ----------------------------------------------------------------------------------------

interface Round {
	rps: number;
	requests: number;
	non2xx: number;
	cpuTicks: number[];
}

async function load(side: Side, seconds: number, seed: number): Promise<Round> {
	const next = zipfSampler(side.paths.length, ZIPF_S, seed);
	const before = side.nodes.map(node => cpuTicks(node.child.pid));
	const result = await autocannon({
		url: side.baseUrl,
		connections: CONNECTIONS,
		duration: seconds,
		timeout: 10,
		requests: [{ method: "GET", setupRequest: (request: autocannon.Request) => ({ ...request, path: side.paths[next()] }) }]
	});
	const after = side.nodes.map(node => cpuTicks(node.child.pid));
	return { rps: result.requests.total / seconds, requests: result.requests.total, non2xx: result.non2xx, cpuTicks: after.map((ticks, i) => ticks - before[i]) };
}

// --- Profile summary ------------------------------------------------------------------------------

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	hitCount?: number;
}

/** Self time by function and by package, from a `--cpu-prof` profile. */
function summariseProfile(file: string): string {
	const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
	const selfUs = new Map<number, number>();
	profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
	const idle = new Set(profile.nodes.filter(node => node.callFrame.functionName === "(idle)").map(node => node.id));
	for (const id of idle) selfUs.delete(id);
	const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
	const byFunction = new Map<string, number>();
	const byArea = new Map<string, number>();
	for (const node of profile.nodes) {
		const us = selfUs.get(node.id) ?? 0;
		if (us === 0) continue;
		const { functionName, url, lineNumber } = node.callFrame;
		const file = url.replace(/^file:\/\//, "");
		const short = file.includes("node_modules/") ? file.slice(file.lastIndexOf("node_modules/") + 13) : file.replace(`${ROOT}/`, "");
		const key = `${functionName || "(anonymous)"} ${short ? `${short}:${lineNumber + 1}` : ""}`.trim();
		byFunction.set(key, (byFunction.get(key) ?? 0) + us);
		const area = !file
			? functionName.startsWith("(")
				? functionName
				: "(native)"
			: file.includes("node_modules/")
				? file.slice(file.lastIndexOf("node_modules/") + 13).split("/")[0]
				: file.startsWith("node:")
					? file.split("/")[0].replace(/^node:internal.*/, "node:internal")
					: "shop";
		byArea.set(area, (byArea.get(area) ?? 0) + us);
	}
	const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
	const top = (map: Map<string, number>, n: number) =>
		[...map.entries()]
			.sort((a, b) => b[1] - a[1])
			.slice(0, n)
			.map(([key, us]) => `  ${pct(us)}  ${key}`)
			.join("\n");
	return `self time by area:\n${top(byArea, 12)}\nself time by function:\n${top(byFunction, 25)}`;
}

// --- Main ----------------------------------------------------------------------------------------

async function main() {
	if (!OLD_DIR || !existsSync(path.join(OLD_DIR, "dist/moleculer.config.js")))
		throw new Error(`--old <checkout>: the code to compare against, built (its dist/moleculer.config.js); ${OLD_DIR} has none`);
	const profileDir = tempDataDir("shop-reads-profile-");
	/** Every side started, to stop them whatever happens. */
	const started: Side[] = [];
	const natsServers: NatsServer[] = [];
	try {
		const newSingle = await singleSide(
			PROFILE_OLD ? "old single" : "new single",
			PROFILE_OLD ? OLD_DIR : ROOT,
			PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []
		);
		started.push(newSingle);
		if (PROFILE) {
			// The new shop alone, so that its profile holds little else than the load.
			for (let round = 0; round < ROUNDS; round++) {
				const result = await load(newSingle, SECONDS, BENCH_SEED + round);
				progress(`${Math.round(result.rps)} req/s, ${Math.round((result.cpuTicks[0] * (1e6 / CLK_TCK)) / result.requests)} CPU-µs/req`);
			}
		} else await compareAll(newSingle, started, natsServers);
	} finally {
		await Promise.all(started.map(side => side.stop()));
		await Promise.all(natsServers.map(server => server.stop()));
	}
	if (PROFILE) {
		const files = readdirSync(profileDir).filter(file => file.endsWith(".cpuprofile"));
		for (const file of files)
			process.stdout.write(
				`\nprofile of the ${PROFILE_OLD ? "old" : "new"} single process (${path.join(profileDir, file)}):\n${summariseProfile(path.join(profileDir, file))}\n`
			);
	}
}

/** Every side in alternated rounds; the table. */
async function compareAll(newSingle: Side, started: Side[], natsServers: NatsServer[]): Promise<void> {
	const start = async (side: Promise<Side>) => {
		started.push(await side);
		return started[started.length - 1];
	};
	const oldSingle = await start(singleSide("old single", OLD_DIR));
	// The bare server answers the new shop's bytes, per path, from memory.
	const routes: Record<string, string> = {};
	for (const urlPath of newSingle.paths) routes[urlPath] = await fetch(newSingle.baseUrl + urlPath).then(res => res.text());
	const sides = [await start(bareSide(routes)), oldSingle, newSingle];
	if (WITH_CLUSTER) {
		// One nats-server each: both shops' nodes share the namespace.
		natsServers.push(await startNats(), await startNats());
		sides.push(await start(clusterSide("old NATS", OLD_DIR, natsServers[0])), await start(clusterSide("new NATS", ROOT, natsServers[1])));
	}

	progress("warm-up");
	for (const side of sides) await load(side, 2, BENCH_SEED);
	const before = new Map<Side, Record<string, number>>();
	await new Promise(resolve => setTimeout(resolve, 1100));
	for (const side of sides)
		before.set(
			side,
			await scrapeCounters(
				side.nodes.slice(0, 2).map(node => node.metricsUrl),
				CACHE_COUNTERS
			)
		);
	const rounds = new Map<Side, Round[]>(sides.map(side => [side, []]));
	for (let round = 1; round <= ROUNDS; round++) {
		for (const side of sides) {
			progress(`round ${round}/${ROUNDS}: ${side.name}`);
			rounds.get(side)!.push(await load(side, SECONDS, BENCH_SEED + round));
		}
	}
	await new Promise(resolve => setTimeout(resolve, 1100));

	const lines: string[] = [];
	lines.push(`GET /api/products/:id, ${PRODUCTS} products drawn Zipf(s=${ZIPF_S}), ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s, alternated`);
	lines.push("side            req/s per round               CPU-µs/req (per process)       non-2xx");
	for (const side of sides) {
		const list = rounds.get(side)!;
		const requests = list.reduce((sum, r) => sum + r.requests, 0);
		const perProcess = side.nodes.map((_, i) => (list.reduce((sum, r) => sum + r.cpuTicks[i], 0) * (1e6 / CLK_TCK)) / requests);
		const cpu = `${Math.round(perProcess.reduce((a, b) => a + b, 0))} (${perProcess.map(us => Math.round(us)).join(" + ")})`;
		lines.push(
			`${side.name.padEnd(15)} ${list
				.map(r => Math.round(r.rps))
				.join(", ")
				.padEnd(29)} ${cpu.padEnd(30)} ${list.reduce((sum, r) => sum + r.non2xx, 0)}`
		);
	}
	const ratio = (a: Side, b: Side) => {
		const values = rounds.get(a)!.map((r, i) => r.rps / rounds.get(b)!.at(i)!.rps);
		return `${round2(median(values))} (${round2(Math.min(...values))}-${round2(Math.max(...values))})`;
	};
	const [bare, oldS, newS, oldN, newN] = sides;
	lines.push(`old single / bare: ${ratio(oldS, bare)}`);
	lines.push(`new single / bare: ${ratio(newS, bare)}   (target >= 0.75)`);
	lines.push(`new single / old single: ${ratio(newS, oldS)}`);
	if (oldN && newN) {
		lines.push(`old NATS / old single: ${ratio(oldN, oldS)}`);
		lines.push(`new NATS / new single: ${ratio(newN, newS)}   (target >= 0.5)`);
		lines.push(`new NATS / bare: ${ratio(newN, bare)}`);
	}
	for (const side of sides.slice(1)) {
		const after = await scrapeCounters(
			side.nodes.slice(0, 2).map(node => node.metricsUrl),
			CACHE_COUNTERS
		);
		const { gateway: served, cacher } = cacheHits(before.get(side)!, after);
		const gateway = served.reads > 0 ? `gateway cache ${((100 * served.hits) / served.reads).toFixed(2)}% of ${served.reads}` : "no gateway cache";
		const [gets, found] = [cacher.gets, cacher.hits];
		lines.push(`${side.name}: ${gateway}; Moleculer cacher ${gets > 0 ? ((100 * found) / gets).toFixed(2) : "-"}% of ${gets} gets`);
	}
	process.stdout.write(`\n${lines.join("\n")}\n`);
}

if (require.main === module) {
	main().catch(err => {
		process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
		process.exit(1);
	});
}
