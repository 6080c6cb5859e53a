/**
 * What the REPL's shop commands share: the operator's identity on calls, the table printer moleculer-repl
 * hands them, and small formatters.
 *
 * The REPL is trusted as a node: it is on the bus only with the `ops` NATS user's password and the
 * TRANSIT_KEY (or in the shop's own process), so its calls carry an admin identity in `ctx.meta.user`,
 * as the gateway does for an admin who showed a valid token (mixins/auth.mixin.ts).
 */
import type { CallingOptions, ServiceBroker } from "moleculer";
import type { AuthUser, ShopMeta } from "../types";

/** What moleculer-repl passes to a custom command's action (src/index.js, registerCustomCommands). */
export interface ReplArgs {
	options: Record<string, unknown>;
	rawCommand: string;
	[operand: string]: unknown;
}

interface TableConfig {
	border?: unknown;
	drawHorizontalLine?: (index: number, size: number) => boolean;
}

export interface ReplHelpers {
	table(rows: unknown[][], config?: TableConfig): string;
	getBorderCharacters(name: string): unknown;
}

/** A custom command as moleculer-repl 0.8 declares one (`replOptions.customCommands`). */
export interface ReplCommand {
	command: string;
	description: string;
	options?: Array<{ option: string; description: string }>;
	action(broker: ServiceBroker, args: ReplArgs, helpers: ReplHelpers): Promise<void>;
}

/** The operator, as the calls of the REPL name it. */
export function operator(broker: ServiceBroker): AuthUser {
	return { id: `ops:${broker.nodeID}`, email: `repl@${broker.nodeID}`, role: "admin" };
}

/** Calls an action as the operator (an admin). */
export function callAsAdmin<T, P extends object>(broker: ServiceBroker, action: string, params: P, opts: CallingOptions = {}): Promise<T> {
	const meta: ShopMeta = { user: operator(broker) };
	return broker.call<T, P>(action, params, { ...opts, meta });
}

/** A table with a header line, in the REPL's usual style. */
export function printTable(helpers: ReplHelpers, header: string[], rows: unknown[][]): void {
	const text = helpers.table([header, ...rows], {
		border: helpers.getBorderCharacters("honeywell"),
		drawHorizontalLine: (index, size) => index === 0 || index === 1 || index === size
	});
	process.stdout.write(text);
}

/** What to print for an error: its name and message (never a stack; no params, so no secret). */
export function explain(err: unknown): string {
	const e = err as { name?: unknown; message?: unknown; data?: unknown } | null;
	// A validation error: what is wrong with each field.
	if (Array.isArray(e?.data) && e.data.every(item => typeof (item as { message?: unknown })?.message === "string")) {
		return (e.data as Array<{ message: string }>).map(item => item.message).join("; ");
	}
	const data = e?.data && typeof e.data === "object" ? ` ${JSON.stringify(e.data)}` : "";
	return `${String(e?.name ?? "Error")}: ${String(e?.message ?? err)}${data}`;
}

/** "42s", "3m 05s", "2h 10m". */
export function age(ms: number): string {
	const s = Math.max(0, Math.floor(ms / 1000));
	if (s < 60) return `${s}s`;
	if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
	return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Cents as dollars: 1999 → "$19.99". */
export const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;
