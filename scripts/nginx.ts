/**
 * The load balancer in front of the shop's gateways: nginx (Debian's package, /usr/sbin/nginx), as
 * `npm run cluster` runs it on this machine and as docker/docker-compose.yml runs it (docker/nginx.conf,
 * kept equal to `composeNginxConfigText()` by a unit test).
 *
 * What it must do so that a gateway can restart without a client seeing it:
 * - A connection a gateway refuses (it has stopped listening) is tried on the next gateway: nothing
 *   was sent, so this holds for a POST too (`proxy_next_upstream error timeout`, nginx's default).
 * - A request that was sent to a gateway is never sent again to another when it is not idempotent:
 *   `non_idempotent` is deliberately absent, so a POST that reached a gateway gets that gateway's
 *   answer (or a 502), never a second order. `http_503` is absent too: the shop's 503 means "a service
 *   the call needs is down", the same on every gateway, and it must not mark a healthy gateway failed.
 * - No keep-alive connections to the gateways (no `keepalive` in the upstream): a request is never
 *   written into a connection the gateway is closing. Each request opens its own loopback connection.
 * - A gateway about to restart is taken out first (`down`, then a graceful reload: old workers finish
 *   what they carry), so it is not sent a request while it drains (scripts/roll.ts).
 * - No keep-alive connections from clients either (`keepalive_timeout 0`: every answer closes its
 *   connection). A reload makes the old workers close their idle client connections at once, and a
 *   client that had just sent its next request on one got a reset (measured: 1 request in 4,220
 *   during a roll). Without keep-alive nothing is ever sent on a connection nginx is closing; the
 *   cost is a TCP handshake per request. Clients that retry an idempotent request on a reset of a
 *   reused connection (browsers do) could have keep-alive back; the shop does not assume that.
 * - The gateways count the login and register limits per client address, each on its own: a client
 *   always reaches the same gateway (`hash $remote_addr consistent`; another one while its gateway is
 *   down), so two gateways do not double its limit. The address is the one nginx saw, in
 *   X-Forwarded-For (`$remote_addr`, not appended to what the client sent, which it could forge).
 * - Bodies up to 2 MB reach the gateway, which answers the contract's 413 for more than 1 MB itself.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { CLUSTER_LAYOUT } from "./cluster-layout";

export interface Upstream {
	/** `host:port` of a gateway. */
	address: string;
	/** Taken out of rotation (a roll is restarting it). */
	down?: boolean;
}

export interface NginxConfigOptions {
	/** `host:port` nginx listens on. */
	listen: string;
	upstreams: Upstream[];
	/** Local runs: where nginx keeps its pid and temporary files (no root needed). Absent: nginx's defaults (Docker image). */
	prefix?: string;
	workerProcesses?: number | "auto";
}

/** nginx.conf for the shop's gateways; without `prefix`, as the compose file's nginx reads it. */
export function nginxConfigText(options: NginxConfigOptions): string {
	const local = options.prefix
		? [
				`pid ${path.join(options.prefix, "nginx.pid")};`,
				...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(kind => `  ${kind}_temp_path ${path.join(options.prefix!, `${kind}_temp`)};`)
			]
		: [];
	const servers = options.upstreams.map(upstream => `    server ${upstream.address} max_fails=1 fail_timeout=2s${upstream.down ? " down" : ""};`);
	return [
		"# The shop's load balancer in front of its gateways (scripts/nginx.ts explains every choice).",
		`worker_processes ${options.workerProcesses ?? 1};`,
		"error_log stderr warn;",
		...local.slice(0, options.prefix ? 1 : 0),
		"events {",
		"  worker_connections 1024;",
		"}",
		"http {",
		"  access_log off;",
		"  server_tokens off;",
		"  # No client keep-alive: a reload never closes a connection a client is about to reuse.",
		"  keepalive_timeout 0;",
		...local.slice(1),
		"  upstream shop_gateways {",
		"    # One client, one gateway: each gateway counts the limits per client address (login, register) itself.",
		"    hash $remote_addr consistent;",
		...servers,
		"  }",
		"  server {",
		`    listen ${options.listen};`,
		"    client_max_body_size 2m;",
		"    location / {",
		"      proxy_pass http://shop_gateways;",
		"      proxy_set_header Host $http_host;",
		"      # nginx is the edge: the address it saw, not one a client wrote (TRUSTED_PROXIES on the gateways).",
		"      proxy_set_header X-Forwarded-For $remote_addr;",
		"      proxy_set_header X-Forwarded-Proto $scheme;",
		"      # A refused or failed connection moves on to the next gateway; a request already sent does not (no non_idempotent).",
		"      proxy_next_upstream error timeout;",
		"      proxy_next_upstream_tries 2;",
		"      proxy_connect_timeout 2s;",
		"      # Longer than the longest action timeout (orders.create: 12 s).",
		"      proxy_read_timeout 30s;",
		"    }",
		"  }",
		"}",
		""
	].join("\n");
}

