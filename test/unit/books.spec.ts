/**
 * The books audit (lib/books.ts) against a shop made up in memory: each broken invariant is found
 * and named, balanced books have no problem, and the audit reads orders and payments through the
 * export's pages (a few requests, not one per order).
 */
import { auditBooks, type BooksSource, type ExportedOrder } from "../../lib/books";
import type { OrderStatus } from "../../lib/types";

let counter = 0;
function order(status: OrderStatus, payments: ExportedOrder["payments"], lines: Array<[string, number]> = [["p1", 1]], total = 1000): ExportedOrder {
	const id = `order-${++counter}`;
	return {
		id,
		userId: "user-1",
		status,
		total,
		cancelReason: status === "cancelled" ? "cancelled_by_user" : null,
		items: lines.map(([productId, quantity]) => ({ productId, quantity, unitPrice: 100 })),
		createdAt: "2026-01-01T00:00:00.000Z",
		updatedAt: "2026-01-01T00:00:00.000Z",
		payments
	};
}

/** A shop's orders and stock as an admin source, counting its reads. */
function fakeSource(orders: ExportedOrder[], stock: Map<string, number>) {
	const reads = { exportPages: 0, productPages: 0, stockOf: 0 };
	const source: BooksSource = {
		async exportPage(after, limit) {
			reads.exportPages++;
			const start = after === undefined ? 0 : Number(after);
			const rows = orders.slice(start, start + limit);
			return { rows, next: rows.length < limit ? null : String(start + limit) };
		},
		async productsPage(page, pageSize) {
			reads.productPages++;
			const all = [...stock].map(([id, units]) => ({ id, stock: units }));
			return { rows: all.slice((page - 1) * pageSize, page * pageSize), total: all.length, totalPages: Math.ceil(all.length / pageSize) };
		},
		async stockOf(productId) {
			reads.stockOf++;
			return stock.get(productId) ?? null;
		}
	};
	return { source, reads };
}

const captured = (amount = 1000) => ({ status: "captured", amount });

describe("auditBooks", () => {
	it("balanced books: no problem, every order and product checked, in a few page reads", async () => {
		const orders = Array.from({ length: 2500 }, (_, i) =>
			i % 5 === 0 ? order("cancelled", [{ status: "refunded", amount: 1000 }]) : order("confirmed", [captured()])
		);
		const stock = new Map(Array.from({ length: 250 }, (_, i) => [`p${i}`, 10]));
		stock.set("p1", 100);
		const confirmedUnits = orders.filter(o => o.status === "confirmed").length;
		const { source, reads } = fakeSource(orders, stock);
		const expectedStock = new Map([...stock].map(([id, units]) => [id, id === "p1" ? units + confirmedUnits : units]));
		const books = await auditBooks(source, { expectedStock });
		expect(books.problems).toEqual([]);
		expect(books.summary).toEqual({
			orders: { pending: 0, confirmed: 2000, cancelled: 500 },
			productsChecked: 250,
			stockConservation: true,
			paymentsChecked: 2500
		});
		expect(books.orders).toHaveLength(2500);
		expect(reads).toEqual({ exportPages: 3, productPages: 3, stockOf: 0 });
	});

	it("names each broken rule", async () => {
		const orders = [
			order("confirmed", []),
			order("confirmed", [captured(999)]),
			order("confirmed", [captured(), captured()]),
			order("confirmed", [{ status: "declined", amount: 1000 }]),
			order("cancelled", [captured()]),
			order("pending", []),
			order("confirmed", [captured()], [["p2", 3]])
		];
		const { source } = fakeSource(
			orders,
			new Map([
				["p1", -1],
				["p2", 5]
			])
		);
		const books = await auditBooks(source, {
			expectedStock: new Map([
				["p1", 6],
				["p2", 9],
				["gone", 1]
			]),
			settleWithinMs: 0
		});
		const [noPayment, wrongAmount, twice, declined, cancelled, pending] = orders.map(o => o.id);
		expect(books.problems.sort()).toEqual(
			[
				`order ${pending}: still pending`,
				`product p1: negative stock -1`,
				// p1: four confirmed orders and a pending one hold a unit each (the cancelled one none).
				`product p1: stock -1 + units in confirmed and pending orders 5 != 6`,
				`product p2: stock 5 + units in confirmed and pending orders 3 != 9`,
				`product gone: not found`,
				`order ${noPayment}: confirmed with 0 captured payment(s) ( for a total of 1000)`,
				`order ${wrongAmount}: confirmed with 1 captured payment(s) (999 for a total of 1000)`,
				`order ${twice}: confirmed with 2 captured payment(s) (1000, 1000 for a total of 1000)`,
				`order ${declined}: confirmed with 0 captured payment(s) ( for a total of 1000)`,
				`order ${cancelled}: cancelled but a payment is still captured`
			].sort()
		);
	});

	it("without the initial stock, checks every catalogue product for negative stock only", async () => {
		const { source } = fakeSource(
			[order("confirmed", [captured()])],
			new Map([
				["p1", 0],
				["p2", -2]
			])
		);
		const books = await auditBooks(source);
		expect(books.problems).toEqual(["product p2: negative stock -2"]);
		expect(books.summary.productsChecked).toBe(2);
		expect(books.summary.stockConservation).toBe(false);
	});

	it("waits for pending orders to settle, reading the export again", async () => {
		const pending = order("pending", []);
		const { source, reads } = fakeSource([pending], new Map());
		setTimeout(() => Object.assign(pending, { status: "confirmed", payments: [captured()] }), 300);
		const books = await auditBooks(source, { settleWithinMs: 5000 });
		expect(books.problems).toEqual([]);
		expect(books.summary.orders.confirmed).toBe(1);
		expect(reads.exportPages).toBeGreaterThanOrEqual(2);
	});
});
