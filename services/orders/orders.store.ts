/** The orders database: the only code that knows its table (see orders.migrations.ts). */
import { placeholders, type Database, type SqlValue } from "../../lib/db/database";
import { finishableFrom } from "../../lib/order-rules";
import type { CancelReason, OrderItem, OrderStatus } from "../../lib/types";

/** An `orders` row as stored. */
interface OrderRow {
	id: string;
	user_id: string;
	status: OrderStatus;
	/** OrderItem[] as JSON. */
	items: string;
	total: number;
	cancel_reason: CancelReason | null;
	idempotency_key: string | null;
	first_response: number | null;
	owner_node: string;
	attended_at: string;
	created_at: string;
	updated_at: string;
}

/** An order with its bookkeeping (what clients see is `toPublicOrder` of it). */
export interface StoredOrder {
	id: string;
	userId: string;
	status: OrderStatus;
	items: OrderItem[];
	total: number;
	/** Set when a cancellation is decided (for a user's cancel, before its compensation runs). */
	cancelReason: CancelReason | null;
	idempotencyKey: string | null;
	/** The HTTP status the creating request was answered with, for Idempotency-Key replays. */
	firstResponse: number | null;
	/** The node that holds the card for retries; others leave the order alone while it lives. */
	ownerNode: string;
	/** When a node last worked on this unfinished order (a heartbeat; not shown to clients). */
	attendedAt: string;
	createdAt: string;
	updatedAt: string;
}

const toStored = (row: OrderRow): StoredOrder => ({
	id: row.id,
	userId: row.user_id,
	status: row.status,
	items: JSON.parse(row.items) as OrderItem[],
	total: row.total,
	cancelReason: row.cancel_reason,
	idempotencyKey: row.idempotency_key,
	firstResponse: row.first_response,
	ownerNode: row.owner_node,
	attendedAt: row.attended_at,
	createdAt: row.created_at,
	updatedAt: row.updated_at
});

const now = () => new Date().toISOString();

export class OrdersStore {
	constructor(private readonly db: Database) {}

