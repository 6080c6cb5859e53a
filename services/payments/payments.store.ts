/** The payments database: the only code that knows its tables (see payments.migrations.ts). */
import { placeholders, type Database, type Sql } from "../../lib/db/database";
import type { Payment, PaymentStatus } from "../../lib/types";

/** A `payments` row as stored. */
interface PaymentRow {
	id: string;
	order_id: string;
	user_id: string;
	amount: number;
	status: PaymentStatus;
	card_last4: string;
	created_at: string;
	updated_at: string;
}

const toPayment = (row: PaymentRow): Payment => ({
	id: row.id,
	orderId: row.order_id,
	amount: row.amount,
	currency: "USD",
	status: row.status,
	cardLast4: row.card_last4,
	createdAt: row.created_at
});

export interface NewPayment {
	id: string;
	orderId: string;
	userId: string;
	amount: number;
	status: PaymentStatus;
	cardLast4: string;
}

export class PaymentsStore {
	constructor(private readonly db: Database) {}

	async listForOrder(orderId: string): Promise<Payment[]> {
		const rows = await this.db.all<PaymentRow>("SELECT * FROM payments WHERE order_id = $1 ORDER BY created_at", [orderId]);
		return rows.map(toPayment);
	}

	/** The payments of many orders (at most one each), in one query: the admin export's. */
	async listForOrders(orderIds: readonly string[]): Promise<Payment[]> {
		if (orderIds.length === 0) return [];
		const rows = await this.db.all<PaymentRow>(`SELECT * FROM payments WHERE order_id IN (${placeholders(orderIds.length)})`, orderIds);
		return rows.map(toPayment);
	}

	/**
	 * Records a payment unless the order already has one or was voided. Answers the order's payment
	 * (the new one, or the first one on a retry), or undefined when the order was voided.
	 */
	capture(payment: NewPayment): Promise<Payment | undefined> {
		// Against a void of the same order (resolve, refund) in another transaction on PostgreSQL.
		return this.db.writeLocked(`payment:${payment.orderId}`, async sql => {
			const now = new Date().toISOString();
			// One statement on the usual path: a new payment, unless the order was voided or has one. (The
			// casts type the bound values for PostgreSQL, which cannot infer them in a SELECT list.)
			const added = await sql.one<PaymentRow>(
				`INSERT INTO payments (id, order_id, user_id, amount, status, card_last4, created_at, updated_at)
				 SELECT CAST($1 AS VARCHAR(36)), CAST($2 AS VARCHAR(36)), CAST($3 AS VARCHAR(36)), CAST($4 AS BIGINT), CAST($5 AS VARCHAR(16)),
				        CAST($6 AS VARCHAR(4)), CAST($7 AS VARCHAR(30)), CAST($7 AS VARCHAR(30))
				 WHERE NOT EXISTS (SELECT 1 FROM voided_orders WHERE order_id = $2)
				 ON CONFLICT (order_id) DO NOTHING RETURNING *`,
				[payment.id, payment.orderId, payment.userId, payment.amount, payment.status, payment.cardLast4, now]
			);
			if (added) return toPayment(added);
			// A retry (the first one's payment), or voided (none).
			return this.find(sql, payment.orderId);
		});
	}

	/** Refunds a captured payment; answers the order's payment as it now is (undefined: none, and now voided). */
	refund(orderId: string): Promise<Payment | undefined> {
		return this.db.transaction(async sql => {
			const payment = await this.paymentOrVoid(sql, orderId);
			if (payment?.status !== "captured") return payment;
			await sql.run("UPDATE payments SET status = 'refunded', updated_at = $1 WHERE order_id = $2", [new Date().toISOString(), orderId]);
			return { ...payment, status: "refunded" };
		});
	}

	/** The order's payment; when it has none, the order is voided, so that no capture can ever charge it. */
	resolve(orderId: string): Promise<Payment | undefined> {
		return this.db.transaction(sql => this.paymentOrVoid(sql, orderId));
	}

	private async paymentOrVoid(sql: Sql, orderId: string): Promise<Payment | undefined> {
		// Against a capture of the same order in another transaction (PostgreSQL); SQLite writes one at a time.
		await this.db.lock(sql, `payment:${orderId}`);
		const payment = await this.find(sql, orderId);
		if (payment) return payment;
		await sql.run("INSERT INTO voided_orders (order_id, created_at) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING", [orderId, new Date().toISOString()]);
		return undefined;
	}

	private async find(sql: Sql, orderId: string): Promise<Payment | undefined> {
		const row = await sql.one<PaymentRow>("SELECT * FROM payments WHERE order_id = $1", [orderId]);
		return row && toPayment(row);
	}
}
