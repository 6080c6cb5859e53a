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
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { CLUSTER_LAYOUT } from "./cluster-layout";
import { listenForControl, sendControl } from "./cluster-control";
import { startNginx, type Nginx } from "./nginx";
import { NodeProcess, rollingRestart, startBusWatcher, summaryLine } from "./roll";
import { busNodesOf, natsUrlFor, writeNatsClusterConfig, type BusRole } from "./nats-auth";
import { ROOT as root } from "./paths";

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

// `npm run cluster -- roll`: ask the cluster running on this DATA_DIR to roll, and print what it says.
if (process.argv[2] === "roll") {
	void sendControl(dataDir, "roll").then(code => process.exit(code));
}
const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
// One secret for every node: a token from one users node must be good on any other.
const jwtSecret = process.env.JWT_SECRET || randomBytes(32).toString("hex");
// One transit key for every node, never printed.
const transitKey = process.env.TRANSIT_KEY || randomBytes(32).toString("hex");

// Every node runs one service: its role on the bus, and its NATS user. The REPL joins as ops-1.
const OPS_NODE_ID = "ops-1";
// The roll's watcher (scripts/roll.ts) joins as the ops role too, under its own node id.
const ROLL_NODE_ID = "ops-roll";
const busNodes = busNodesOf(CLUSTER_LAYOUT, [OPS_NODE_ID, ROLL_NODE_ID]);
const natsAuth = process.argv[2] === "roll" || externalTransporter ? null : writeNatsClusterConfig({ servers: natsServers, nodes: busNodes, env: process.env });
const transporterFor = (role: BusRole) =>
	externalTransporter ??
	natsUrlFor(
		role,
		natsAuth!.passwords[role],
		natsServers.map(server => server.listen)
	);

// No process started here gets the roles' NATS passwords (nor the route password) an operator may have set.
const inheritedEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^NATS_[A-Z]+_PASSWORD$/.test(key)));

const nats: ChildProcess[] = [];
const nodes: NodeProcess[] = [];
let nginx: Nginx | null = null;
let stopping = false;
let rolling = false;