	/** Stores a new order; false when its user already has an order with its Idempotency-Key. */
	async insert(order: StoredOrder): Promise<boolean> {
		const added = await this.db.write(sql =>
			sql.run(
				`INSERT INTO orders (id, user_id, status, items, total, cancel_reason, idempotency_key, first_response, owner_node, attended_at, created_at, updated_at)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
				[
					order.id,
					order.userId,
					order.status,
					JSON.stringify(order.items),
					order.total,
					order.cancelReason,
					order.idempotencyKey,
					order.firstResponse,
					order.ownerNode,
					order.attendedAt,
					order.createdAt,
					order.updatedAt
				]
			)
		);
		return added === 1;
	}

	async find(id: string): Promise<StoredOrder | undefined> {
		const row = await this.db.one<OrderRow>("SELECT * FROM orders WHERE id = $1", [id]);
		return row && toStored(row);
	}

	async findByIdempotencyKey(userId: string, key: string): Promise<StoredOrder | undefined> {
		const row = await this.db.one<OrderRow>("SELECT * FROM orders WHERE user_id = $1 AND idempotency_key = $2", [userId, key]);
		return row && toStored(row);
	}

	/**
	 * Newest first; one user's orders, or everyone's, optionally only those in one status or cancelled
	 * for one reason (a reason counts once the order is `cancelled`, as clients see it).
	 */
	async list(query: {
		userId?: string;
		status?: OrderStatus;
		cancelReason?: CancelReason;
		limit: number;
		offset: number;
	}): Promise<{ rows: StoredOrder[]; total: number }> {
		const conditions: string[] = [];
		const filter: SqlValue[] = [];
		const where = (condition: (n: string) => string, value: SqlValue) => {
			filter.push(value);
			conditions.push(condition(`$${filter.length}`));
		};
		if (query.userId !== undefined) where(n => `user_id = ${n}`, query.userId);
		if (query.status !== undefined) where(n => `status = ${n}`, query.status);
		if (query.cancelReason !== undefined) where(n => `status = 'cancelled' AND cancel_reason = ${n}`, query.cancelReason);
		const whereClause = conditions.length > 0 ? `WHERE ${conditions.join(" AND ")}` : "";
		const next = filter.length;
		const [rows, counted] = await Promise.all([
			this.db.all<OrderRow>(`SELECT * FROM orders ${whereClause} ORDER BY created_at DESC, id DESC LIMIT $${next + 1} OFFSET $${next + 2}`, [
				...filter,
				query.limit,
				query.offset
			]),
			this.db.one<{ total: number }>(`SELECT COUNT(*) AS total FROM orders ${whereClause}`, filter)
		]);
		return { rows: rows.map(toStored), total: counted?.total ?? 0 };
	}

	/**
	 * The admin export's page (export.mixin.ts): up to `limit` orders inserted after the one numbered
	 * `afterSeq` (0: from the first), in insertion order, each with its number for the next cursor.
	 */
	async exportPage(afterSeq: number, limit: number): Promise<Array<{ seq: number; order: StoredOrder }>> {
		const rows = await this.db.all<OrderRow & { seq: number }>("SELECT * FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2", [afterSeq, limit]);
		return rows.map(row => ({ seq: row.seq, order: toStored(row) }));
	}

	/** Orders not settled yet (pending, or confirmed with a cancellation under way), least recently attended first. */
	async unfinished(limit: number): Promise<StoredOrder[]> {
		const rows = await this.db.all<OrderRow>(
			"SELECT * FROM orders WHERE status = 'pending' OR (status = 'confirmed' AND cancel_reason IS NOT NULL) ORDER BY attended_at LIMIT $1",
			[limit]
		);
		return rows.map(toStored);
	}

	/**
	 * Records the decision to cancel, before anything is given back. True for the one caller that
	 * records it; false when the order is cancelled or being cancelled already.
	 */
	async claimCancellation(orderId: string, reason: CancelReason, node: string): Promise<boolean> {
		const claimed = await this.db.write(sql =>
			sql.run("UPDATE orders SET cancel_reason = $1, owner_node = $2, attended_at = $3 WHERE id = $4 AND status <> 'cancelled' AND cancel_reason IS NULL", [
				reason,
				node,
				now(),
				orderId
			])
		);
		return claimed === 1;
	}

	/**
	 * Writes an order's final status, if the order may still move there (the first writer wins):
	 * false when it was settled otherwise meanwhile. `firstResponse` is kept unless one is recorded.
	 */
	async finish(
		orderId: string,
		change: { status: "confirmed" | "cancelled"; cancelReason: CancelReason | null; firstResponse: number | null; updatedAt: string }
	): Promise<boolean> {
		const from = finishableFrom(change.status);
		const fromList = placeholders(from.length, 5);
		// Confirming never overrides a cancellation that was claimed meanwhile.
		const unclaimed = change.status === "confirmed" ? " AND cancel_reason IS NULL" : "";
		const changed = await this.db.write(sql =>
			sql.run(
				`UPDATE orders SET status = $1, cancel_reason = $2, updated_at = $3, first_response = COALESCE(first_response, $4)
				 WHERE id = $${from.length + 5} AND status IN (${fromList})${unclaimed}`,
				[change.status, change.cancelReason, change.updatedAt, change.firstResponse, ...from, orderId]
			)
		);
		return changed === 1;
	}

	/**
	 * A pending order's lines and total as its reservation priced them (see price-book.ts); false
	 * when it is no longer pending. Its updatedAt stays: the prices are those of its creation.
	 */
	async reprice(orderId: string, items: OrderItem[], total: number): Promise<boolean> {
		const changed = await this.db.write(sql =>
			sql.run("UPDATE orders SET items = $1, total = $2 WHERE id = $3 AND status = 'pending'", [JSON.stringify(items), total, orderId])
		);
		return changed === 1;
	}

	/** Bookkeeping only: the client's order does not change (nor its updatedAt). */
	async recordFirstResponse(orderId: string, status: number): Promise<void> {
		await this.db.write(sql => sql.run("UPDATE orders SET first_response = $1 WHERE id = $2 AND first_response IS NULL", [status, orderId]));
	}

	/** Marks an unfinished order as worked on by `node`, so that other orders nodes leave it alone. */
	async attend(orderId: string, node: string): Promise<void> {
		await this.db.write(sql => sql.run("UPDATE orders SET owner_node = $1, attended_at = $2 WHERE id = $3", [node, now(), orderId]));
	}
}
