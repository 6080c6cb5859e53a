/**
 * The shop's nodes on a test's own NATS bus, closed as `npm run cluster` closes it: one nats-server
 * (or a cluster of them) with a NATS user per role, packets encrypted with a TRANSIT_KEY, one JWT
 * secret and one admin for every node. The cluster suites start their nodes through it and keep only
 * what is theirs (a node's extra environment, their layout, their assertions).
 *
 * `open: true` is a bus without NATS users nor TRANSIT_KEY (the back office's cluster view).
 */
import { randomBytes } from "node:crypto";
import type { BusNodes, BusRole } from "../../scripts/nats-auth";
import { startNats, startNatsCluster, type NatsCluster, type NatsServer } from "./nats";
import { startObserver, type Layout, type Observer } from "./observer";
import { startShop, tempDataDir, type ShopProcess, type StartOptions } from "./shop";

/** The roles of the shop's own nodes (each runs one service). */
export type ShopRole = Exclude<BusRole, "ops">;

const SHOP_ROLES: readonly string[] = ["api", "users", "inventory", "orders", "payments"] satisfies ShopRole[];

/** The observer's node id (let in as `ops`). */
export const OBSERVER = "observer";

export interface BusOptions {
	/** Names the admin (`admin@<name>.test`) and the data directory (`shop-<name>-…`). */
	name: string;
	/** The node ids NATS lets in per role (the observer is added to `ops`); ignored with `open`. */
	nodes?: Partial<BusNodes>;
	/** Start the observer with the bus (default), or later with `startObserver()`. */
	observer?: boolean;
	/** No NATS users, no TRANSIT_KEY. */
	open?: boolean;
}

export interface NodeOptions {
	/** Added to the bus's environment for this node (a value `undefined` removes a variable). */
	env?: Record<string, string | undefined>;
	port?: number;
	/** Default: "ready" for a gateway, "none" for any other node. */
	waitFor?: StartOptions["waitFor"];
	/** Default: the bus's data directory, shared by every node. */
	dataDir?: string;
	/** Default: every server of the bus, with the role's credentials. */
	transporter?: string;
}

export interface Bus<N extends NatsServer | NatsCluster> {
	nats: N;
	/** The TRANSIT_KEY of every node; null on an open bus. */
	transitKey: Buffer | null;
	jwtSecret: string;
	admin: { email: string; password: string };
	dataDir: string;
	/** Every node started through `startNode`, by node id (a node killed or stopped stays listed). */
	nodes: Map<string, ShopProcess>;
	/** The observer on the bus, as `ops` (throws if it is not started). */
	readonly observer: Observer;
	startObserver(): Promise<Observer>;
	/** The TRANSPORTER of a role's nodes: the bus's server(s), with the role's credentials on a closed bus. */
	urlFor(role: BusRole): string;
	/** The environment every node of this bus gets (on top of test/support/shop.ts's). */
	nodeEnv(nodeID: string, role: ShopRole, transporter?: string): Record<string, string>;
	/** Starts a shop node with the bus's environment (and `options.env`). */
	startNode(nodeID: string, role: ShopRole, options?: NodeOptions): Promise<ShopProcess>;
	/** Starts the nodes of `layout`: every node that is no gateway at once, then the gateways at once. */
	startNodes(layout: Layout, options?: Omit<NodeOptions, "port" | "transporter">): Promise<void>;
	/** `startNodes`, then waits until every one of those nodes sees every service of `layout` on exactly its nodes. */
	startLayout(layout: Layout, options?: Omit<NodeOptions, "port" | "transporter">): Promise<void>;
	/** Kills every node, stops the observer, then the NATS server(s). */
	stop(): Promise<void>;
}

/** A layout's roles, checked: a node on the bus runs exactly one of the shop's services. */
export function roleOf(service: string): ShopRole {
	if (!SHOP_ROLES.includes(service)) throw new Error(`${service} is not a role of the bus (one of ${SHOP_ROLES.join(", ")})`);
	return service as ShopRole;
}

/** The layout of a list of nodes (scripts/cluster-layout.ts): per service, its nodes. */
export function layoutOf(nodes: ReadonlyArray<{ nodeID: string; services: readonly string[] }>): Layout {
	const layout: Layout = {};
	for (const node of nodes) for (const service of node.services) (layout[service] ??= []).push(node.nodeID);
	return layout;
}

