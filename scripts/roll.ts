/**
 * A rolling restart of the shop's nodes, one at a time, under load, with no failed request
 * (README "Operating the shop / Rolling restart"). Used by `npm run cluster -- roll` (through the
 * running cluster's control socket) and by test/cluster/roll.spec.ts, which runs this same code.
 *
 * For each node, in the layout's order:
 *   1. a gateway is first taken out of nginx (marked `down`, graceful reload: the old nginx workers
 *      finish the requests they carry), so no new request reaches it while it drains;
 *   2. SIGTERM, and wait for the exit: the node leaves every registry first (Moleculer's empty INFO,
 *      then `registry.stopDelay`), refuses what still arrives with a retryable error the caller
 *      retries on another node (lib/refused-retry.ts), lets calls in flight finish, closes its
 *      databases last;
 *   3. start it again with the same environment, and wait until it is ready: a gateway answers 200
 *      on its own `/api/health/ready` (it sees every service) and is put back into nginx; any other
 *      node is seen, as its new instance with its services, by every other running node (asked
 *      through Moleculer's `$node.services`, by a watcher broker on the bus as the `ops` role).
 */
import { spawn, type ChildProcess } from "node:child_process";
import readline from "node:readline";
import { ServiceBroker } from "moleculer";
import { natsTransporter, transitEncryption } from "../lib/bus";
import { NODE_ARGS, ROOT } from "./paths";

export interface NodeSpec {
	nodeID: string;
	services: readonly string[];
	/** The node's whole environment (nothing inherited). */
	env: NodeJS.ProcessEnv;
	/** A gateway's own HTTP port (behind nginx). */
	port?: number;
}

/** A shop node run as a child process (`node moleculer-runner --config dist/moleculer.config.js`), restartable with the same environment. */
export class NodeProcess {
	child: ChildProcess | null = null;
	private expectedExit = false;
	private exitedPromise: Promise<number | null> = Promise.resolve(null);

	constructor(
		readonly spec: NodeSpec,
		private readonly hooks: {
			onLine?: (nodeID: string, line: string) => void;
			onUnexpectedExit?: (nodeID: string, code: number | null, signal: string | null) => void;
		} = {}
	) {}

	get nodeID(): string {
		return this.spec.nodeID;
	}

	get isGateway(): boolean {
		return this.spec.services.includes("api");
	}

	get running(): boolean {
		return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
	}

