/**
 * The nats-server side of the shop's closed bus: one NATS user per role (each service, plus `ops`
 * for a REPL or a test observer), each allowed to subscribe only to the subjects of its own nodes
 * and to send requests only to the roles it calls. Used by `npm run cluster`, by the tests'
 * nats-server (test/support/nats.ts), and checked against docker/nats.conf by a unit test.
 *
 * Moleculer's NATS transporter (with its default balancer, as the shop runs it) uses these subjects,
 * `MOL-<namespace>.<CMD>[.<nodeID>]` (node_modules/moleculer/src/transit.js, makeSubscriptions):
 * - broadcast: EVENT, DISCOVER, INFO, DISCONNECT, HEARTBEAT, PING;
 * - targeted at one node: EVENT, REQ, RES, DISCOVER, INFO, PING, PONG `.<nodeID>`.
 * NATS wildcards match whole dot-separated tokens, so `REQ.payments-*` cannot be written: the
 * targeted subjects of a role are listed per node id, and a node id absent from the config cannot
 * receive anything addressed to it (a new node needs its id here, then `nats-server --signal reload`).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CLUSTER_LAYOUT } from "./cluster-layout";

export const BUS_PREFIX = "MOL-shop";

/** A NATS user of the shop: a service name, or `ops` (a REPL, a test observer: may call any node). */
export type BusRole = "api" | "users" | "inventory" | "orders" | "payments" | "ops";
export const BUS_ROLES: readonly BusRole[] = ["api", "users", "inventory", "orders", "payments", "ops"];

/**
 * Which roles a role sends requests to (REQ). Keep in step with the services' `ctx.call`s: a call a
 * role may not send fails at the caller after its timeout (nats-server logs the violation).
 */
export const BUS_CALLS: Record<BusRole, readonly BusRole[]> = {
	// api also asks every node, gateways and ops nodes included, for the back office's views
	// (`$node.metrics`, `$tracing.spans`, `$chaos.rules`).
	api: ["api", "users", "inventory", "orders", "payments", "ops"],
	orders: ["inventory", "payments"],
	payments: ["orders"],
	users: [],
	inventory: [],
	ops: ["api", "users", "inventory", "orders", "payments", "ops"]
};

const BROADCAST = ["EVENT", "DISCOVER", "INFO", "DISCONNECT", "HEARTBEAT", "PING"];
const TARGETED = ["EVENT", "REQ", "RES", "DISCOVER", "INFO", "PING", "PONG"];

/** The node ids of each role that the server lets in (every role listed, possibly with none). */
export type BusNodes = Record<BusRole, readonly string[]>;

/** The node ids per role of a layout whose nodes run one service each, plus the ops node ids. */
export function busNodesOf(layout: ReadonlyArray<{ nodeID: string; services: readonly string[] }>, opsNodeIDs: readonly string[]): BusNodes {
	const nodes: Record<BusRole, string[]> = { api: [], users: [], inventory: [], orders: [], payments: [], ops: [...opsNodeIDs] };
	for (const node of layout) {
		const role = node.services.join(",") as BusRole;
		if (node.services.length !== 1 || role === "ops" || !BUS_ROLES.includes(role)) {
			throw new Error(`node ${node.nodeID} runs ${node.services.join(",")}: with per-role NATS users, a node runs exactly one service`);
		}
		nodes[role].push(node.nodeID);
	}
	return nodes;
}

export interface Permissions {
	publish: string[];
	subscribe: string[];
}

/** What a role's user may publish and subscribe to. */
export function rolePermissions(role: BusRole, nodes: BusNodes): Permissions {
	for (const id of Object.values(nodes).flat()) {
		if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`node id "${id}" cannot be a NATS subject token (letters, digits, _ and - only)`);
	}
	const broadcast = BROADCAST.map(cmd => `${BUS_PREFIX}.${cmd}`);
	return {
		subscribe: [...broadcast, ...nodes[role].flatMap(id => TARGETED.map(cmd => `${BUS_PREFIX}.${cmd}.${id}`))],
		publish: [
			...broadcast,
			// Answers, events, discovery and pings go to any node by its id.
			...["EVENT", "RES", "DISCOVER", "INFO", "PING", "PONG"].map(cmd => `${BUS_PREFIX}.${cmd}.*`),
			...BUS_CALLS[role].flatMap(callee => nodes[callee].map(id => `${BUS_PREFIX}.REQ.${id}`))
		]
	};
}

