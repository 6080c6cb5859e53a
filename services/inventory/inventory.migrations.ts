/**
 * The inventory database's schema history, oldest first. Append a new migration for every change;
 * never edit one that has shipped (databases out there have already applied it).
 */
import type { Migration } from "../../lib/db/migrations";

export const migrations: Migration[] = [
	{
		name: "inventory-001-create-products-and-holds",
		async up({ context: { sql } }) {
			// `stock` is what can still be bought: reserved units are already out of it.
			await sql.run(`CREATE TABLE IF NOT EXISTS products (
				id VARCHAR(36) PRIMARY KEY,
				sku VARCHAR(64) NOT NULL UNIQUE,
				name VARCHAR(200) NOT NULL,
				description TEXT NOT NULL,
				price BIGINT NOT NULL,
				stock BIGINT NOT NULL,
				created_at VARCHAR(30) NOT NULL,
				updated_at VARCHAR(30) NOT NULL
			)`);
			await sql.run("CREATE INDEX IF NOT EXISTS products_created_at ON products (created_at, sku)");
			// The stock an order holds: one row per order, its lines as JSON.
			await sql.run(`CREATE TABLE IF NOT EXISTS holds (
				order_id VARCHAR(36) PRIMARY KEY,
				status VARCHAR(16) NOT NULL,
				lines TEXT NOT NULL,
				created_at VARCHAR(30) NOT NULL,
				updated_at VARCHAR(30) NOT NULL
			)`);
		}
	}
];
