/**
 * An observer on the shop's bus: a ServiceBroker with no services that joins the namespace "shop" on
 * a test's nats-server, to wait for exactly what a cluster test needs (which node sees which service
 * on which nodes) instead of sleeping or taking the gateway's readiness as a proxy.
 *
 * It asks each node for its own view through the built-in `$node.services` action, so "orders-1
 * sees payments on payments-1 and payments-2" means what it says: the node that makes the call
 * has both endpoints in its registry.
 */
import type { ServiceBroker } from "moleculer";
import { servicesSeenBy, startBusWatcher } from "../../scripts/roll";

/** Per service name, the ids of the nodes that must offer it (available); `[]` means no node may. */
export type Layout = Record<string, string[]>;

export interface Observer {
	broker: ServiceBroker;
	/** Per service (internal `$` services left out), the available nodes `viewer` sees offering it, sorted. */
	seenBy(viewer: string): Promise<Layout>;
	/**
	 * Waits until every viewer sees each service of `layout` on exactly the nodes listed (other
	 * services are not looked at). Fails after `timeoutMs` with what each viewer saw last.
	 */
	waitUntilSeen(viewers: string[], layout: Layout, timeoutMs?: number): Promise<void>;
	stop(): Promise<void>;
}

export interface ObserverOptions {
	nodeID?: string;
	/** The shop's TRANSIT_KEY, when its nodes encrypt the bus. */
	transitKey?: Buffer;
}

/** `natsUrl` carries the credentials of a user that may call every node (the `ops` role on a closed bus). */
export async function startObserver(natsUrl: string, options: ObserverOptions = {}): Promise<Observer> {
	// The broker of `npm run cluster -- roll`'s watcher (scripts/roll.ts): the shop's heartbeat settings, so a node
	// killed with -9 leaves this registry within ~5 s; no retries, a 2 s request timeout.
	const { broker } = await startBusWatcher({ url: natsUrl, nodeID: options.nodeID ?? `observer-${process.pid}`, transitKey: options.transitKey });

	async function seenBy(viewer: string): Promise<Layout> {
		const layout: Layout = {};
		for (const item of await servicesSeenBy(broker, viewer)) (layout[item.name] ??= []).push(item.nodeID);
		for (const nodes of Object.values(layout)) nodes.sort();
		return layout;
	}

	async function waitUntilSeen(viewers: string[], layout: Layout, timeoutMs = 30_000): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		const last = new Map<string, Layout | string>();
		const matches = (seen: Layout) => Object.entries(layout).every(([service, nodes]) => [...nodes].sort().join(",") === (seen[service] ?? []).join(","));
		let pending = [...viewers];
		for (;;) {
			const answers = await Promise.all(
				pending.map(async viewer => {
					try {
						const seen = await seenBy(viewer);
						last.set(viewer, seen);
						return matches(seen);
					} catch (err) {
						// The viewer is not on the bus yet (or no longer): ask again.
						last.set(viewer, `no answer: ${(err as Error).message}`);
						return false;
					}
				})
			);
			pending = pending.filter((_, i) => !answers[i]);
			if (pending.length === 0) return;
			if (Date.now() > deadline) {
				const views = pending.map(viewer => `${viewer} sees ${JSON.stringify(last.get(viewer))}`).join("; ");
				throw new Error(`within ${timeoutMs} ms, not every node saw ${JSON.stringify(layout)}: ${views}`);
			}
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	}

	return { broker, seenBy, waitUntilSeen, stop: () => broker.stop() };
}
