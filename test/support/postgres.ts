/**
 * A private PostgreSQL server for one test suite: initdb in a temporary directory, started on a
 * free loopback port, removed afterwards. Uses Debian's server binaries (package `postgresql`).
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./shop";

const run = promisify(execFile);

export interface PostgresServer {
	/** A database URL for a new, empty database. */
	createDatabase(name: string): Promise<string>;
	stop(): Promise<void>;
}

function binaries(): string {
	const root = "/usr/lib/postgresql";
	const version = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a))[0] : undefined;
	if (!version) throw new Error("PostgreSQL server binaries not found: apt-get install -y postgresql");
	return path.join(root, version, "bin");
}

export async function startPostgres(): Promise<PostgresServer> {
	const bin = binaries();
	const port = await freePort();
	const dir = mkdtempSync(path.join(tmpdir(), "shop-pg-"));
	const asRoot = userInfo().uid === 0;
	if (asRoot) {
		const postgres = await run("id", ["-u", "postgres"]);
		const group = await run("id", ["-g", "postgres"]);
		chownSync(dir, Number(postgres.stdout), Number(group.stdout));
	}
	const pg = (tool: string, args: string[]) =>
		asRoot ? run("runuser", ["-u", "postgres", "--", path.join(bin, tool), ...args]) : run(path.join(bin, tool), args);
	const data = path.join(dir, "data");
	await pg("initdb", ["-D", data, "-A", "trust", "-U", "shop", "--no-sync"]);
	await pg("pg_ctl", ["-D", data, "-l", path.join(dir, "log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
	return {
		async createDatabase(name: string) {
			await run(path.join(bin, "psql"), ["-h", "127.0.0.1", "-p", String(port), "-U", "shop", "-d", "postgres", "-c", `CREATE DATABASE ${name}`]);
			return `postgres://shop@127.0.0.1:${port}/${name}`;
		},
		async stop() {
			await pg("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
			rmSync(dir, { recursive: true, force: true });
		}
	};
}
