/** The users database: the only code that knows its tables (see users.migrations.ts). */
import type { Database } from "../../lib/db/database";
import type { Role, User } from "../../lib/types";

/** A `users` row as stored. */
interface UserRow {
	id: string;
	email: string;
	name: string;
	role: Role;
	password_hash: string;
	token_version: number | string;
	created_at: string;
	updated_at: string;
}

/** A user with what only the users service may see. */
export interface StoredUser extends User {
	passwordHash: string;
	/** Tokens name the version they were issued at; a token of an older version is revoked. */
	tokenVersion: number;
}

const toUser = (row: UserRow): StoredUser => ({
	id: row.id,
	email: row.email,
	name: row.name,
	role: row.role,
	createdAt: row.created_at,
	passwordHash: row.password_hash,
	tokenVersion: Number(row.token_version)
});

export class UsersStore {
	constructor(private readonly db: Database) {}

	async findById(id: string): Promise<StoredUser | undefined> {
		const row = await this.db.one<UserRow>("SELECT * FROM users WHERE id = $1", [id]);
		return row && toUser(row);
	}

	/** `email` as stored: lower-cased. */
	async findByEmail(email: string): Promise<StoredUser | undefined> {
		const row = await this.db.one<UserRow>("SELECT * FROM users WHERE email = $1", [email]);
		return row && toUser(row);
	}

	/** Admin accounts other than `email`'s. */
	async otherAdmins(email: string): Promise<string[]> {
		const rows = await this.db.all<{ email: string }>("SELECT email FROM users WHERE role = 'admin' AND email <> $1 ORDER BY email", [email]);
		return rows.map(row => row.email);
	}

	/** Adds an account (token version 0); undefined when the email is taken. */
	async insert(user: Omit<StoredUser, "createdAt" | "tokenVersion">): Promise<StoredUser | undefined> {
		const now = new Date().toISOString();
		const added = await this.db.write(sql =>
			sql.run(
				"INSERT INTO users (id, email, name, role, password_hash, token_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6) ON CONFLICT DO NOTHING",
				[user.id, user.email, user.name, user.role, user.passwordHash, now]
			)
		);
		return added === 1 ? { ...user, tokenVersion: 0, createdAt: now } : undefined;
	}

	/** A new password: every token issued before is revoked (the version moves on). */
	async setPassword(id: string, passwordHash: string): Promise<void> {
		await this.db.write(sql =>
			sql.run("UPDATE users SET password_hash = $1, token_version = token_version + 1, updated_at = $2 WHERE id = $3", [
				passwordHash,
				new Date().toISOString(),
				id
			])
		);
	}

	/** The same password at a higher cost (tokens stay valid); only if the hash is still `oldHash`, so a concurrent reset wins. */
	async upgradeHash(id: string, oldHash: string, newHash: string): Promise<void> {
		await this.db.write(sql => sql.run("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3", [newHash, id, oldHash]));
	}

	/** A new role for `email`'s account, revoking its tokens; undefined when there is no such account. */
	async setRole(email: string, role: Role): Promise<StoredUser | undefined> {
		const now = new Date().toISOString();
		const row = await this.db.write(async sql => {
			await sql.run("UPDATE users SET role = $1, token_version = token_version + 1, updated_at = $2 WHERE email = $3 AND role <> $1", [role, now, email]);
			return sql.one<UserRow>("SELECT * FROM users WHERE email = $1", [email]);
		});
		return row && toUser(row);
	}
}
