/**
 * A real nats-server (Debian package `nats-server`) on a free loopback port, for the cluster suites
 * and the benchmark. Open by default; with `auth`, closed as `npm run cluster` runs it: one user per
 * role with the subject permissions of scripts/nats-auth.ts, passwords random per server.
 * `startNatsCluster` starts several servers joined by authenticated routes, as `npm run cluster` does.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { freePort } from "./shop";
import { BUS_ROLES, natsUrlFor, writeNatsClusterConfig, writeNatsConfig, type BusNodes, type BusRole } from "../../scripts/nats-auth";

export interface NatsServer {
	/** The server's URL, without credentials. */
	url: string;
	/** With `auth`: the URL with the credentials of a role (the TRANSPORTER of its nodes). */
	urlFor(role: BusRole): string;
	stop(): Promise<void>;
}

export interface NatsOptions {
	/** The node ids let in per role (roles left out get none); absent: no authentication at all. */
	auth?: Partial<BusNodes>;
}

function canConnect(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = connect(port, "127.0.0.1");
		socket.once("connect", () => {
			socket.destroy();
			resolve(true);
		});
		socket.once("error", () => resolve(false));
	});
}

/** Spawns nats-server with these arguments and resolves once it accepts connections on `port`. */
async function spawnNats(args: string[], port: number): Promise<{ child: ChildProcess; exited: Promise<void> }> {
	const child: ChildProcess = spawn("nats-server", args, { stdio: "ignore" });
	const failed = new Promise<never>((_, reject) =>
		child.once("error", err => reject(new Error(`nats-server could not start (${err.message}); run: apt-get install -y nats-server`)))
	);
	const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
	const deadline = Date.now() + 10_000;
	while (!(await Promise.race([canConnect(port), failed]))) {
		if (Date.now() > deadline) throw new Error("nats-server did not listen within 10 s");
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	return { child, exited };
}

export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
	const port = await freePort();
	const hostPort = `127.0.0.1:${port}`;
	const auth = options.auth
		? writeNatsConfig({ listen: hostPort, nodes: Object.fromEntries(BUS_ROLES.map(role => [role, options.auth![role] ?? []])) as BusNodes })
		: null;
	const args = auth ? ["-c", auth.configFile] : ["-a", "127.0.0.1", "-p", String(port)];
	const { child, exited } = await spawnNats(args, port);
	return {
		url: `nats://${hostPort}`,
		urlFor(role) {
			if (!auth) throw new Error("this nats-server was started without auth");
			return natsUrlFor(role, auth.passwords[role], hostPort);
		},
		async stop() {
			if (child.exitCode === null) child.kill("SIGTERM");
			await exited;
			if (auth) rmSync(auth.dir, { recursive: true, force: true });
		}
	};
}

/** A client connection as a server's monitoring endpoint (`/connz`) lists it. */
export interface NatsConnection {
	/** The client's connection name: a shop node's NODEID (lib/bus.ts natsTransporter). */
	name?: string;
	/** The NATS user it logged in as (`/connz?auth=true`). */
	authorized_user?: string;
}

export interface ClusterMember {
	/** `127.0.0.1:port`, where clients connect. */
	hostPort: string;
	/** True until `kill()`. */
	alive(): boolean;
	/** The clients connected to this server now. */
	connections(): Promise<NatsConnection[]>;
	/** SIGKILL, and wait for the exit. */
	kill(): Promise<void>;
}

export interface NatsCluster {
	servers: ClusterMember[];
	/** The TRANSPORTER of a role's nodes: one URL per server, with the role's credentials. */
	urlFor(role: BusRole): string;
	/** Resolves once every live server has a route to every other live one. */
	waitForRoutes(timeoutMs?: number): Promise<void>;
	stop(): Promise<void>;
}

/**
 * `size` nats-servers on free loopback ports joined as one NATS cluster (routes authenticated with a
 * route user, every server with the same users and permissions from scripts/nats-auth.ts), each with
 * its monitoring endpoint on, so that a test can see which node is connected where.
 */
export async function startNatsCluster(options: { size?: number; auth: Partial<BusNodes> }): Promise<NatsCluster> {
	const size = options.size ?? 3;
	const addresses = await Promise.all(
		Array.from({ length: size }, async () => ({ port: await freePort(), cluster: await freePort(), http: await freePort() }))
	);
	const files = writeNatsClusterConfig({
		servers: addresses.map(address => ({ listen: `127.0.0.1:${address.port}`, cluster: `127.0.0.1:${address.cluster}`, http: `127.0.0.1:${address.http}` })),
		nodes: Object.fromEntries(BUS_ROLES.map(role => [role, options.auth[role] ?? []])) as BusNodes
	});
	const started = await Promise.all(addresses.map((address, i) => spawnNats(["-c", files.configFiles[i]], address.port)));
	const monitor = async <T>(i: number, endpoint: string): Promise<T> => (await fetch(`http://127.0.0.1:${addresses[i].http}${endpoint}`)).json() as Promise<T>;
	const alive = (i: number) => started[i].child.exitCode === null && started[i].child.signalCode === null;
	const servers: ClusterMember[] = addresses.map((address, i) => ({
		hostPort: `127.0.0.1:${address.port}`,
		alive: () => alive(i),
		connections: async () => (await monitor<{ connections?: NatsConnection[] }>(i, "/connz?auth=true&limit=1000")).connections ?? [],
		async kill() {
			if (alive(i)) started[i].child.kill("SIGKILL");
			await started[i].exited;
		}
	}));
	const hostPorts = servers.map(server => server.hostPort);
	return {
		servers,
		urlFor: role => natsUrlFor(role, files.passwords[role], hostPorts),
		async waitForRoutes(timeoutMs = 10_000) {
			const deadline = Date.now() + timeoutMs;
			for (;;) {
				const live = addresses.map((_, i) => i).filter(alive);
				const routes = await Promise.all(live.map(i => monitor<{ num_routes: number }>(i, "/routez").then(routez => routez.num_routes)));
				if (routes.every(count => count >= live.length - 1)) return;
				if (Date.now() > deadline) throw new Error(`the NATS cluster did not form within ${timeoutMs} ms (routes per server: ${routes.join(", ")})`);
				await new Promise(resolve => setTimeout(resolve, 100));
			}
		},
		async stop() {
			for (const { child } of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
			await Promise.all(started.map(({ exited }) => exited));
			rmSync(files.dir, { recursive: true, force: true });
		}
	};
}
