/**
 * What the cluster looks like from one node: the broker's own registry (`$node.list` with services)
 * and each live node's metrics (`$node.metrics`, called on that node). Shown by the back office
 * (`GET /api/admin/cluster`, services/api/web.mixin.ts) and by the REPL's `cluster` command.
 */
import type { CallingOptions, ServiceBroker } from "moleculer";
import { SERVICE_NAMES } from "./config";
import type { ClusterAnswer, ClusterNode } from "./types";

export type { ClusterAnswer, ClusterNode };

/** Whatever can call actions: a broker (the REPL) or a context (an action). */
export interface Caller {
	call<T, P>(action: string, params: P, opts?: CallingOptions): Promise<T>;
}

/** One node as `$node.list({ withServices: true })` answers it (the fields read here). */
interface RegistryNode {
	id: string;
	available: boolean;
	local: boolean;
	hostname?: string;
	cpu?: number | null;
	lastHeartbeatTime?: number | null;
	services?: Array<{ name: string }>;
}

/** A metric as `$node.metrics` answers it. */
interface MetricSnapshot {
	name: string;
	values: Array<{ labels: Record<string, unknown>; value: number }>;
}

const isShopService = (name: string) => !name.startsWith("$");

/** Sums a node's local request counters (its own handling, not the calls it made), internal `$node` calls left out. */
function requestCounts(metrics: MetricSnapshot[]): Pick<ClusterNode, "requests" | "errors" | "actions"> {
	let requests = 0;
	let errors = 0;
	const actions: Record<string, number> = {};
	for (const metric of metrics) {
		for (const { labels, value } of metric.values) {
			const action = String(labels.action ?? "");
			if (labels.type !== "local" || !isShopService(action)) continue;
			if (metric.name === "moleculer.request.total") {
				requests += value;
				actions[action] = (actions[action] ?? 0) + value;
			} else if (metric.name === "moleculer.request.error.total") errors += value;
		}
	}
	return { requests, errors, actions };
}

/** The registry stamps heartbeats with this process's `Math.round(process.uptime())`: as a date. */
const fromUptime = (seconds: number | null | undefined) =>
	typeof seconds === "number" ? new Date(Date.now() - (process.uptime() - seconds) * 1000).toISOString() : null;

/** The cluster as `broker` sees it; `caller` makes the calls (the request's context in an action). */
export async function clusterView(broker: ServiceBroker, caller: Caller = broker): Promise<ClusterAnswer> {
	const listed = await caller.call<RegistryNode[], { withServices: boolean }>("$node.list", { withServices: true });
	const timeout = broker.options.heartbeatTimeout ?? 15;
	const nodes = await Promise.all(
		listed.map(async (node): Promise<ClusterNode> => {
			const services = (node.services ?? []).map(service => service.name).filter(isShopService);
			const silentFor = node.local || node.lastHeartbeatTime == null ? 0 : Math.max(0, Math.round(process.uptime()) - node.lastHeartbeatTime);
			const available = node.available && silentFor <= timeout;
			const counted = available
				? await caller
						.call<MetricSnapshot[], { includes: string[] }>(
							"$node.metrics",
							{ includes: ["moleculer.request.total", "moleculer.request.error.total"] },
							{ nodeID: node.id, timeout: 1500, retries: 0 }
						)
						.then(requestCounts, () => null)
				: null;
			return {
				id: node.id,
				available,
				silentFor,
				local: node.local,
				hostname: node.hostname ?? null,
				cpu: typeof node.cpu === "number" ? node.cpu : null,
				lastSeen: node.local ? new Date().toISOString() : fromUptime(node.lastHeartbeatTime),
				services,
				requests: counted?.requests ?? null,
				errors: counted?.errors ?? null,
				actions: counted?.actions ?? {}
			};
		})
	);
	nodes.sort((a, b) => a.id.localeCompare(b.id));
	const services = Object.fromEntries(
		SERVICE_NAMES.map(name => [name, nodes.filter(node => node.available && node.services.includes(name)).map(node => node.id)])
	);
	return {
		gateway: broker.nodeID,
		heartbeatTimeout: timeout,
		services,
		ready: Object.values(services).every(ids => ids.length > 0),
		nodes,
		at: new Date().toISOString()
	};
}
