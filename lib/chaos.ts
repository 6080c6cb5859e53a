/**
 * Chaos on purpose: a broker middleware that injects latency, errors or timeouts into chosen actions
 * on chosen nodes, so that an operator can rehearse a failure (README "Operating the shop / Chaos").
 *
 * - Switched at run time by a broadcast event, `chaos.switched`, sent by the REPL's `chaos` command
 *   or the admin action `POST /api/admin/chaos` (services/api/chaos.mixin.ts) through
 *   `switchChaos`. A middleware cannot handle events, so the middleware adds a tiny internal service,
 *   `$chaos`, to its broker: it takes the event on every node and answers `$chaos.rules` (what is
 *   active on that node).
 * - Time-limited: every rule has a duration (`for`, 30 s by default, 1 h at most) and ends by itself
 *   on each node, counted from when that node received it. A node started later gets none.
 * - Seeded: whether a call fails is drawn from a mulberry32 PRNG (lib/prng.ts) seeded with the rule's
 *   seed and the node's id, so the same calls on the same node fail the same way in a replay.
 * - Off by default, and refused on a node where CHAOS_ALLOWED is false (the default when
 *   NODE_ENV=production): there the middleware wraps nothing and `$chaos` ignores the event.
 *
 * An injected error is a `MoleculerRetryableError` with code 503 (`CHAOS_INJECTED`): a server error,
 * so the caller's circuit breaker counts it against that endpoint and the balancer moves to a healthy
 * node; a client that ends up with it gets the contract's 503. An injected timeout holds the call
 * longer than its caller waits (the caller's timeout + 500 ms), then lets it run, as a slow node does.
 */
