/**
 * The orders database's schema history, oldest first. Append a new migration for every change;
 * never edit one that has shipped (databases out there have already applied it).
 */
import type { Migration } from "../../lib/db/migrations";

export const migrations: Migration[] = [
	{
		name: "orders-001-create-orders",
		async up({ context: { sql } }) {
			await sql.run(`CREATE TABLE IF NOT EXISTS orders (
				id VARCHAR(36) PRIMARY KEY,
				user_id VARCHAR(36) NOT NULL,
				status VARCHAR(16) NOT NULL,
				items TEXT NOT NULL,
				total BIGINT NOT NULL,
				cancel_reason VARCHAR(32),
				idempotency_key VARCHAR(64),
				first_response INTEGER,
				owner_node VARCHAR(200) NOT NULL,
				attended_at VARCHAR(30) NOT NULL,
				created_at VARCHAR(30) NOT NULL,
				updated_at VARCHAR(30) NOT NULL
			)`);
			// One order per key and user: two concurrent requests with one key make one order.
			await sql.run("CREATE UNIQUE INDEX IF NOT EXISTS orders_user_id_idempotency_key ON orders (user_id, idempotency_key)");
			await sql.run("CREATE INDEX IF NOT EXISTS orders_user_id_created_at ON orders (user_id, created_at)");
			await sql.run("CREATE INDEX IF NOT EXISTS orders_status ON orders (status)");
		}
	}
];
