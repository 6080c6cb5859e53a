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
	},
	{
		// An insertion sequence for the admin export's keyset paging (export.mixin.ts): a number every
		// new order gets, larger than any before it, so that a cursor "after seq n" neither skips nor
		// repeats an order while others are created. Existing orders are numbered in the order they are stored.
		name: "orders-002-insertion-sequence",
		async up({ context: { sql, dialect } }) {
			if (dialect === "postgres") {
				await sql.run("ALTER TABLE orders ADD COLUMN IF NOT EXISTS seq BIGSERIAL");
			} else {
				// SQLite cannot add a column with a computed default: a trigger numbers each inserted row. Its
				// writers run one at a time, so the numbers follow the commits (an `ON CONFLICT DO NOTHING`
				// that inserts nothing fires no trigger).
				await sql.run("ALTER TABLE orders ADD COLUMN seq INTEGER");
				await sql.run("UPDATE orders SET seq = rowid");
				await sql.run(`CREATE TRIGGER IF NOT EXISTS orders_seq AFTER INSERT ON orders FOR EACH ROW WHEN NEW.seq IS NULL
					BEGIN UPDATE orders SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM orders) WHERE rowid = NEW.rowid; END`);
			}
			await sql.run("CREATE UNIQUE INDEX IF NOT EXISTS orders_seq ON orders (seq)");
		}
	}
];
