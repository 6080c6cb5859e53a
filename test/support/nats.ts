/**
 * A real nats-server (Debian package `nats-server`) on a free loopback port, for the cluster suites
 * and the benchmark. Open by default; with `auth`, closed as `npm run cluster` runs it: one user per
 * role with the subject permissions of scripts/nats-auth.ts, passwords random per server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { freePort } from "./shop";
import { BUS_ROLES, natsUrlFor, writeNatsConfig, type BusNodes, type BusRole } from "../../scripts/nats-auth";

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

export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
	const port = await freePort();
	const hostPort = `127.0.0.1:${port}`;
	const auth = options.auth
		? writeNatsConfig({ listen: hostPort, nodes: Object.fromEntries(BUS_ROLES.map(role => [role, options.auth![role] ?? []])) as BusNodes })
		: null;
	const args = auth ? ["-c", auth.configFile] : ["-a", "127.0.0.1", "-p", String(port)];
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
