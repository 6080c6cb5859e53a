/**
 * A call a stopping node refused is sent to another node, even for an action that is never retried.
 *
 * When a node stops, Moleculer first tells the others it offers nothing (an empty INFO), waits
 * `registry.stopDelay`, then sets `broker.stopping`: from then on, a request that still arrives (its
 * caller picked the node before the INFO reached it) is answered at once with a
 * `ServiceNotAvailableError` naming the action and the refusing node, without running anything
 * (node_modules/moleculer/src/transit.js, requestHandler). Moleculer's retry policy would send it
 * elsewhere, but the shop turns that policy off for the actions whose retry after a lost answer could
 * act twice (orders.create, users.register, ...): those calls failed, and a client saw a 503 during
 * a rolling restart.
 *
 * Such a refusal is safe to send again whatever the action: nothing ran. This middleware, on the
 * calling node, sends a remote call refused that way to another node that offers the action (at
 * most twice; not back to a node that refused it, even if this caller has not heard it leave yet).
 * Every other error, a timeout above all, is left alone: the call may have run.
 */
import type { Context, Errors, Middleware, ServiceBroker } from "moleculer";

/** Attempts after the first. */
const RETRIES = 2;
const DELAY_MS = 50;

/** True when `err` is a node's refusal of this very call before running it (not an error the action raised). */
export function isRefusedUnrun(err: unknown, ctx: Context): boolean {
	const error = err as Errors.MoleculerError | null;
	if (!error || (error.name !== "ServiceNotAvailableError" && error.name !== "ServiceNotFoundError")) return false;
	// `ran`: the node had started the handler (mixins/db.mixin.ts, a database closing under it).
	const data = error.data as { action?: string; nodeID?: string; ran?: boolean } | undefined;
	return data?.action === ctx.action?.name && data?.nodeID === ctx.nodeID && data?.ran !== true;
}

interface RetriedContext extends Context {
	/** The nodes that refused this call so far. */
	_refusedBy?: string[];
}

interface Endpoints {
	endpoints: Array<{ id: string; isAvailable: boolean }>;
}

export function RefusedRetryMiddleware(): Middleware {
	let broker: ServiceBroker;
	return {
		name: "RefusedRetry",
		created(created: ServiceBroker) {
			broker = created;
		},
		remoteAction(handler: (ctx: Context) => Promise<unknown>, action: { name: string; retryPolicy?: { enabled?: boolean } }) {
			// With a retry policy on, Moleculer's own Retry middleware already retries this (the error is retryable).
			const policy = { ...broker.options.retryPolicy, ...action.retryPolicy };
			if (policy.enabled) return handler;
			return function refusedRetry(ctx: RetriedContext): Promise<unknown> {
				return handler(ctx).catch(async (err: unknown) => {
					const refusedBy = [...(ctx._refusedBy ?? []), ctx.nodeID!];
					// A call aimed at one node by its caller stays there.
					if (refusedBy.length > RETRIES || ctx.options.nodeID != null || !isRefusedUnrun(err, ctx)) throw err;
					await new Promise(resolve => setTimeout(resolve, DELAY_MS));
					const list = broker.registry.getActionEndpoints(action.name) as unknown as Endpoints | undefined;
					const others = (list?.endpoints ?? []).filter(endpoint => endpoint.isAvailable && !refusedBy.includes(endpoint.id));
					if (others.length === 0) throw err;
					const nodeID = others[Math.floor(Math.random() * others.length)].id;
					broker.logger.info(`'${action.name}' was refused unrun by stopping node '${ctx.nodeID}'; sending it to '${nodeID}'.`);
					const next = ctx.copy() as RetriedContext;
					next._refusedBy = refusedBy;
					return broker.call(action.name, ctx.params, { ctx: next, nodeID });
				});
			};
		}
	} as Middleware;
}
