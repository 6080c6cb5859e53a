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
	api: ["users", "inventory", "orders", "payments"],
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

/** A nats-server configuration file: listen address, one user per role with its permissions. */
export function natsConfigText(options: { listen?: string; passwords: Record<BusRole, Password>; nodes: BusNodes; roles?: readonly BusRole[] }): string {
	const users = (options.roles ?? BUS_ROLES).map(role => {
		const password = options.passwords[role];
		const permissions = rolePermissions(role, options.nodes);
		const list = (subjects: string[]) => `[\n${subjects.map(subject => `          ${quote(subject)}`).join(",\n")}\n        ]`;
		return [
			"    {",
			`      user: ${quote(role)}`,
			`      password: ${"value" in password ? quote(password.value) : `$${password.env}`}`,
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
		"authorization {",
		"  users = [",
		users.join(",\n"),
		"  ]",
		"}",
		""
	].join("\n");
}

/** The environment variable that holds a role's password (docker/nats.conf, `npm run cluster`). */
export const passwordEnv = (role: BusRole) => `NATS_${role.toUpperCase()}_PASSWORD`;

export interface NatsAuthFiles {
	dir: string;
	configFile: string;
	passwords: Record<BusRole, string>;
}

/**
 * Writes a nats-server configuration for one run into a fresh private directory (0700, the file
 * 0600): passwords from `NATS_<ROLE>_PASSWORD` when given, else random for this run.
 */
export function writeNatsConfig(options: { listen: string; nodes: BusNodes; env?: Record<string, string | undefined> }): NatsAuthFiles {
	const env = options.env ?? {};
	const passwords = Object.fromEntries(BUS_ROLES.map(role => [role, env[passwordEnv(role)] || randomBytes(24).toString("hex")])) as Record<BusRole, string>;
	const dir = mkdtempSync(path.join(tmpdir(), "shop-nats-"));
	chmodSync(dir, 0o700);
	const configFile = path.join(dir, "nats.conf");
	const text = natsConfigText({
		listen: options.listen,
		nodes: options.nodes,
		passwords: Object.fromEntries(BUS_ROLES.map(role => [role, { value: passwords[role] }])) as Record<BusRole, Password>
	});
	writeFileSync(configFile, text, { mode: 0o600 });
	return { dir, configFile, passwords };
}

/** `nats://role:password@host:port`: the TRANSPORTER of a node of that role. */
export function natsUrlFor(role: BusRole, password: string, hostPort: string): string {
	return `nats://${role}:${encodeURIComponent(password)}@${hostPort}`;
}

/**
 * docker/nats.conf: the compose layout's users (the five services; no ops user in production), their
 * passwords read by nats-server from its environment (NATS_<ROLE>_PASSWORD). A unit test keeps the
 * file equal to this; regenerate with `npm run build && node dist/scripts/nats-auth.js > docker/nats.conf`.
 */
export function composeNatsConfigText(layout: ReadonlyArray<{ nodeID: string; services: readonly string[] }>): string {
	const roles = BUS_ROLES.filter(role => role !== "ops");
	return natsConfigText({
		nodes: busNodesOf(layout, []),
		roles,
		passwords: Object.fromEntries(BUS_ROLES.map(role => [role, { env: passwordEnv(role) }])) as Record<BusRole, Password>
	});
}

if (require.main === module) process.stdout.write(composeNatsConfigText(CLUSTER_LAYOUT));