/** docker/nginx.conf: the compose file's two gateways, by their service names. */
export function composeNginxConfigText(gateways: readonly string[]): string {
	return nginxConfigText({ listen: "80", upstreams: gateways.map(name => ({ address: `${name}:3000` })), workerProcesses: "auto" });
}

/** The nginx binary: on PATH, or where Debian's package puts it (/usr/sbin is not on a user's PATH). */
export function nginxBinary(): string {
	for (const dir of (process.env.PATH ?? "").split(path.delimiter).concat(["/usr/sbin", "/usr/local/sbin"])) {
		const candidate = path.join(dir, "nginx");
		if (dir && existsSync(candidate)) return candidate;
	}
	throw new Error("nginx is not installed: apt-get install -y nginx");
}

export interface Nginx {
	child: ChildProcess;
	configFile: string;
	/** Rewrites the configuration and reloads it gracefully; resolves once no old worker is left. */
	reload(upstreams: Upstream[]): Promise<void>;
	stop(): Promise<void>;
}

function workerPids(masterPid: number): number[] {
	try {
		return readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
	} catch {
		return [];
	}
}

const alive = (pid: number) => {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
};

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Starts nginx in the foreground (a child of this process, its own process group) with a generated
 * configuration in `prefix` (created if needed); resolves once it accepts connections.
 */
export async function startNginx(options: { prefix: string; listen: string; upstreams: Upstream[]; onLine?: (line: string) => void }): Promise<Nginx> {
	mkdirSync(options.prefix, { recursive: true, mode: 0o700 });
	const configFile = path.join(options.prefix, "nginx.conf");
	const write = (upstreams: Upstream[]) => writeFileSync(configFile, nginxConfigText({ listen: options.listen, upstreams, prefix: options.prefix }));
	write(options.upstreams);
	// `-e stderr`: errors before the configuration is read go to stderr too, not to /var/log/nginx.
	const child = spawn(nginxBinary(), ["-p", options.prefix, "-c", configFile, "-e", "stderr", "-g", "daemon off;"], {
		stdio: ["ignore", "pipe", "pipe"],
		detached: true
	});
	let output = "";
	for (const stream of [child.stdout!, child.stderr!]) {
		stream.on("data", chunk => {
			output += chunk;
			for (const line of String(chunk).split("\n")) if (line.trim()) options.onLine?.(line);
		});
	}
	const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
	const failed = new Promise<never>((_, reject) => {
		child.once("error", err => reject(new Error(`nginx could not start (${err.message}); install it: apt-get install -y nginx`)));
		child.once("exit", code => reject(new Error(`nginx exited (${code}) at start:\n${output}`)));
	});
	failed.catch(() => undefined);
	const [host, port] = [options.listen.slice(0, options.listen.lastIndexOf(":")), Number(options.listen.slice(options.listen.lastIndexOf(":") + 1))];
	const deadline = Date.now() + 10_000;
	for (;;) {
		// A TCP connect only: an HTTP request would reach gateways that may not listen yet.
		const connects = new Promise<boolean>(resolve => {
			const socket = connect(port, host === "0.0.0.0" ? "127.0.0.1" : host);
			socket.once("connect", () => {
				socket.destroy();
				resolve(true);
			});
			socket.once("error", () => resolve(false));
		});
		const listening = await Promise.race([connects, failed]);
		if (listening) break;
		if (Date.now() > deadline) throw new Error(`nginx did not listen on ${options.listen} within 10 s:\n${output}`);
		await sleep(50);
	}
	return {
		child,
		configFile,
		async reload(upstreams) {
			const before = workerPids(child.pid!);
			write(upstreams);
			child.kill("SIGHUP");
			// The old workers stop taking connections at once and exit when what they carry is answered.
			const until = Date.now() + 30_000;
			while (before.some(alive) || workerPids(child.pid!).every(pid => before.includes(pid))) {
				if (child.exitCode !== null) throw new Error(`nginx exited during a reload:\n${output}`);
				if (Date.now() > until) throw new Error(`nginx did not finish a reload within 30 s:\n${output.slice(-2000)}`);
				await sleep(20);
			}
		},
		async stop() {
			// SIGQUIT: graceful (answers what is in flight); SIGTERM would be fast.
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGQUIT");
			await exited;
		}
	};
}

/** The gateways of a layout (its nodes that run `api`), by node id: the compose file's service names. */
export const gatewaysOf = (layout: ReadonlyArray<{ nodeID: string; services: readonly string[] }>) =>
	layout.filter(node => node.services.includes("api")).map(node => node.nodeID);

// Regenerate docker/nginx.conf: npm run build && node dist/scripts/nginx.js > docker/nginx.conf
if (require.main === module) process.stdout.write(composeNginxConfigText(gatewaysOf(CLUSTER_LAYOUT)));