/** On one nats-server. */
export async function startBus(options: BusOptions): Promise<Bus<NatsServer>> {
	const nats = await startNats(options.open ? {} : { auth: natsUsers(options) });
	return bus(nats, options, role => (options.open ? nats.url : nats.urlFor(role)));
}

/** On `size` nats-servers joined by routes (resolves once the routes are up); every node is given every server. */
export async function startBusOnCluster(options: BusOptions & { size: number }): Promise<Bus<NatsCluster>> {
	if (options.open) throw new Error("a NATS cluster bus is always closed");
	const nats = await startNatsCluster({ size: options.size, auth: natsUsers(options) });
	try {
		await nats.waitForRoutes();
	} catch (err) {
		await nats.stop();
		throw err;
	}
	return bus(nats, options, role => nats.urlFor(role));
}

function natsUsers(options: BusOptions): Partial<BusNodes> {
	const ops = [...(options.nodes?.ops ?? [])];
	if (options.observer !== false && !ops.includes(OBSERVER)) ops.push(OBSERVER);
	return { ...options.nodes, ops };
}

async function bus<N extends NatsServer | NatsCluster>(nats: N, options: BusOptions, urlFor: (role: BusRole) => string): Promise<Bus<N>> {
	const transitKey = options.open ? null : randomBytes(32);
	let observer: Observer | undefined;
	const nodes = new Map<string, ShopProcess>();

	const self: Bus<N> = {
		nats,
		transitKey,
		jwtSecret: randomBytes(24).toString("hex"),
		admin: { email: `admin@${options.name}.test`, password: "admin-password-1" },
		dataDir: tempDataDir(`shop-${options.name}-`),
		nodes,
		get observer() {
			if (!observer) throw new Error("the bus's observer is not started");
			return observer;
		},
		async startObserver() {
			if (options.open) throw new Error("no observer on an open bus");
			observer ??= await startObserver(urlFor("ops"), { nodeID: OBSERVER, transitKey: transitKey! });
			return observer;
		},
		urlFor,
		nodeEnv(nodeID, role, transporter = urlFor(role)) {
			return {
				NODEID: nodeID,
				SERVICES: role,
				TRANSPORTER: transporter,
				...(transitKey ? { TRANSIT_KEY: transitKey.toString("hex") } : {}),
				JWT_SECRET: self.jwtSecret,
				ADMIN_EMAIL: self.admin.email,
				ADMIN_PASSWORD: self.admin.password,
				// Suites log in and register many times from 127.0.0.1.
				LOGIN_RATE_LIMIT: "100000",
				REGISTER_RATE_LIMIT: "100000"
			};
		},
		async startNode(nodeID, role, nodeOptions = {}) {
			const node = await startShop({
				dataDir: nodeOptions.dataDir ?? self.dataDir,
				waitFor: nodeOptions.waitFor ?? (role === "api" ? "ready" : "none"),
				port: nodeOptions.port,
				env: { ...self.nodeEnv(nodeID, role, nodeOptions.transporter), ...nodeOptions.env }
			});
			nodes.set(nodeID, node);
			return node;
		},
		async startNodes(layout, nodeOptions) {
			const all = Object.entries(layout).flatMap(([service, ids]) => ids.map(nodeID => ({ nodeID, role: roleOf(service) })));
			await Promise.all(all.filter(node => node.role !== "api").map(node => self.startNode(node.nodeID, node.role, nodeOptions)));
			await Promise.all(all.filter(node => node.role === "api").map(node => self.startNode(node.nodeID, node.role, nodeOptions)));
		},
		async startLayout(layout, nodeOptions) {
			await self.startNodes(layout, nodeOptions);
			await self.observer.waitUntilSeen(Object.values(layout).flat(), layout);
		},
		async stop() {
			await Promise.all([...nodes.values()].map(node => node.kill()));
			await observer?.stop();
			await nats.stop();
		}
	};
	if (options.observer !== false && !options.open) {
		try {
			await self.startObserver();
		} catch (err) {
			await nats.stop();
			throw err;
		}
	}
	return self;
}
