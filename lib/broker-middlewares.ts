/**
 * The broker's middlewares: the shop's own, then Moleculer's internal ones in Moleculer's order, three
 * of them replaced by cheaper versions built on Moleculer's own (issue 10, README "Operating the shop").
 * For a broker with `internalMiddlewares: false` (moleculer.config.ts): Moleculer then adds none of
 * its own, and these are the whole chain.
 *
 * - Timeout → `CallTimeouts` (lib/call-timeouts.ts): timers on remote calls and on local calls that
 *   have a timeout of their own or a waiting handler with none, not on every local call.
 * - Tracing → `SampledTracing` (lib/tracing.ts): no span built for a request that is not sampled.
 * - Metrics → `CallMetrics` (lib/call-metrics.ts): the same request metrics, labels bound once per
 *   action and caller instead of hashed five times per call.
 * - Validator → `RedactingValidator` (lib/validation.ts): the broker's validator, its errors without
 *   the refused values (a mistyped card number or password would be logged at debug).
 *
 * Everything else is Moleculer's, by name, in the order of `INTERNAL_MIDDLEWARES` in
 * node_modules/moleculer/src/service-broker.js (the first listed wraps the handler innermost).
 */
import type { BrokerOptions, Middleware } from "moleculer";
import { CallMetrics } from "./call-metrics";
import { CallTimeouts } from "./call-timeouts";
import { SampledTracing } from "./tracing";
import { RedactingValidator } from "./validation";

type Entry = NonNullable<BrokerOptions["middlewares"]>[number];

export const INTERNAL_MIDDLEWARES: readonly Entry[] = [
	"ActionHook",
	RedactingValidator as unknown as Entry,
	"Bulkhead",
	"Cacher",
	"ContextTracker",
	"CircuitBreaker",
	CallTimeouts as unknown as Entry,
	"Retry",
	"Fallback",
	"ErrorHandler",
	SampledTracing as unknown as Entry,
	CallMetrics as unknown as Entry,
	"Debounce",
	"Throttle"
];

/** `middlewares` for a broker with `internalMiddlewares: false`: the shop's (innermost first), then the internal ones. */
export function shopMiddlewares(own: Middleware[]): Entry[] {
	return [...own, ...INTERNAL_MIDDLEWARES];
}