	start(): ChildProcess {
		if (this.running) throw new Error(`${this.nodeID} is already running`);
		this.expectedExit = false;
		// Own process group: a Ctrl-C in the operator's terminal reaches the cluster script only, which stops the nodes in order.
		const child = spawn(process.execPath, [...NODE_ARGS], { cwd: ROOT, env: this.spec.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
		for (const stream of [child.stdout!, child.stderr!]) readline.createInterface({ input: stream }).on("line", line => this.hooks.onLine?.(this.nodeID, line));
		this.exitedPromise = new Promise(resolve =>
			child.once("exit", (code, signal) => {
				if (!this.expectedExit) this.hooks.onUnexpectedExit?.(this.nodeID, code, signal);
				resolve(code);
			})
		);
		this.child = child;
		return child;
	}

	/** SIGTERM (the node's ordered shutdown), and wait for its exit; resolves with the exit code. */
	async stop(): Promise<number | null> {
		this.expectedExit = true;
		if (this.running) this.child!.kill("SIGTERM");
		return this.exitedPromise;
	}

	async kill(): Promise<void> {
		this.expectedExit = true;
		if (this.running) this.child!.kill("SIGKILL");
		await this.exitedPromise;
	}
}

/** One service of a node's registry, as Moleculer's `$node.services` lists it (`grouping: false`). */
export interface ServiceItem {
	name: string;
	nodeID: string;
}

/** The available, non-internal services `viewer` sees, each with the node offering it: the node's own registry, asked through `$node.services`. */
export function servicesSeenBy(broker: ServiceBroker, viewer: string): Promise<ServiceItem[]> {
	return broker.call<ServiceItem[], object>("$node.services", { onlyAvailable: true, skipInternal: true, grouping: false }, { nodeID: viewer });
}

/** A broker with no services on the shop's bus, that asks nodes what they see. */
export interface BusWatcher {
	broker: ServiceBroker;
	/** The instance id of a node as this watcher's registry knows it, if available. */
	instanceOf(nodeID: string): string | undefined;
	/** True when `viewer` sees `nodeID` offering every one of `services`. */
	sees(viewer: string, nodeID: string, services: readonly string[]): Promise<boolean>;
	stop(): Promise<void>;
}

/** `url` carries the credentials of a user that may call every node (the `ops` role on the closed bus). */
export async function startBusWatcher(options: { url: string; nodeID: string; transitKey?: Buffer | null }): Promise<BusWatcher> {
	const broker = new ServiceBroker({
		namespace: "shop",
		nodeID: options.nodeID,
		transporter: natsTransporter(options.url),
		middlewares: options.transitKey ? [transitEncryption(options.transitKey)] : [],
		logger: false,
		heartbeatInterval: 1,
		heartbeatTimeout: 4,
		requestTimeout: 2000,
		retryPolicy: { enabled: false },
		metrics: { enabled: false },
		tracing: { enabled: false }
	});
	await broker.start();
	return {
		broker,
		instanceOf(nodeID) {
			const node = broker.registry.nodes.get(nodeID);
			return node?.available ? (node as unknown as { instanceID?: string }).instanceID : undefined;
		},
		async sees(viewer, nodeID, services) {
			try {
				const items = await servicesSeenBy(broker, viewer);
				return services.every(name => items.some(item => item.name === name && item.nodeID === nodeID));
			} catch {
				return false;
			}
		},
		stop: () => broker.stop()
	};
}

/** How the roll takes a gateway out of the load balancer and puts it back. */
export interface Balancer {
	takeOut(node: NodeProcess): Promise<void>;
	putBack(node: NodeProcess): Promise<void>;
}

export interface RollOptions {
	nodes: NodeProcess[];
	watcher: BusWatcher;
	balancer?: Balancer;
	/** Each step, as a line for the operator. */
	log?: (line: string) => void;
	/** How long one node may take to be ready again (default 60 s). */
	readyTimeoutMs?: number;
	/** False once the cluster is stopping (Ctrl-C during a roll): a stopped node is not started again. */
	shouldContinue?: () => boolean;
}

export interface RollSummary {
	restarted: number;
	ms: number;
	nodes: Array<{ nodeID: string; stopMs: number; readyMs: number }>;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, missing?: () => string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${missing ? ` (${missing()})` : ""}`);
		await sleep(100);
	}
}

async function gatewayReady(port: number): Promise<boolean> {
	try {
		const res = await fetch(`http://127.0.0.1:${port}/api/health/ready`);
		await res.arrayBuffer();
		return res.status === 200;
	} catch {
		return false;
	}
}

/** Restarts every node, one at a time (see the top of this file); throws, leaving the rest alone, when a node does not come back. */
export async function rollingRestart(options: RollOptions): Promise<RollSummary> {
	const log = options.log ?? (() => undefined);
	const timeoutMs = options.readyTimeoutMs ?? 60_000;
	const started = Date.now();
	const done: RollSummary["nodes"] = [];
	for (const [i, node] of options.nodes.entries()) {
		const step = `[${i + 1}/${options.nodes.length}] ${node.nodeID}`;
		const before = options.watcher.instanceOf(node.nodeID);
		log(`${step}: stopping`);
		const t0 = Date.now();
		if (node.isGateway && options.balancer) await options.balancer.takeOut(node);
		const code = await node.stop();
		const stopMs = Date.now() - t0;
		log(`${step}: stopped in ${stopMs} ms (exit ${code})`);
		if (options.shouldContinue && !options.shouldContinue()) throw new Error(`the cluster is stopping: ${node.nodeID} stays stopped`);
		node.start();
		const t1 = Date.now();
		if (node.isGateway) {
			if (node.spec.port == null) throw new Error(`gateway ${node.nodeID} has no port`);
			await waitFor(`${node.nodeID} ready`, () => gatewayReady(node.spec.port!), timeoutMs);
			if (options.balancer) await options.balancer.putBack(node);
		} else {
			// Seen again, as a new instance, by every other running node: each of them may call it now.
			const viewers = options.nodes.filter(other => other !== node && other.running).map(other => other.nodeID);
			// What is still missing, for the message when it never comes.
			let missing = "its new instance, as the watcher sees it";
			await waitFor(
				`${node.nodeID} seen by the others`,
				async () => {
					const instance = options.watcher.instanceOf(node.nodeID);
					if (!instance || instance === before) return false;
					const seen = await Promise.all(viewers.map(viewer => options.watcher.sees(viewer, node.nodeID, node.spec.services)));
					missing = `not yet seen by ${viewers.filter((_, i) => !seen[i]).join(", ")}`;
					return seen.every(Boolean);
				},
				timeoutMs,
				() => missing
			);
		}
		const readyMs = Date.now() - t1;
		log(`${step}: ready again in ${readyMs} ms`);
		done.push({ nodeID: node.nodeID, stopMs, readyMs });
	}
	return { restarted: done.length, ms: Date.now() - started, nodes: done };
}

/** The line the operator sees at the end of a roll. */
export function summaryLine(summary: RollSummary): string {
	const slowest = [...summary.nodes].sort((a, b) => b.stopMs + b.readyMs - (a.stopMs + a.readyMs))[0];
	return (
		`Rolling restart done: ${summary.restarted} node(s) restarted one at a time in ${(summary.ms / 1000).toFixed(1)} s` +
		(slowest ? ` (slowest ${slowest.nodeID}: stop ${slowest.stopMs} ms, ready ${slowest.readyMs} ms)` : "")
	);
}
