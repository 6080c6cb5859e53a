/**
 * `npm run cluster -- roll`: how an operator's terminal asks a running `npm run cluster` to roll.
 *
 * The running cluster listens on a Unix socket in its DATA_DIR (`cluster.sock`, mode 0600: only its
 * owner may drive it). A client writes one command line (`roll`); the cluster writes back each step
 * as a line, the summary last, and closes. One roll at a time.
 */
import { chmodSync, existsSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import path from "node:path";
import readline from "node:readline";

export const controlSocketPath = (dataDir: string) => path.join(dataDir, "cluster.sock");

/** A command's handler: writes its lines through `say`; resolves true when it succeeded. */
export type ControlHandler = (command: string, say: (line: string) => void) => Promise<boolean>;

/** Listens on the control socket (a stale socket left by a killed cluster is replaced). */
export async function listenForControl(dataDir: string, handle: ControlHandler): Promise<Server> {
	const socketPath = controlSocketPath(dataDir);
	if (existsSync(socketPath)) {
		const alive = await new Promise<boolean>(resolve => {
			const probe = createConnection(socketPath, () => {
				probe.destroy();
				resolve(true);
			});
			probe.once("error", () => resolve(false));
		});
		if (alive) throw new Error(`another cluster is running on ${dataDir} (${socketPath} answers)`);
		rmSync(socketPath, { force: true });
	}
	const server = createServer((socket: Socket) => {
		const lines = readline.createInterface({ input: socket });
		lines.once("line", command => {
			lines.close();
			const say = (line: string) => {
				if (!socket.destroyed) socket.write(`${line}\n`);
			};
			handle(command.trim(), say)
				.then(ok => say(ok ? "OK" : "FAILED"))
				.catch((err: Error) => say(`FAILED: ${err.message}`))
				.finally(() => socket.end());
		});
		socket.on("error", () => undefined);
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(socketPath, () => resolve());
	});
	chmodSync(socketPath, 0o600);
	server.on("close", () => rmSync(socketPath, { force: true }));
	return server;
}

/** Sends `command` to the cluster running on `dataDir` and prints what it answers; resolves with the exit code. */
export function sendControl(dataDir: string, command: string, print: (line: string) => void = line => console.log(line)): Promise<number> {
	return new Promise(resolve => {
		const socket = createConnection(controlSocketPath(dataDir));
		let last = "";
		socket.once("connect", () => socket.write(`${command}\n`));
		socket.once("error", err => {
			print(`No cluster answers on ${controlSocketPath(dataDir)} (${err.message}): start one with npm run cluster (same DATA_DIR).`);
			resolve(2);
		});
		readline.createInterface({ input: socket }).on("line", line => {
			last = line;
			if (line !== "OK") print(line);
		});
		socket.once("close", () => resolve(last === "OK" ? 0 : 1));
	});
}