/** A password, literal (generated per run) or a nats-server reference to an environment variable. */
export type Password = { value: string } | { env: string };

const quote = (text: string) => JSON.stringify(text);

/** The user the servers of one NATS cluster log in to each other as (nats-server's `cluster.authorization`). */
export const ROUTE_USER = "route";
/** The route user's password in nats-server's environment (docker/nats.conf, `npm run cluster`). */
export const ROUTE_PASSWORD_ENV = "NATS_ROUTE_PASSWORD";

/** A value written into the file, or a nats-server reference to an environment variable holding it. */
export type Value = { value: string } | { env: string };

/**
 * The `cluster` block of a server of a NATS cluster: where it takes routes from the other servers,
 * the route user's password, and the route URL of every server, its own included (nats-server
 * recognises a route to itself and drops it, so every server of a cluster can have the same list).
 * nats-server reads a route's credentials from its URL only, so a URL is the whole value (with the
 * password in it) or an environment variable that holds it.
 */
export interface ClusterBlock {
	listen: string;
	password: Password;
	routes: readonly Value[];
}

/** `nats-route://route:password@host:port`: how one server of the cluster reaches another. */
export function routeUrl(password: string, hostPort: string): string {
	return `nats-route://${ROUTE_USER}:${encodeURIComponent(password)}@${hostPort}`;
}

const valueText = (value: Value) => ("value" in value ? quote(value.value) : `$${value.env}`);

/**
 * A nats-server configuration file: listen address, one user per role with its permissions, and
 * for a server of a NATS cluster its `cluster` block; `http` turns the monitoring endpoint on.
 */
export function natsConfigText(options: {
	listen?: string;
	http?: string;
	passwords: Record<BusRole, Password>;
	nodes: BusNodes;
	roles?: readonly BusRole[];
	cluster?: ClusterBlock;
}): string {
	const users = (options.roles ?? BUS_ROLES).map(role => {
		const password = options.passwords[role];
		const permissions = rolePermissions(role, options.nodes);
		const list = (subjects: string[]) => `[\n${subjects.map(subject => `          ${quote(subject)}`).join(",\n")}\n        ]`;
		return [
			"    {",
			`      user: ${quote(role)}`,
			`      password: ${valueText(password)}`,
			"      permissions: {",
			`        publish: ${list(permissions.publish)}`,
			`        subscribe: ${list(permissions.subscribe)}`,
			"      }",
			"    }"
		].join("\n");
	});
	return [
		"# The shop's bus: one user per role, each with only the subjects it needs (scripts/nats-auth.ts).",
		...(options.listen ? [`listen: ${quote(options.listen)}`] : []),
		...(options.http ? [`http: ${quote(options.http)}`] : []),
		"authorization {",
		"  users = [",
		users.join(",\n"),
		"  ]",
		"}",
		...(options.cluster ? clusterText(options.cluster) : []),
		""
	].join("\n");
}

function clusterText(cluster: ClusterBlock): string[] {
	return [
		"# The servers of the shop's NATS cluster: routes between them only with the route user's password.",
		"cluster {",
		'  name: "shop"',
		`  listen: ${quote(cluster.listen)}`,
		"  authorization {",
		`    user: ${quote(ROUTE_USER)}`,
		`    password: ${valueText(cluster.password)}`,
		"  }",
		"  routes = [",
		cluster.routes.map(route => `    ${valueText(route)}`).join("\n"),
		"  ]",
		"}"
	];
}

/** The environment variable that holds a role's password (docker/nats.conf, `npm run cluster`). */
export const passwordEnv = (role: BusRole) => `NATS_${role.toUpperCase()}_PASSWORD`;

export interface NatsAuthFiles {
	dir: string;
	configFile: string;
	passwords: Record<BusRole, string>;
}

/** The role passwords of a run: `NATS_<ROLE>_PASSWORD` when given, else random. */
function runPasswords(env: Record<string, string | undefined>): Record<BusRole, string> {
	return Object.fromEntries(BUS_ROLES.map(role => [role, env[passwordEnv(role)] || randomBytes(24).toString("hex")])) as Record<BusRole, string>;
}

const literal = (passwords: Record<BusRole, string>) =>
	Object.fromEntries(BUS_ROLES.map(role => [role, { value: passwords[role] }])) as Record<BusRole, Password>;

/** A fresh private directory (0700) for a run's nats-server configuration files. */
function privateDir(): string {
	const dir = mkdtempSync(path.join(tmpdir(), "shop-nats-"));
	chmodSync(dir, 0o700);
	return dir;
}

