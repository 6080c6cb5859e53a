/**
 * The users database's schema history, oldest first. Append a new migration for every change;
 * never edit one that has shipped (databases out there have already applied it).
 */
import type { Migration } from "../../lib/db/migrations";

export const migrations: Migration[] = [
	{
		name: "users-001-create-users",
		async up({ context: { sql } }) {
			// Emails are stored lower-cased (the validator normalises them), so the unique index is case-insensitive.
			await sql.run(`CREATE TABLE IF NOT EXISTS users (
				id VARCHAR(36) PRIMARY KEY,
				email VARCHAR(254) NOT NULL UNIQUE,
				name VARCHAR(100) NOT NULL,
				role VARCHAR(16) NOT NULL,
				password_hash VARCHAR(200) NOT NULL,
				created_at VARCHAR(30) NOT NULL,
				updated_at VARCHAR(30) NOT NULL
			)`);
		}
	},
	{
		name: "users-002-token-version",
		async up({ context: { sql } }) {
			// Every access token carries its user's version; bumping it (new password, new role) revokes them all.
			await sql.run("ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0");
		}
	}
];
