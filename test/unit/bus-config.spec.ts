/**
 * The bus's configuration (README "Security and trust"): TRANSIT_KEY, TRANSPORTER's credentials in
 * production, the transporter and encryption options built from them, and the NATS permissions.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import type { Middleware } from "moleculer";
import { readFileSync, rmSync, statSync } from "node:fs";
import { ConfigError, loadConfig, parseNatsServers } from "../../lib/config";
import { NATS_RECONNECT, natsTransporter, TRANSIT_CIPHER, transitEncryption, transitIv } from "../../lib/bus";
import { BUS_CALLS, BUS_PREFIX, busNodesOf, natsConfigText, natsUrlFor, rolePermissions, writeNatsClusterConfig, type BusNodes } from "../../scripts/nats-auth";
import { CLUSTER_LAYOUT } from "../../scripts/cluster-layout";

const KEY = "0123456789abcdef".repeat(4);
const PROD = { NODE_ENV: "production", JWT_SECRET: "a-production-secret-of-some-length" };

function configError(env: Record<string, string>): string {
	try {
		loadConfig(env);
	} catch (err) {
		expect(err).toBeInstanceOf(ConfigError);
		expect((err as Error).message).not.toMatch(/\n/);
		return (err as Error).message;
	}
	throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("TRANSIT_KEY and TRANSPORTER credentials", () => {
	it("reads TRANSIT_KEY as 32 bytes; none means no encryption", () => {
		expect(loadConfig({ TRANSIT_KEY: KEY }).transitKey).toEqual(Buffer.from(KEY, "hex"));
		expect(loadConfig({ TRANSIT_KEY: ` ${KEY.toUpperCase()} ` }).transitKey).toEqual(Buffer.from(KEY, "hex"));
		expect(loadConfig({}).transitKey).toBeNull();
		expect(loadConfig({ TRANSPORTER: "nats://127.0.0.1:4222" }).transitKey).toBeNull();
	});

	it.each([
		["too short", "abcdef"],
		["not hex", "z".repeat(64)],
		["too long", `${KEY}00`]
	])("rejects a TRANSIT_KEY %s, without printing it", (_what, value) => {
		const message = configError({ TRANSIT_KEY: value });
		expect(message).toMatch(/^TRANSIT_KEY must be 64 hex characters/);
		expect(message).not.toContain(value);
	});

	it("requires TRANSIT_KEY in production when the node is on a transporter", () => {
		expect(configError({ ...PROD, TRANSPORTER: "nats://orders:pw@nats:4222" })).toMatch(
			/^TRANSIT_KEY is required when TRANSPORTER is set and NODE_ENV=production/
		);
		// One process in production: no bus, no key needed.
		expect(loadConfig(PROD).transitKey).toBeNull();
	});

	it("requires a NATS user and password in TRANSPORTER in production, and never prints the URL", () => {
		for (const url of ["nats://nats:4222", "nats://orders@nats:4222", "nats://orders:@nats:4222"]) {
			expect(configError({ ...PROD, TRANSIT_KEY: KEY, TRANSPORTER: url })).toMatch(/^TRANSPORTER must carry this node's NATS user and password/);
		}
		const config = loadConfig({ ...PROD, TRANSIT_KEY: KEY, TRANSPORTER: "nats://orders:s3cr3t@nats:4222" });
		expect(config.transporterUrl).toBe("nats://orders:s3cr3t@nats:4222");
		// Development accepts an open bus (a warning is logged at start).
		expect(loadConfig({ TRANSPORTER: "nats://127.0.0.1:4222" }).transporterUrl).toBe("nats://127.0.0.1:4222");
	});
});

describe("the transporter and the encryption the nodes are given", () => {
	it("passes the NATS credentials as an authenticator, never as a readable option", () => {
		const transporter = natsTransporter("nats://payments:p%40ss%3Aword@nats.internal:4222") as { type: string; options: Record<string, unknown> };
		expect(transporter.type).toBe("NATS");
		expect(transporter.options.servers).toEqual(["nats.internal:4222"]);
		expect(typeof transporter.options.authenticator).toBe("function");
		expect(JSON.stringify(transporter)).not.toMatch(/p%40ss|p@ss|payments/);
		expect(transporter.options).not.toHaveProperty("url");
		// The nats client's authenticator answers the decoded user and password.
		const auth = (transporter.options.authenticator as (nonce?: string) => { user: string; pass: string })();
		expect(auth).toEqual({ user: "payments", pass: "p@ss:word" });
		expect(natsTransporter("nats://127.0.0.1:4222")).toEqual({ type: "NATS", options: { servers: ["127.0.0.1:4222"], ...NATS_RECONNECT } });
	});

	it("gives the nats client every server of a list, one authenticator, prompt reconnects, and the node id as connection name", () => {
		const transporter = natsTransporter("nats://orders:pw%2C1@nats-1:4222,nats://nats-2:4222,nats://orders:pw%2C1@nats-3:4223", { name: "orders-1" }) as {
			type: string;
			options: Record<string, unknown>;
		};
		expect(transporter.options).toMatchObject({ servers: ["nats-1:4222", "nats-2:4222", "nats-3:4223"], name: "orders-1", maxReconnectAttempts: -1 });
		// The client's defaults (2 s between attempts at one server, a dead server noticed after 2 × 2 min of silence) are too slow for the bus.
		expect(transporter.options.reconnectTimeWait).toBeLessThanOrEqual(1000);
		expect((transporter.options.pingInterval as number) * (transporter.options.maxPingOut as number)).toBeLessThanOrEqual(5000);
		// Randomised order (the client's default) spreads the nodes over the servers.
		expect(transporter.options).not.toHaveProperty("noRandomize");
		expect((transporter.options.authenticator as () => { user: string; pass: string })()).toEqual({ user: "orders", pass: "pw,1" });
		expect(JSON.stringify(transporter)).not.toContain("pw");
	});
});

describe("TRANSPORTER as a list of NATS servers", () => {
	it("reads a comma-separated list, with the credentials on every URL or on one", () => {
		expect(parseNatsServers("nats://a:1@h1:4222, nats://a:1@h2:4223 ,nats://a:1@h3")).toEqual({
			servers: ["h1:4222", "h2:4223", "h3"],
			user: "a",
			password: "1"
		});
		expect(parseNatsServers("nats://h1:4222,nats://a:1@h2:4222")).toEqual({ servers: ["h1:4222", "h2:4222"], user: "a", password: "1" });
		expect(parseNatsServers("nats://h1:4222,nats://h2:4222")).toEqual({ servers: ["h1:4222", "h2:4222"], user: "", password: "" });
		expect(loadConfig({ TRANSPORTER: "nats://a:1@h1:4222, nats://h2:4222" }).transporterUrl).toBe("nats://a:1@h1:4222,nats://h2:4222");
	});

	it.each([
		["an empty entry", "nats://a:s3cr3t@h1:4222,,nats://h2:4222", /^TRANSPORTER has an empty entry/],
		["a trailing comma", "nats://a:s3cr3t@h1:4222,", /^TRANSPORTER has an empty entry/],
		["a malformed entry", "nats://a:s3cr3t@h1:4222,h2:4222", /^TRANSPORTER must be a nats:\/\/ URL/],
		["another scheme in the list", "nats://a:s3cr3t@h1:4222,tls://a:s3cr3t@h2:4222", /^TRANSPORTER must be a nats:\/\/ URL/],
		["one server twice", "nats://a:s3cr3t@h1:4222,nats://h1:4222", /^TRANSPORTER lists h1:4222 twice/],
		["two users", "nats://a:s3cr3t@h1:4222,nats://b:s3cr3t@h2:4222", /^TRANSPORTER's URLs carry different users or passwords/],
		["two passwords", "nats://a:s3cr3t@h1:4222,nats://a:other@h2:4222", /^TRANSPORTER's URLs carry different users or passwords/]
	])("rejects %s, without printing a password", (_what, value, message) => {
		const error = configError({ TRANSPORTER: value });
		expect(error).toMatch(message);
		expect(error).not.toMatch(/s3cr3t|other/);
	});

	it("requires the NATS user and password in production once for the list", () => {
		expect(loadConfig({ ...PROD, TRANSIT_KEY: KEY, TRANSPORTER: "nats://orders:pw@n1:4222,nats://n2:4222" }).transporterUrl).toBe(
			"nats://orders:pw@n1:4222,nats://n2:4222"
		);
		expect(configError({ ...PROD, TRANSIT_KEY: KEY, TRANSPORTER: "nats://n1:4222,nats://n2:4222" })).toMatch(
			/^TRANSPORTER must carry this node's NATS user and password/
		);
	});
});

describe("the NATS cluster's configuration", () => {
	it("gives a role's nodes one URL per server", () => {
		expect(natsUrlFor("orders", "p@ss", ["127.0.0.1:4222", "127.0.0.1:4223"])).toBe("nats://orders:p%40ss@127.0.0.1:4222,nats://orders:p%40ss@127.0.0.1:4223");
		expect(natsUrlFor("orders", "pw", "127.0.0.1:4222")).toBe("nats://orders:pw@127.0.0.1:4222");
	});

	it("writes one private file per server: the same users, and authenticated routes to every server", () => {
		const servers = [1, 2, 3].map(i => ({ listen: `127.0.0.1:${4221 + i}`, cluster: `127.0.0.1:${6221 + i}`, http: `127.0.0.1:${8221 + i}` }));
		const files = writeNatsClusterConfig({
			servers,
			nodes: busNodesOf(CLUSTER_LAYOUT, ["ops-1"]),
			env: { NATS_ROUTE_PASSWORD: "route-pw", NATS_API_PASSWORD: "api-pw" }
		});
		try {
			expect(files.configFiles).toHaveLength(3);
			expect(statSync(files.dir).mode & 0o777).toBe(0o700);
			expect(files.passwords.api).toBe("api-pw");
			const texts = files.configFiles.map(file => readFileSync(file, "utf8"));
			const users = (text: string) => text.slice(text.indexOf("authorization {"), text.indexOf("\ncluster {"));
			texts.forEach((text, i) => {
				expect(statSync(files.configFiles[i]).mode & 0o777).toBe(0o600);
				expect(text).toContain(`listen: "127.0.0.1:${4222 + i}"`);
				expect(text).toContain(`http: "127.0.0.1:${8222 + i}"`);
				expect(text).toContain(`  listen: "127.0.0.1:${6222 + i}"`);
				expect(text).toMatch(/authorization \{\s+user: "route"\s+password: "route-pw"\s+\}/);
				for (const port of [6222, 6223, 6224]) expect(text).toContain(`"nats-route://route:route-pw@127.0.0.1:${port}"`);
				expect(users(text)).toBe(users(texts[0]));
			});
		} finally {
			rmSync(files.dir, { recursive: true, force: true });
		}
	});

	it("uses Moleculer's own encryption middleware with the key and an IV derived from it", () => {
		const key = Buffer.from(KEY, "hex");
		const middleware = transitEncryption(key) as Middleware & {
			transporterSend(next: (topic: string, data: Buffer) => unknown): (topic: string, data: Buffer) => unknown;
		};
		expect(middleware.name).toBe("Encryption");
		let sent: Buffer | null = null;
		middleware.transporterSend((_topic, data) => (sent = data))("MOL-shop.REQ.payments-1", Buffer.from('{"card":"4242424242424242"}'));
		expect(sent!.toString("latin1")).not.toContain("4242424242424242");
		// Exactly AES-256-CBC with that key and IV: any node with the same TRANSIT_KEY reads it.
		const decipher = createDecipheriv(TRANSIT_CIPHER, key, transitIv(key));
		expect(Buffer.concat([decipher.update(sent!), decipher.final()]).toString()).toBe('{"card":"4242424242424242"}');
		// Another key gives another IV; the IV is fixed per key (the middleware has no per-packet IV).
		expect(transitIv(Buffer.alloc(32, 1))).not.toEqual(transitIv(key));
		expect(transitIv(key)).toEqual(transitIv(Buffer.from(KEY, "hex")));
		const cipher = createCipheriv(TRANSIT_CIPHER, key, transitIv(key));
		expect(Buffer.concat([cipher.update('{"card":"4242424242424242"}'), cipher.final()])).toEqual(sent);
		expect(() => transitEncryption(Buffer.alloc(16))).toThrow(/32 bytes/);
	});
});

describe("NATS users and subject permissions", () => {
	const nodes: BusNodes = busNodesOf(CLUSTER_LAYOUT, ["ops-1"]);

	it("lets each role subscribe only to its own nodes' targeted subjects and the broadcasts", () => {
		const targeted = (subjects: string[]) => subjects.filter(subject => subject.split(".").length === 3);
		expect(targeted(rolePermissions("payments", nodes).subscribe).map(subject => subject.split(".")[2])).toEqual(
			expect.arrayContaining(["payments-1", "payments-2"])
		);
		for (const role of ["api", "users", "inventory", "orders", "payments", "ops"] as const) {
			const own = new Set(nodes[role]);
			const subscribe = rolePermissions(role, nodes).subscribe;
			expect(targeted(subscribe).filter(subject => !own.has(subject.split(".")[2]))).toEqual([]);
			expect(subscribe.filter(subject => subject.includes(">") || subject.includes("*"))).toEqual([]);
			expect(subscribe).toEqual(expect.arrayContaining([`${BUS_PREFIX}.INFO`, `${BUS_PREFIX}.HEARTBEAT`, `${BUS_PREFIX}.REQ.${nodes[role][0]}`]));
		}
	});

	it("lets a role send requests only to the roles it calls", () => {
		const requests = (role: keyof BusNodes) =>
			rolePermissions(role, nodes)
				.publish.filter(subject => subject.startsWith(`${BUS_PREFIX}.REQ.`))
				.map(subject => subject.split(".")[2])
				.sort();
		expect(requests("payments")).toEqual(["orders-1", "orders-2"]);
		expect(requests("users")).toEqual([]);
		expect(requests("orders")).toEqual(["inventory-1", "inventory-2", "payments-1", "payments-2"]);
		// A gateway also asks every node, the other gateway and ops nodes included, for the back office.
		expect(requests("api")).toEqual([
			"api-1",
			"api-2",
			"inventory-1",
			"inventory-2",
			"ops-1",
			"orders-1",
			"orders-2",
			"payments-1",
			"payments-2",
			"users-1",
			"users-2"
		]);
		expect(BUS_CALLS.inventory).toEqual([]);
	});

	it("refuses a node id NATS cannot hold in one subject token, and a node with several services", () => {
		expect(() => rolePermissions("api", { ...nodes, api: ["api.1"] })).toThrow(/subject token/);
		expect(() => busNodesOf([{ nodeID: "mixed-1", services: ["users", "inventory"] }], [])).toThrow(/exactly one service/);
	});

	it("writes a password as a literal or as an environment reference", () => {
		const text = natsConfigText({
			listen: "127.0.0.1:4222",
			nodes,
			roles: ["api", "users"],
			passwords: {
				api: { value: 'pa"ss' },
				users: { env: "NATS_USERS_PASSWORD" },
				inventory: { value: "" },
				orders: { value: "" },
				payments: { value: "" },
				ops: { value: "" }
			}
		});
		expect(text).toContain('listen: "127.0.0.1:4222"');
		expect(text).toContain('password: "pa\\"ss"');
		expect(text).toContain("password: $NATS_USERS_PASSWORD");
		expect(text).not.toContain('user: "inventory"');
	});
});
