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
	created_at: string;
	updated_at: string;
}

/** A user with what only the users service may see. */
export interface StoredUser extends User {
	passwordHash: string;
}

const toUser = (row: UserRow): StoredUser => ({
	id: row.id,
	email: row.email,
	name: row.name,
	role: row.role,
	createdAt: row.created_at,
	passwordHash: row.password_hash
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

	/** Adds an account; undefined when the email is taken. */
	async insert(user: Omit<StoredUser, "createdAt">): Promise<StoredUser | undefined> {
		const now = new Date().toISOString();
		const added = await this.db.write(sql =>
			sql.run("INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING", [
				user.id,
				user.email,
				user.name,
				user.role,
				user.passwordHash,
				now
			])
		);
		return added === 1 ? { ...user, createdAt: now } : undefined;
	}

	/** Makes `email` an admin with this password hash: its existing account, or a new one with `newId`. */
	async upsertAdmin(email: string, passwordHash: string, newId: string): Promise<void> {
		const now = new Date().toISOString();
		await this.db.transaction(async sql => {
			const changed = await sql.run("UPDATE users SET password_hash = $1, role = 'admin', updated_at = $2 WHERE email = $3", [passwordHash, now, email]);
			if (changed === 0) {
				await sql.run(
					"INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) VALUES ($1, $2, 'Administrator', 'admin', $3, $4, $4)",
					[newId, email, passwordHash, now]
				);
			}
		});
	}
}
