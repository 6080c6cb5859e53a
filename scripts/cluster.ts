/**
 * `npm run cluster`: the shop as separate node processes joined by NATS, on one machine.
 *
 * Starts a local nats-server (unless TRANSPORTER points at one already), then one process per node
 * of CLUSTER_LAYOUT with its own NODEID and METRICS_PORT (METRICS_PORT + 1, + 2, ...), all sharing
 * DATA_DIR (default ./data/cluster) and one JWT_SECRET. Ctrl-C (or SIGTERM) stops every node
 * gracefully, then NATS. Each output line is prefixed with the node's id.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import readline from "node:readline";
import { CLUSTER_LAYOUT } from "./cluster-layout";
import { NODE_ARGS, ROOT as root } from "./paths";

const natsPort = Number(process.env.NATS_PORT || 4222);
const transporter = process.env.TRANSPORTER || `nats://127.0.0.1:${natsPort}`;
const metricsBase = Number(process.env.METRICS_PORT || 3030);
const dataDir = path.resolve(process.env.DATA_DIR || path.join(root, "data/cluster"));
// One secret for every node: a token from one users node must be good on any other.
const jwtSecret = process.env.JWT_SECRET || randomBytes(32).toString("hex");

let nats: ChildProcess | null = null;
const nodes: ChildProcess[] = [];
let stopping = false;

function pipeOutput(name: string, child: ChildProcess) {
	for (const stream of [child.stdout, child.stderr]) {
		if (stream) readline.createInterface({ input: stream }).on("line", line => console.log(`${name.padEnd(12)}| ${line}`));
	}
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
	// Own process group: a Ctrl-C reaches this script only, which stops the nodes first and NATS last.
	const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
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
		nats?.kill("SIGTERM");
		process.exit(0);
	});
}

process.on("SIGINT", stopAll);
process.on("SIGTERM", stopAll);

if (!process.env.TRANSPORTER) {
	nats = start("nats", "nats-server", ["-a", "127.0.0.1", "-p", String(natsPort)]);
	nats.on("error", err => {
		console.error(`Cannot start nats-server (${err.message}); install it (apt-get install nats-server) or set TRANSPORTER.`);
		process.exit(1);
	});
}

// Give NATS a moment; the nodes reconnect by themselves if they are early.
setTimeout(
	() => {
		CLUSTER_LAYOUT.forEach((node, i) => {
			const child = start(node.nodeID, process.execPath, [...NODE_ARGS], {
				NODEID: node.nodeID,
				SERVICES: node.services.join(","),
				TRANSPORTER: transporter,
				METRICS_PORT: String(metricsBase + 1 + i),
				DATA_DIR: dataDir,
				JWT_SECRET: jwtSecret
			});
			nodes.push(child);
		});
		console.log(`Cluster starting: ${CLUSTER_LAYOUT.length} nodes on ${transporter}, data in ${dataDir}, gateway on port ${process.env.PORT || 3000}`);
	},
	process.env.TRANSPORTER ? 0 : 300
);