function pipeOutput(name: string, child: ChildProcess) {
	for (const stream of [child.stdout, child.stderr]) {
		if (stream) readline.createInterface({ input: stream }).on("line", line => console.log(`${name.padEnd(12)}| ${line}`));
	}
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
	// Own process group: a Ctrl-C reaches this script only, which stops the nodes first and NATS last.
	const child = spawn(command, args, { cwd: root, env: { ...inheritedEnv, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
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
	// The balancer first (it answers what it carries), then every node at once, NATS last.
	const exits = (nginx ? nginx.stop() : Promise.resolve()).then(() => Promise.all(nodes.map(node => node.stop())));
	// NATS last, so that every node can say goodbye to the others.
	void exits.then(() => {
		for (const server of nats) server.kill("SIGTERM");
		if (natsAuth) rmSync(natsAuth.dir, { recursive: true, force: true });
		process.exit(0);
	});
}

if (process.argv[2] !== "roll") {
	process.on("SIGINT", stopAll);
	process.on("SIGTERM", stopAll);
}

if (natsAuth) {
	// What `npm run repl` needs to join this cluster (the ops user may call every node): private, like the config.
	const opsEnv = path.join(natsAuth.dir, "ops.env");
	// METRICS_PORT: the base port, which no node of the cluster takes (they have base + 1, + 2, ...); without it the
	// REPL took the default 3030 and died on EADDRINUSE when the cluster ran on other ports beside something on 3030.
	writeFileSync(opsEnv, `NODEID=${OPS_NODE_ID}\nTRANSPORTER=${transporterFor("ops")}\nTRANSIT_KEY=${transitKey}\nMETRICS_PORT=${metricsBase}\n`, {
		mode: 0o600
	});
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

/** One restart of every node, one at a time, for the control socket (`npm run cluster -- roll`). */
async function roll(say: (line: string) => void): Promise<boolean> {
	if (rolling || stopping) {
		say(rolling ? "A roll is already running." : "The cluster is stopping.");
		return false;
	}
	rolling = true;
	const log = (line: string) => {
		console.log(`${"roll".padEnd(12)}| ${line}`);
		say(line);
	};
	const watcher = await startBusWatcher({ url: transporterFor("ops"), nodeID: ROLL_NODE_ID, transitKey: Buffer.from(transitKey, "hex") });
	try {
		// Let the watcher learn every node before the first one goes.
		await new Promise(resolve => setTimeout(resolve, 1500));
		const gateways = nodes.filter(node => node.isGateway);
		const upstreams = (out?: NodeProcess) => gateways.map(node => ({ address: `127.0.0.1:${node.spec.port}`, down: node === out }));
		const summary = await rollingRestart({
			nodes,
			watcher,
			balancer: nginx ? { takeOut: node => nginx!.reload(upstreams(node)), putBack: () => nginx!.reload(upstreams()) } : undefined,
			log,
			// Ctrl-C during a roll: the node being restarted is not started again behind stopAll's back.
			shouldContinue: () => !stopping
		});
		log(summaryLine(summary));
		return true;
	} catch (err) {
		log(`Roll stopped: ${(err as Error).message}`);
		return false;
	} finally {
		rolling = false;
		await watcher.stop();
	}
}

// Give NATS a moment; the nodes reconnect by themselves if they are early.
if (process.argv[2] !== "roll")
	setTimeout(
		() => {
			let gateway = 0;
			CLUSTER_LAYOUT.forEach((layoutNode, i) => {
				const gatewayPort = layoutNode.services.includes("api") ? port + 1 + gateway++ : undefined;
				const node = new NodeProcess(
					{
						nodeID: layoutNode.nodeID,
						services: layoutNode.services,
						port: gatewayPort,
						env: {
							...inheritedEnv,
							NODEID: layoutNode.nodeID,
							SERVICES: layoutNode.services.join(","),
							TRANSPORTER: transporterFor(layoutNode.services.join(",") as BusRole),
							TRANSIT_KEY: transitKey,
							METRICS_PORT: String(metricsBase + 1 + i),
							DATA_DIR: dataDir,
							JWT_SECRET: jwtSecret,
							// Gateways behind nginx: on loopback, each on its own port.
							// Behind nginx on loopback: its X-Forwarded-For names the client (the limits per address).
							...(gatewayPort ? { PORT: String(gatewayPort), HOST: "127.0.0.1", TRUSTED_PROXIES: "127.0.0.1" } : {})
						}
					},
					{
						onLine: (nodeID, line) => console.log(`${nodeID.padEnd(12)}| ${line}`),
						onUnexpectedExit: (nodeID, code, signal) => {
							if (!stopping) console.log(`${nodeID.padEnd(12)}| exited (${signal ?? code})`);
						}
					}
				);
				node.start();
				nodes.push(node);
			});
			const where = externalTransporter
				? externalTransporter.replace(/\/\/[^@/,]*@/g, "//***@")
				: `a cluster of ${NATS_SERVERS} nats-servers on 127.0.0.1:${natsPort}-${natsPort + NATS_SERVERS - 1} (a user per role, encrypted)`;
			const gateways = nodes.filter(node => node.isGateway).map(node => node.spec.port);
			console.log(
				`Cluster starting: ${CLUSTER_LAYOUT.length} nodes on ${where}, data in ${dataDir}, nginx on ${host}:${port} in front of the gateways on ports ${gateways.join(", ")}`
			);
			startNginx({
				prefix: path.join(dataDir, "nginx"),
				listen: `${host}:${port}`,
				upstreams: gateways.map(gatewayPort => ({ address: `127.0.0.1:${gatewayPort}` })),
				onLine: line => console.log(`${"nginx".padEnd(12)}| ${line}`)
			}).then(
				started => {
					nginx = started;
					if (stopping) void started.stop();
				},
				(err: Error) => {
					console.error(`${err.message}`);
					stopAll();
				}
			);
			mkdirSync(dataDir, { recursive: true });
			listenForControl(dataDir, (command, say) => {
				if (command === "roll") return roll(say);
				say(`Unknown command "${command}" (known: roll).`);
				return Promise.resolve(false);
			}).then(
				() => console.log(`To restart every node one at a time: npm run cluster -- roll (DATA_DIR=${dataDir})`),
				(err: Error) => console.error(`No roll control: ${err.message}`)
			);
		},
		process.env.TRANSPORTER ? 0 : 300
	);
