/**
 * The payments database's schema history, oldest first. Append a new migration for every change;
 * never edit one that has shipped (databases out there have already applied it).
 */
import type { Migration } from "../../lib/db/migrations";

export const migrations: Migration[] = [
	{
		name: "payments-001-create-payments",
		async up({ context: { sql } }) {
			// One payment per order at most (the unique order_id): a retried capture finds the first one.
			await sql.run(`CREATE TABLE IF NOT EXISTS payments (
				id VARCHAR(36) PRIMARY KEY,
				order_id VARCHAR(36) NOT NULL UNIQUE,
				user_id VARCHAR(36) NOT NULL,
				amount BIGINT NOT NULL,
				status VARCHAR(16) NOT NULL,
				card_last4 VARCHAR(4) NOT NULL,
				created_at VARCHAR(30) NOT NULL,
				updated_at VARCHAR(30) NOT NULL
			)`);
			await sql.run("CREATE INDEX IF NOT EXISTS payments_user_id ON payments (user_id)");
			// Orders that must never be charged any more (given up before a capture arrived).
			await sql.run(`CREATE TABLE IF NOT EXISTS voided_orders (
				order_id VARCHAR(36) PRIMARY KEY,
				created_at VARCHAR(30) NOT NULL
			)`);
		}
	}
];
