/** `orders [--status s] [--stuck] [--older 60s] [--limit 20]`: the newest orders, as an admin sees them. */
import type { ServiceBroker } from "moleculer";
import type { AuditedOrder, AuditPage } from "../books";
import { parseDuration } from "../chaos";
import { age, callAsAdmin, explain, money, printTable, type ReplCommand } from "./common";

const STATUSES = ["pending", "confirmed", "cancelled"];
/** A pending order older than this is stuck: it settles in seconds when every service answers. */
export const STUCK_AFTER_MS = 60_000;

type ListParams = { page: number; pageSize: number; status?: string };

async function pendingOlderThan(broker: ServiceBroker, ms: number): Promise<{ rows: AuditedOrder[]; scanned: number }> {
	const rows: AuditedOrder[] = [];
	let scanned = 0;
	for (let page = 1; ; page++) {
		const answer = await callAsAdmin<AuditPage<AuditedOrder>, ListParams>(broker, "orders.list", { page, pageSize: 100, status: "pending" });
		scanned += answer.rows.length;
		rows.push(...answer.rows.filter(order => Date.now() - Date.parse(order.createdAt) > ms));
		if (page >= answer.totalPages) return { rows, scanned };
	}
}

export const ordersCommand: ReplCommand = {
	command: "orders",
	description: "List the newest orders (id, status, age, total, owner node); --stuck: pending too long",
	options: [
		{ option: "-s, --status <status>", description: `only orders in this status (${STATUSES.join(", ")})` },
		{ option: "--stuck", description: `only pending orders older than --older (default ${STUCK_AFTER_MS / 1000}s)` },
		{ option: "--older <duration>", description: "with --stuck: the age from which a pending order is stuck, e.g. 30s, 5m" },
		{ option: "-n, --limit <n>", description: "how many to show (default 20, at most 100)" }
	],
	async action(broker, args, helpers) {
		const { status, stuck, older, limit } = args.options as { status?: string; stuck?: boolean; older?: string; limit?: string };
		if (status !== undefined && !STATUSES.includes(status)) return void console.log(`--status must be one of ${STATUSES.join(", ")}`);
		const shown = limit === undefined ? 20 : Number(limit);
		if (!Number.isInteger(shown) || shown < 1 || shown > 100) return void console.log("--limit must be a whole number from 1 to 100");
		let rows: AuditedOrder[];
		let summary: string;
		try {
			if (stuck) {
				if (status !== undefined && status !== "pending") return void console.log("--stuck lists pending orders: leave --status out");
				const threshold = older === undefined ? STUCK_AFTER_MS : parseDuration("older", older);
				const found = await pendingOlderThan(broker, threshold);
				rows = found.rows.slice(0, shown);
				summary = `${found.rows.length} stuck order(s): pending for more than ${threshold / 1000}s (of ${found.scanned} pending)`;
			} else {
				const page = await callAsAdmin<AuditPage<AuditedOrder>, ListParams>(broker, "orders.list", { page: 1, pageSize: shown, ...(status ? { status } : {}) });
				rows = page.rows;
				summary = `${rows.length} of ${page.total} order(s)${status ? ` ${status}` : ""}, newest first`;
			}
		} catch (err) {
			return void console.log(`orders: ${explain(err)}`);
		}
		const now = Date.now();
		printTable(
			helpers,
			["id", "status", "reason", "age", "total", "owner node"],
			rows.map(order => [order.id, order.status, order.cancelReason ?? "", age(now - Date.parse(order.createdAt)), money(order.total), order.ownerNode ?? ""])
		);
		console.log(summary);
	}
};
