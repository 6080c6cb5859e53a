/**
 * Moleculer's built-in middlewares (node_modules/moleculer/src/middlewares), which its type
 * declarations do not list: the shop replaces three of them (lib/broker-middlewares.ts) by wrappers
 * that reuse them.
 */
import * as moleculer from "moleculer";
import type { ActionSchema, Context, Middleware, ServiceBroker } from "moleculer";

/** A built-in middleware as Moleculer's middleware handler calls it (with the broker as `this` too). */
export type MiddlewareFactory = (this: ServiceBroker, broker: ServiceBroker) => Middleware;

/** An action handler as middlewares wrap it: a context in, a promise out. */
export type CallHandler = (ctx: Context) => Promise<unknown>;

/** A middleware's `localAction` / `remoteAction` hook (Moleculer calls it with the broker as `this`). */
export type ActionHook = (this: ServiceBroker, next: CallHandler, action: ActionSchema) => CallHandler;

export const builtinMiddlewares = (moleculer as unknown as { Middlewares: Record<"Metrics" | "Timeout" | "Tracing", MiddlewareFactory> }).Middlewares;
