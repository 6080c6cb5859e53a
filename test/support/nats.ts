/** A real nats-server (Debian package `nats-server`) on a free loopback port, for the cluster suite and the benchmark. */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { freePort } from "./shop";

export interface NatsServer {
	url: string;
	stop(): Promise<void>;
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

export async function startNats(): Promise<NatsServer> {
	const port = await freePort();
	const child: ChildProcess = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
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
		url: `nats://127.0.0.1:${port}`,
		async stop() {
			if (child.exitCode === null) child.kill("SIGTERM");
			await exited;
		}
	};
}
