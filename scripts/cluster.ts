/**
 * `npm run cluster`: the shop as separate node processes joined by NATS, on one machine.
 *
 * Starts three local nats-servers joined as one NATS cluster (unless TRANSPORTER points at a bus
 * already), then one process per node
 * of CLUSTER_LAYOUT with its own NODEID and METRICS_PORT (METRICS_PORT + 1, + 2, ...), all sharing
 * DATA_DIR (default ./data/cluster) and one JWT_SECRET. Ctrl-C (or SIGTERM) stops every node
 * gracefully, then NATS. Each output line is prefixed with the node's id.
 *
 * The NATS cluster: servers on NATS_PORT, +1, +2 (clients), NATS_CLUSTER_PORT, +1, +2 (routes,
 * authenticated with a route user, password NATS_ROUTE_PASSWORD or random for this run) and
 * NATS_MONITOR_PORT, +1, +2 (monitoring: `/connz` shows which node is connected where), all on
 * 127.0.0.1. Every node gets the three URLs; losing one server moves its nodes to the others.
 *
 * The bus is closed as in production (README "Security and trust"): each nats-server gets a config
 * file with one user per role and its subject permissions (scripts/nats-auth.ts), in a private
 * temporary directory (0700, files 0600) removed at stop; passwords are NATS_<ROLE>_PASSWORD or random
 * for this run, and each node logs in with its role's. TRANSIT_KEY (given, or random for this run)
 * encrypts every packet. An `ops.env` file next to the config holds what a REPL needs to join.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { CLUSTER_LAYOUT } from "./cluster-layout";
import { busNodesOf, natsUrlFor, writeNatsClusterConfig, type BusRole } from "./nats-auth";
import { NODE_ARGS, ROOT as root } from "./paths";

const natsPort = Number(process.env.NATS_PORT || 4222);
const natsClusterPort = Number(process.env.NATS_CLUSTER_PORT || 6222);
const natsMonitorPort = Number(process.env.NATS_MONITOR_PORT || 8222);
const NATS_SERVERS = 3;
const natsServers = Array.from({ length: NATS_SERVERS }, (_, i) => ({
	listen: `127.0.0.1:${natsPort + i}`,
	cluster: `127.0.0.1:${natsClusterPort + i}`,
	http: `127.0.0.1:${natsMonitorPort + i}`
}));
const externalTransporter = process.env.TRANSPORTER || null;
const metricsBase = Number(process.env.METRICS_PORT || 3030);
const dataDir = path.resolve(process.env.DATA_DIR || path.join(root, "data/cluster"));
// One secret for every node: a token from one users node must be good on any other.
const jwtSecret = process.env.JWT_SECRET || randomBytes(32).toString("hex");
// One transit key for every node, never printed.
const transitKey = process.env.TRANSIT_KEY || randomBytes(32).toString("hex");

// Every node runs one service: its role on the bus, and its NATS user. The REPL joins as ops-1.
const OPS_NODE_ID = "ops-1";
const busNodes = busNodesOf(CLUSTER_LAYOUT, [OPS_NODE_ID]);
const natsAuth = externalTransporter ? null : writeNatsClusterConfig({ servers: natsServers, nodes: busNodes, env: process.env });
const transporterFor = (role: BusRole) =>
	externalTransporter ??
	natsUrlFor(
		role,
		natsAuth!.passwords[role],
		natsServers.map(server => server.listen)
	);

const nats: ChildProcess[] = [];
const nodes: ChildProcess[] = [];
let stopping = false;

function pipeOutput(name: string, child: ChildProcess) {
	for (const stream of [child.stdout, child.stderr]) {
		if (stream) readline.createInterface({ input: stream }).on("line", line => console.log(`${name.padEnd(12)}| ${line}`));
	}
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
	// Own process group: a Ctrl-C reaches this script only, which stops the nodes first and NATS last.
	// No node gets the other roles' NATS passwords (nor the route password) an operator may have set here.
	const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^NATS_[A-Z]+_PASSWORD$/.test(key)));
	const child = spawn(command, args, { cwd: root, env: { ...inherited, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
	pipeOutput(name, child);
	child.on("exit", (code, signal) => {
		if (!stopping) console.log(`${name.padEnd(12)}| exited (${signal ?? code})`);
	});
	return child;
}

function stopAll() {
	if (stopping) return;
	stopping = true;
	console.log("Stopping the cluster...");
	for (const node of nodes) node.kill("SIGTERM");
	const exits = nodes.map(node => new Promise(resolve => (node.exitCode !== null ? resolve(null) : node.once("exit", resolve))));
	// NATS last, so that every node can say goodbye to the others.
	void Promise.all(exits).then(() => {
		for (const server of nats) server.kill("SIGTERM");
		if (natsAuth) rmSync(natsAuth.dir, { recursive: true, force: true });
		process.exit(0);
	});
}

process.on("SIGINT", stopAll);
process.on("SIGTERM", stopAll);

if (natsAuth) {
	// What `npm run repl` needs to join this cluster (the ops user may call every node): private, like the config.
	const opsEnv = path.join(natsAuth.dir, "ops.env");
	writeFileSync(opsEnv, `NODEID=${OPS_NODE_ID}\nTRANSPORTER=${transporterFor("ops")}\nTRANSIT_KEY=${transitKey}\n`, { mode: 0o600 });
	console.log(`NATS users, permissions and routes: ${natsAuth.dir}; to attach a REPL: env $(cat ${opsEnv}) npm run repl`);
	natsAuth.configFiles.forEach((configFile, i) => {
		const server = start(`nats-${i + 1}`, "nats-server", ["-c", configFile]);
		server.on("error", err => {
			console.error(`Cannot start nats-server (${err.message}); install it (apt-get install nats-server) or set TRANSPORTER.`);
			process.exit(1);
		});
		nats.push(server);
	});
	console.log(
		`NATS cluster: clients on ${natsServers.map(server => server.listen).join(", ")}; monitoring (/connz, /routez) on ${natsServers.map(server => server.http).join(", ")}`
	);
}

// Give NATS a moment; the nodes reconnect by themselves if they are early.
setTimeout(
	() => {
		CLUSTER_LAYOUT.forEach((node, i) => {
			const child = start(node.nodeID, process.execPath, [...NODE_ARGS], {
				NODEID: node.nodeID,
				SERVICES: node.services.join(","),
				TRANSPORTER: transporterFor(node.services.join(",") as BusRole),
				TRANSIT_KEY: transitKey,
				METRICS_PORT: String(metricsBase + 1 + i),
				DATA_DIR: dataDir,
				JWT_SECRET: jwtSecret
			});
			nodes.push(child);
		});
		const where = externalTransporter
			? externalTransporter.replace(/\/\/[^@/,]*@/g, "//***@")
			: `a cluster of ${NATS_SERVERS} nats-servers on 127.0.0.1:${natsPort}-${natsPort + NATS_SERVERS - 1} (a user per role, encrypted)`;
		console.log(`Cluster starting: ${CLUSTER_LAYOUT.length} nodes on ${where}, data in ${dataDir}, gateway on port ${process.env.PORT || 3000}`);
	},
	process.env.TRANSPORTER ? 0 : 300
);