/**
 * Writes a nats-server configuration for one run into a fresh private directory (0700, the file
 * 0600): passwords from `NATS_<ROLE>_PASSWORD` when given, else random for this run.
 */
export function writeNatsConfig(options: { listen: string; nodes: BusNodes; env?: Record<string, string | undefined> }): NatsAuthFiles {
	const passwords = runPasswords(options.env ?? {});
	const dir = privateDir();
	const configFile = path.join(dir, "nats.conf");
	writeFileSync(configFile, natsConfigText({ listen: options.listen, nodes: options.nodes, passwords: literal(passwords) }), { mode: 0o600 });
	return { dir, configFile, passwords };
}

/** One server of a NATS cluster run on this machine: its client, route and (optional) monitoring addresses. */
export interface ClusterServerAddress {
	listen: string;
	cluster: string;
	http?: string;
}

export interface NatsClusterFiles {
	dir: string;
	/** One configuration file per server, in the order given. */
	configFiles: string[];
	passwords: Record<BusRole, string>;
}

/**
 * The configuration files of a NATS cluster for one run, in a fresh private directory (0700, files
 * 0600): every server with the same users and permissions (passwords as writeNatsConfig) and routes to
 * every other, authenticated with the route user (password NATS_ROUTE_PASSWORD, else random).
 */
export function writeNatsClusterConfig(options: {
	servers: readonly ClusterServerAddress[];
	nodes: BusNodes;
	env?: Record<string, string | undefined>;
}): NatsClusterFiles {
	const env = options.env ?? {};
	const passwords = runPasswords(env);
	const routePassword = env[ROUTE_PASSWORD_ENV] || randomBytes(24).toString("hex");
	const dir = privateDir();
	const routes = options.servers.map(server => ({ value: routeUrl(routePassword, server.cluster) }));
	const configFiles = options.servers.map((server, i) => {
		const configFile = path.join(dir, `nats-${i + 1}.conf`);
		const text = natsConfigText({
			listen: server.listen,
			http: server.http,
			nodes: options.nodes,
			passwords: literal(passwords),
			cluster: { listen: server.cluster, password: { value: routePassword }, routes }
		});
		writeFileSync(configFile, text, { mode: 0o600 });
		return configFile;
	});
	return { dir, configFiles, passwords };
}

/**
 * `nats://role:password@host:port`: the TRANSPORTER of a node of that role; with several servers
 * (a NATS cluster), the comma-separated list of such URLs, one per server.
 */
export function natsUrlFor(role: BusRole, password: string, hostPorts: string | readonly string[]): string {
	return (typeof hostPorts === "string" ? [hostPorts] : hostPorts).map(hostPort => `nats://${role}:${encodeURIComponent(password)}@${hostPort}`).join(",");
}

/** The NATS servers of the compose layout (service names; clients on 4222, routes on 6222 in each container). */
export const COMPOSE_NATS_SERVERS = ["nats-1", "nats-2", "nats-3"] as const;

/** The environment variable that holds the route URL of a compose NATS server (password included). */
export const routeEnv = (server: string) => `NATS_ROUTE_${server.replace(/^nats-/, "")}`;

/**
 * docker/nats.conf: the compose layout's users (the five services; no ops user in production), their
 * passwords read by nats-server from its environment (NATS_<ROLE>_PASSWORD), and the cluster block
 * shared by the three servers: routes authenticated with NATS_ROUTE_PASSWORD, the route URLs (which
 * must hold that password) from NATS_ROUTE_1..3. A unit test keeps the file equal to this; regenerate
 * with `npm run build && node dist/scripts/nats-auth.js > docker/nats.conf`.
 */
export function composeNatsConfigText(layout: ReadonlyArray<{ nodeID: string; services: readonly string[] }>): string {
	const roles = BUS_ROLES.filter(role => role !== "ops");
	return natsConfigText({
		nodes: busNodesOf(layout, []),
		roles,
		passwords: Object.fromEntries(BUS_ROLES.map(role => [role, { env: passwordEnv(role) }])) as Record<BusRole, Password>,
		cluster: { listen: "0.0.0.0:6222", password: { env: ROUTE_PASSWORD_ENV }, routes: COMPOSE_NATS_SERVERS.map(server => ({ env: routeEnv(server) })) }
	});
}

if (require.main === module) process.stdout.write(composeNatsConfigText(CLUSTER_LAYOUT));
