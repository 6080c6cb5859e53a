/**
 * users: accounts, passwords and access tokens.
 *
 * Owns `users.sqlite`. Issues JWTs signed with JWT_SECRET and is the only service that checks
 * them (`resolveToken`), so the secret lives on users nodes alone.
 */
import { randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DataTypes, Model, UniqueConstraintError, type Sequelize } from "sequelize";
import { shopConfig } from "../lib/config";
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from "../lib/passwords";
import type { AuthUser, Role, ShopMeta, User } from "../lib/types";
import { createDbMixin, type DbVars } from "../mixins/db.mixin";
import { alreadyExists, notFound, unauthorized } from "../mixins/errors";

// --- Data ---------------------------------------------------------------------------------------

class UserRow extends Model {
	declare id: string;
	declare email: string;
	declare name: string;
	declare role: Role;
	declare passwordHash: string;
	declare createdAt: Date;
}

function defineModels(sequelize: Sequelize) {
	UserRow.init(
		{
			id: { type: DataTypes.STRING(36), primaryKey: true },
			// Stored lower-cased (the validator normalises it), so the unique index is case-insensitive.
			email: { type: DataTypes.STRING(254), allowNull: false, unique: true },
			name: { type: DataTypes.STRING(100), allowNull: false },
			role: { type: DataTypes.STRING(16), allowNull: false, defaultValue: "customer" },
			passwordHash: { type: DataTypes.STRING(200), allowNull: false }
		},
		{ sequelize, tableName: "users", underscored: true }
	);
	return { User: UserRow };
}

const toUser = (row: UserRow): User => ({
	id: row.id,
	email: row.email,
	name: row.name,
	role: row.role,
	createdAt: row.createdAt.toISOString()
});

// --- Params -------------------------------------------------------------------------------------

export interface RegisterParams {
	email: string;
	password: string;
	name: string;
}
export interface LoginParams {
	email: string;
	password: string;
}
export interface ResolveTokenParams {
	token: string;
}
export interface AuthResult {
	user: User;
	token: string;
}

const emailRule = { type: "email", normalize: true, max: 254, empty: false } as const;

// --- Service ------------------------------------------------------------------------------------

interface UsersSettings extends ServiceSettingSchema {
	rest: string;
	tokenTtl: string;
}

interface UsersMethods {
	issueToken(user: User): string;
	upsertAdmin(email: string, password: string): Promise<void>;
}


const UsersService: ServiceSchema<UsersSettings, UsersMethods, DbVars<ReturnType<typeof defineModels>>> = {
	name: "users",
	mixins: [createDbMixin("users", defineModels)],

	settings: {
		rest: "/users",
		tokenTtl: "24h"
	},

	actions: {
		register: {
			rest: "POST /register",
			// Not idempotent: a retry after a lost answer would find its own account and answer 409.
			retryPolicy: { enabled: false },
			params: {
				email: emailRule,
				password: { type: "string", min: 8, max: 128 },
				name: { type: "string", trim: true, min: 1, max: 100 },
				$$strict: "remove"
			},
			async handler(ctx: Context<RegisterParams, ShopMeta>): Promise<AuthResult> {
				const { email, password, name } = ctx.params;
				const passwordHash = await hashPassword(password);
				const row = await this.db
					.write(tx => this.models.User.create({ id: randomUUID(), email, name, role: "customer", passwordHash }, tx))
					.catch((err: unknown) => {
						if (err instanceof UniqueConstraintError) throw alreadyExists("An account with this email already exists", { field: "email" });
						throw err;
					});
				const user = toUser(row);
				this.logger.info(`User registered: ${user.id}`);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = "/api/users/me";
				return { user, token: this.issueToken(user) };
			}
		},

		login: {
			rest: "POST /login",
			params: {
				// Any string: a malformed email is simply a wrong one (401), and reveals nothing.
				email: { type: "string", max: 1024 },
				password: { type: "string", max: 1024 },
				$$strict: "remove"
			},
			async handler(ctx: Context<LoginParams, ShopMeta>): Promise<AuthResult> {
				const row = await this.models.User.findOne({ where: { email: ctx.params.email.trim().toLowerCase() } });
				// Verify against a dummy hash for an unknown email: both failures take the same time.
				const ok = await verifyPassword(ctx.params.password, row?.passwordHash ?? (await DUMMY_HASH_PROMISE));
				if (!row || !ok) throw unauthorized("Wrong email or password");
				const user = toUser(row);
				return { user, token: this.issueToken(user) };
			}
		},

		me: {
			rest: "GET /me",
			auth: "user",
			async handler(ctx: Context<unknown, ShopMeta>): Promise<User> {
				const row = await this.models.User.findByPk(ctx.meta.user!.id);
				if (!row) throw notFound("User");
				return toUser(row);
			}
		},

		/** Checks an access token and answers who it belongs to. Only the gateway calls it. */
		resolveToken: {
			visibility: "public",
			cache: { keys: ["token"], ttl: 60 },
			params: { token: { type: "string", max: 4096 } },
			async handler(ctx: Context<ResolveTokenParams>): Promise<AuthUser> {
				let subject: string;
				try {
					const payload = jwt.verify(ctx.params.token, shopConfig().jwtSecret, { algorithms: ["HS256"] });
					if (typeof payload === "string" || typeof payload.sub !== "string") throw new Error("no subject");
					subject = payload.sub;
				} catch {
					throw unauthorized("Invalid or expired token");
				}
				const row = await this.models.User.findByPk(subject);
				if (!row) throw unauthorized("Invalid or expired token");
				return { id: row.id, email: row.email, role: row.role };
			}
		}
	},

	methods: {
		issueToken(user: User): string {
			return jwt.sign({ role: user.role }, shopConfig().jwtSecret, {
				algorithm: "HS256",
				subject: user.id,
				expiresIn: this.settings.tokenTtl as jwt.SignOptions["expiresIn"]
			});
		},

		/** Creates the admin account, or resets its password and role: ADMIN_EMAIL/ADMIN_PASSWORD win at every start. */
		async upsertAdmin(rawEmail: string, password: string): Promise<void> {
			const email = rawEmail.trim().toLowerCase();
			const passwordHash = await hashPassword(password);
			await this.db.transaction(async tx => {
				const existing = await this.models.User.findOne({ where: { email }, ...tx });
				if (existing) {
					await existing.update({ passwordHash, role: "admin" }, tx);
				} else {
					await this.models.User.create({ id: randomUUID(), email, name: "Administrator", role: "admin", passwordHash }, tx);
				}
			});
			this.logger.info(`Admin account ready: ${email}`);
		}
	},

	async started() {
		const config = shopConfig();
		if (config.jwtSecretGenerated) {
			this.logger.warn("JWT_SECRET is not set: tokens are signed with a random secret and stop working at the next start.");
		}
		if (config.admin) await this.upsertAdmin(config.admin.email, config.admin.password);
	}
};

export default UsersService;