import type { ActionHandler, ActionSchema, Context, Middleware, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { Errors } from "moleculer";
import { validationError } from "./errors";
import { seededRandom } from "./prng";

export const CHAOS_EVENT = "chaos.switched";
export const CHAOS_SERVICE = "$chaos";
export const CHAOS_ERROR_TYPE = "CHAOS_INJECTED";

/** A fault to inject, as it crosses the bus. */
export interface ChaosRule {
	/** The action, e.g. `payments.capture`, or every action of a service, `payments.*`. */
	action: string;
	/** The nodes it applies to; empty for every node. */
	nodes: string[];
	/** Probability (0..1) that a call fails with an injected server error. */
	errors: number;
	/** Probability (0..1) that a call is held longer than its caller waits. */
	timeouts: number;
	/** Delay (ms) added to every call. */
	latencyMs: number;
	/** How long the rule lasts (ms) from when a node receives it. */
	forMs: number;
	seed: number;
}

/** What `chaos.switched` carries: a rule to add (replacing one for the same action and nodes), or an end. */
export type ChaosSwitch = { on: ChaosRule } | { off: { action?: string } };

/** A rule active on a node. */
export interface ActiveChaosRule extends ChaosRule {
	until: string;
}

/** `$chaos.rules`: what one node does. */
export interface NodeChaos {
	nodeID: string;
	allowed: boolean;
	rules: ActiveChaosRule[];
}

/** The request, from the REPL's options or the REST body: durations as "2s", "500ms", "1m" or a number of milliseconds. */
export interface ChaosRequest {
	action: string;
	node?: string;
	errors?: number;
	timeouts?: number;
	latency?: string | number;
	for?: string | number;
	seed?: number;
}

export const DEFAULT_CHAOS_MS = 30_000;
const MAX_CHAOS_MS = 60 * 60_000;
const MAX_LATENCY_MS = 60_000;
const ACTION_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.(?:[A-Za-z0-9_-]+|\*)$/;
const NODE_LIST = /^[A-Za-z0-9_.-]+(?:,[A-Za-z0-9_.-]+)*$/;

const duration = {
	type: "multi",
	optional: true,
	rules: [
		{ type: "string", max: 16 },
		{ type: "number", integer: true, min: 0 }
	]
};

/** The request's schema (fastest-validator): the admin action's params, and what the REPL checks its options with. */
export const CHAOS_PARAMS = {
	action: { type: "string", pattern: ACTION_NAME, max: 128 },
	node: { type: "string", pattern: NODE_LIST, max: 512, optional: true },
	errors: { type: "number", min: 0, max: 1, optional: true },
	timeouts: { type: "number", min: 0, max: 1, optional: true },
	latency: duration,
	for: duration,
	seed: { type: "number", integer: true, min: 0, max: 2 ** 32 - 1, optional: true },
	$$strict: "remove"
} as const;

/** "2s", "500ms", "1.5m", "250" (ms) or a number of ms; throws a validation error naming `field`. */
export function parseDuration(field: string, value: string | number): number {
	if (typeof value === "number") return value;
	const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
	if (!match) throw validationError(field, `${field} must be a duration such as 500ms, 2s or 1m`, "duration");
	const factor = match[2] === "m" ? 60_000 : match[2] === "s" ? 1000 : 1;
	return Math.round(Number(match[1]) * factor);
}

/** The rule a validated request asks for; throws a validation error (422) for what the schema cannot say. */
export function chaosRule(request: ChaosRequest): ChaosRule {
	const latencyMs = request.latency === undefined ? 0 : parseDuration("latency", request.latency);
	const forMs = request.for === undefined ? DEFAULT_CHAOS_MS : parseDuration("for", request.for);
	if (latencyMs > MAX_LATENCY_MS) throw validationError("latency", `latency must be at most ${MAX_LATENCY_MS / 1000}s`, "duration");
	if (forMs < 100 || forMs > MAX_CHAOS_MS) throw validationError("for", `for must be between 100ms and ${MAX_CHAOS_MS / 60_000}m`, "duration");
	const rule: ChaosRule = {
		action: request.action,
		nodes: request.node ? [...new Set(request.node.split(","))].sort() : [],
		errors: request.errors ?? 0,
		timeouts: request.timeouts ?? 0,
		latencyMs,
		forMs,
		seed: request.seed ?? 1
	};
	if (rule.errors === 0 && rule.timeouts === 0 && rule.latencyMs === 0) {
		throw validationError("errors", "Name a fault: errors, timeouts (probabilities 0..1) or latency", "chaosFault");
	}
	return rule;
}

/**
 * Sends a switch to every node (the event reaches this node too). Given the request that asked for
 * it (the admin API's), the event carries its request id: each node's log line of the switch does too.
 */
export async function switchChaos(broker: ServiceBroker, change: ChaosSwitch, parentCtx?: Context): Promise<void> {
	await broker.broadcast(CHAOS_EVENT, change, parentCtx ? { parentCtx } : undefined);
}

/** A short line for a rule: `payments.capture on payments-1: errors 100% for 30s`. */
export function describeRule(rule: ChaosRule): string {
	const faults = [
		rule.errors > 0 ? `errors ${Math.round(rule.errors * 100)}%` : null,
		rule.timeouts > 0 ? `timeouts ${Math.round(rule.timeouts * 100)}%` : null,
		rule.latencyMs > 0 ? `latency ${rule.latencyMs}ms` : null
	].filter(Boolean);
	return `${rule.action} on ${rule.nodes.length > 0 ? rule.nodes.join(",") : "every node"}: ${faults.join(", ")} for ${rule.forMs / 1000}s (seed ${rule.seed})`;
}

/** A string hash (FNV-1a), to give each node its own PRNG stream for a seed. */
function hash(text: string): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
	return h >>> 0;
}

