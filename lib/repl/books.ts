/** `books [--settle 10s]`: the invariants audit (lib/books.ts) over the broker, as a table. */
import type { ServiceBroker } from "moleculer";
import { auditBooks, type AuditPage, type BooksSource, type ExportPage } from "../books";
import { parseDuration } from "../chaos";
import type { Product } from "../types";
import { callAsAdmin, explain, printTable, type ReplCommand } from "./common";

/** The shop read through the broker, as an admin. */
export function brokerSource(broker: ServiceBroker): BooksSource {
	return {
		productsPage: (page, pageSize) => callAsAdmin<AuditPage<Product>, object>(broker, "inventory.list", { page, pageSize }),
		async stockOf(id) {
			try {
				return (await callAsAdmin<Product, object>(broker, "inventory.get", { id })).stock;
			} catch (err) {
				if ((err as { code?: unknown }).code === 404) return null;
				throw err;
			}
		},
		exportPage: (after, limit) => callAsAdmin<ExportPage, object>(broker, "orders.export", after === undefined ? { limit } : { after, limit })
	};
}

export const booksCommand: ReplCommand = {
	command: "books",
	description: "Audit the books: the contract's invariants on stock and payments, as a table",
	options: [
		{ option: "--settle <duration>", description: "first wait up to this long for pending orders to settle (then a pending order is a problem), e.g. 10s" }
	],
	async action(broker, args, helpers) {
		const settle = args.options.settle as string | undefined;
		let settleWithinMs: number | undefined;
		try {
			settleWithinMs = settle === undefined ? undefined : parseDuration("settle", settle);
		} catch (err) {
			return void console.log(`books: ${explain(err)}`);
		}
		const started = Date.now();
		let books;
		try {
			books = await auditBooks(brokerSource(broker), { settleWithinMs });
		} catch (err) {
			return void console.log(`books: the audit could not read the shop: ${explain(err)}`);
		}
		const { summary, problems } = books;
		const broken = (prefix: RegExp) => problems.filter(problem => prefix.test(problem)).length;
		const verdict = (n: number) => (n === 0 ? "ok" : `${n} broken`);
		const orders = summary.orders;
		printTable(
			helpers,
			["rule", "checked", "result"],
			[
				[
					"orders",
					`${orders.confirmed} confirmed, ${orders.pending} pending, ${orders.cancelled} cancelled`,
					// Without --settle a pending order may still be on its way: counted, not judged.
					settleWithinMs !== undefined ? verdict(broken(/still pending$/)) : orders.pending === 0 ? "ok" : "pending allowed (see --settle)"
				],
				["stock never negative", `${summary.productsChecked} products`, verdict(broken(/negative stock/))],
				[
					"stock = initial + restocks - held",
					summary.stockConservation ? `${summary.productsChecked} products` : "not checked: the REPL does not know the initial stock",
					""
				],
				["confirmed: one captured payment of its total", `${orders.confirmed} orders`, verdict(broken(/confirmed with/))],
				["cancelled: no captured payment left", `${orders.cancelled} orders`, verdict(broken(/cancelled but/))]
			]
		);
		for (const problem of problems.slice(0, 20)) console.log(`  ${problem}`);
		if (problems.length > 20) console.log(`  ... and ${problems.length - 20} more`);
		console.log(
			`${problems.length === 0 ? "The books balance" : `${problems.length} problem(s)`} (${summary.paymentsChecked} orders audited in ${Date.now() - started} ms)`
		);
	}
};
