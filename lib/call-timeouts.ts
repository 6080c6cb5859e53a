/**
 * Request timeouts where a timer earns its cost (issue 10: Moleculer's Timeout middleware arms a
 * timer, with two extra promises, on every call, local ones included; it was the second largest
 * per-call cost).
 *
 * A timer does one thing: it answers a caller that would otherwise wait for a handler that never
 * ends (the handler itself runs on; nothing stops it). So one is armed where a caller waits that
 * nothing else answers in time:
 *
 * - Remote calls, on the calling node: always, as Moleculer does (`requestTimeout`, 5 s, unless
 *   the call or the action gives its own). Moleculer's own middleware does it, unchanged.
 * - Local calls with a timeout of their own: given by the caller (the order steps' 1.5 s, payments'
 *   budget, the back office's 1.5 s per node) or declared by the action (orders.create's 12 s).
 * - Local calls made inside a handler whose own call has no deadline: the broker's `requestTimeout`.
 *   That is where an HTTP client waits: the gateway's `api.rest` has `timeout: 0`, so each call it
 *   makes for a request (products.get, orders.create, ...) is timed, and a hung handler costs the
 *   client a 504 after 5 s, as before.
 *
 * and none is armed:
 *
 * - for a call that inherits its caller's deadline (Moleculer passes a handler's remaining time on to
 *   the calls it makes): when the enclosing call's deadline is guarded (by its own timer, or by the
 *   remote caller's) and comes no later, that timer answers the waiting client at the same moment. A
 *   handler that must act on a call's timeout itself (the order saga compensates) gives that call a
 *   timeout shorter than its own time left, as the order steps do, and gets a timer;
 * - for a request from another node: the caller's timer answers its client; the handler's deadline
 *   is still recorded, so the calls it makes inherit what is left;
 * - for a top-level local call of the process's own code (no handler awaits it: a REPL command, a
 *   test, the benchmark), with no timeout given: the code that makes it decides how long it waits.
 *
 * A remote call that timed out is also untracked here. Moleculer's ContextTracker (inside this
 * middleware) counts it as running until the transit's request settles, but its ErrorHandler (outside)
 * then drops the pending request, so the answer that comes late is an orphan and that request never
 * settles: the context stayed in the broker's list for good (memory), and the node's next stop waited
 * out `tracking.shutdownTimeout` (15 s, then an ERROR) for calls that had long been answered.
 */
import { Errors, type ActionSchema, type Context, type Middleware, type ServiceBroker } from "moleculer";
import { builtinMiddlewares, type ActionHook, type CallHandler } from "./moleculer-internals";

interface TimedContext extends Context {
	startHrTime: [number, number] | null;
	options: Context["options"] & { parentCtx?: TimedContext };
}

/** A context whose deadline a timer guards: ours, or the remote caller's (Moleculer counts the time left from `startHrTime`). */
const guarded = (ctx: TimedContext) => (ctx.options.timeout ?? 0) > 0 && ctx.startHrTime != null;

/** True when `ctx` inherits its deadline from a guarded enclosing call that ends no later. */
function inherited(ctx: TimedContext): boolean {
	const parent = ctx.options.parentCtx;
	if (parent == null || !guarded(parent)) return false;
	const [seconds, nanos] = process.hrtime(parent.startHrTime!);
	const left = parent.options.timeout! - (seconds * 1e3 + nanos / 1e6);
	return ctx.options.timeout! >= left - 1;
}

/** Takes a remote call the caller has given up on out of the ContextTracker's list (moleculer/src/middlewares/context-tracker.js). */
function untrack(broker: ServiceBroker, ctx: Context): void {
	const list = (broker as unknown as { _trackedContexts?: Context[] })._trackedContexts;
	const index = list ? list.indexOf(ctx) : -1;
	if (index !== -1) list!.splice(index, 1);
}

export function CallTimeouts(this: ServiceBroker, broker: ServiceBroker): Middleware {
	const builtin = builtinMiddlewares.Timeout.call(broker, broker);
	const timed = builtin.localAction as ActionHook;
	const timedRemote = builtin.remoteAction as ActionHook;
	const nodeID = broker.nodeID;

	return {
		...builtin,
		name: "Timeout",
		localAction(this: ServiceBroker, next: CallHandler, action: ActionSchema): CallHandler {
			const withTimer = timed.call(this, next, action);
			const actionTimeout = action.timeout;
			return function callTimeout(ctx: TimedContext) {
				const timeout = ctx.options.timeout;
				if (timeout == null) {
					// No timeout given: the action's, else `requestTimeout` when a handler waits with no deadline of its own.
					return actionTimeout != null || ctx.options.parentCtx != null ? withTimer(ctx) : next(ctx);
				}
				if (timeout > 0 && (ctx.nodeID !== nodeID || inherited(ctx))) {
					ctx.startHrTime ??= process.hrtime();
					return next(ctx);
				}
				return withTimer(ctx);
			};
		},
		remoteAction(this: ServiceBroker, next: CallHandler, action: ActionSchema): CallHandler {
			const withTimer = timedRemote.call(this, next, action);
			return function remoteCallTimeout(ctx: Context) {
				return withTimer(ctx).catch((err: unknown) => {
					if (err instanceof Errors.RequestTimeoutError) untrack(broker, ctx);
					throw err;
				});
			};
		}
	} as Middleware;
}