interface Active {
	rule: ChaosRule;
	until: number;
	timer: NodeJS.Timeout;
	random: () => number;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

export interface ChaosOptions {
	/** CHAOS_ALLOWED: false makes this node refuse every switch and wrap nothing. */
	allowed: boolean;
}

/** The middleware (one per broker) with its `$chaos` service. */
export function chaosMiddleware(options: ChaosOptions): Middleware {
	const active = new Map<string, Active>();
	let broker: ServiceBroker;
	let logger: ServiceBroker["logger"];

	const keyOf = (rule: ChaosRule) => `${rule.action}@${rule.nodes.join(",")}`;
	const matches = (pattern: string, action: string) => pattern === action || (pattern.endsWith(".*") && action.startsWith(pattern.slice(0, -1)));

	function end(key: string, why: string) {
		const found = active.get(key);
		if (!found) return;
		clearTimeout(found.timer);
		active.delete(key);
		logger.warn(`Chaos ${why}: ${describeRule(found.rule)}`);
	}

	function apply(change: ChaosSwitch) {
		if (!options.allowed) {
			logger.warn("Chaos refused: this node does not allow it (CHAOS_ALLOWED=false, the default when NODE_ENV=production).");
			return;
		}
		if ("off" in change) {
			for (const [key, { rule }] of active) if (change.off.action === undefined || rule.action === change.off.action) end(key, "switched off");
			return;
		}
		const rule = change.on;
		if (rule.nodes.length > 0 && !rule.nodes.includes(broker.nodeID)) return;
		const key = keyOf(rule);
		end(key, "replaced");
		const timer = setTimeout(() => end(key, "ended by itself"), rule.forMs);
		timer.unref();
		active.set(key, { rule, until: Date.now() + rule.forMs, timer, random: seededRandom((rule.seed ^ hash(broker.nodeID)) >>> 0) });
		logger.warn(`Chaos on: ${describeRule(rule)}`);
	}

	function ruleFor(action: string): Active | undefined {
		for (const entry of active.values()) if (matches(entry.rule.action, action)) return entry;
		return undefined;
	}

	const service: ServiceSchema = {
		name: CHAOS_SERVICE,
		actions: {
			rules: {
				visibility: "public",
				handler(): NodeChaos {
					const rules = [...active.values()].map(({ rule, until }) => ({ ...rule, until: new Date(until).toISOString() }));
					return { nodeID: broker.nodeID, allowed: options.allowed, rules };
				}
			}
		},
		events: {
			[CHAOS_EVENT]: {
				handler(ctx: Context<ChaosSwitch>) {
					try {
						apply(ctx.params);
					} catch (err) {
						logger.error(`Chaos switch not applied: ${(err as Error).message}`);
					}
				}
			}
		},
		stopped() {
			for (const key of [...active.keys()]) end(key, "stopped with the node");
		}
	};

	return {
		name: "Chaos",
		created(created: ServiceBroker) {
			broker = created;
			logger = broker.getLogger("chaos");
			broker.createService(service);
		},
		localAction(next: ActionHandler, action: ActionSchema): ActionHandler {
			const name = String(action.name ?? "");
			if (!options.allowed || name.startsWith("$")) return next;
			// No rule (nearly always): the handler itself, with no extra promise on the hot path.
			return function chaos(this: Service, ctx: Context) {
				const entry = active.size > 0 ? ruleFor(name) : undefined;
				return entry ? injected.call(this, ctx, entry) : next.call(this, ctx);
			};
			async function injected(this: Service, ctx: Context, entry: NonNullable<ReturnType<typeof ruleFor>>) {
				const { rule, random } = entry;
				const fails = random() < rule.errors;
				const stalls = random() < rule.timeouts;
				if (rule.latencyMs > 0) await sleep(rule.latencyMs);
				if (fails) {
					throw new Errors.MoleculerRetryableError(`Chaos: an error injected into ${name} on ${broker.nodeID}`, 503, CHAOS_ERROR_TYPE, {
						action: name,
						nodeID: broker.nodeID
					});
				}
				if (stalls) await sleep((ctx.options.timeout || broker.options.requestTimeout || 10_000) + 500);
				return next.call(this, ctx);
			}
		}
	};
}

/**
 * What every shop node on the bus does (`$chaos.rules` asked of each node that has the middleware; a
 * test observer has not); a node that does not answer in time is listed as such.
 */
export async function chaosOnEveryNode(broker: ServiceBroker): Promise<Array<NodeChaos | { nodeID: string; error: string }>> {
	const nodes = await broker.call<Array<{ id: string; services?: Array<{ name: string }> }>, object>("$node.list", { onlyAvailable: true, withServices: true });
	const answers = await Promise.all(
		nodes
			.filter(node => node.services?.some(service => service.name === CHAOS_SERVICE))
			.map(node =>
				broker
					.call<NodeChaos, object>(`${CHAOS_SERVICE}.rules`, {}, { nodeID: node.id, timeout: 1500, retries: 0 })
					.catch((err: Error) => ({ nodeID: node.id, error: err.name }))
			)
	);
	return answers.sort((a, b) => a.nodeID.localeCompare(b.nodeID));
}
