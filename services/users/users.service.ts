/**
 * users: accounts, passwords and access tokens.
 *
 * Owns `users.sqlite`. Issues JWTs signed with JWT_SECRET and is the only service that checks
 * them (`resolveToken`), so the secret lives on users nodes alone.
 */
import { randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import type { Context, ServiceSchema } from "moleculer";
import { shopConfig } from "../../lib/config";
import { alreadyExists, notFound, unauthorized } from "../../lib/errors";
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from "../../lib/passwords";
import type { AuthUser, ShopMeta, User } from "../../lib/types";
import { createDbMixin, type DbSettings, type DbVars } from "../../mixins/db.mixin";
import { migrations } from "./users.migrations";
import { UsersStore, type StoredUser } from "./users.store";

const toUser = ({ passwordHash: _hidden, ...user }: StoredUser): User => user;

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

interface UsersSettings extends DbSettings {
	rest: string;
	tokenTtl: string;
	/** Signs and checks access tokens (JWT_SECRET). */
	jwtSecret: string;
	/** No JWT_SECRET was given: tokens die with this process. */
	jwtSecretGenerated: boolean;
	/** ADMIN_EMAIL and ADMIN_PASSWORD: this admin account exists after start. */
	admin: { email: string; password: string } | null;
}

interface UsersMethods {
	issueToken(user: User): string;
	upsertAdmin(email: string, password: string): Promise<void>;
}

const config = shopConfig();

const UsersService: ServiceSchema<UsersSettings, UsersMethods, DbVars<UsersStore>> = {
	name: "users",
	mixins: [createDbMixin({ migrations, createStore: db => new UsersStore(db) })],

	settings: {
		db: shopConfig().dbUrl("users"),
		rest: "/users",
		tokenTtl: "24h",
		jwtSecret: config.jwtSecret,
		jwtSecretGenerated: config.jwtSecretGenerated,
		admin: config.admin,
		// Never in the service's descriptor that other nodes receive.
		$secureSettings: ["jwtSecret", "admin"]
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
				const stored = await this.store.insert({ id: randomUUID(), email, name, role: "customer", passwordHash });
				if (!stored) throw alreadyExists("An account with this email already exists", { field: "email" });
				const user = toUser(stored);
				this.logger.info(`User registered: ${user.id}`);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `${this.settings.rest}/me`;
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
				const stored = await this.store.findByEmail(ctx.params.email.trim().toLowerCase());
				// Verify against a dummy hash for an unknown email: both failures take the same time.
				const ok = await verifyPassword(ctx.params.password, stored?.passwordHash ?? (await DUMMY_HASH_PROMISE));
				if (!stored || !ok) throw unauthorized("Wrong email or password");
				const user = toUser(stored);
				return { user, token: this.issueToken(user) };
			}
		},

		me: {
			rest: "GET /me",
			auth: "user",
			async handler(ctx: Context<unknown, ShopMeta>): Promise<User> {
				const stored = await this.store.findById(ctx.meta.user!.id);
				if (!stored) throw notFound("User");
				return toUser(stored);
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
					const payload = jwt.verify(ctx.params.token, this.settings.jwtSecret, { algorithms: ["HS256"] });
					if (typeof payload === "string" || typeof payload.sub !== "string") throw new Error("no subject");
					subject = payload.sub;
				} catch {
					throw unauthorized("Invalid or expired token");
				}
				const stored = await this.store.findById(subject);
				if (!stored) throw unauthorized("Invalid or expired token");
				return { id: stored.id, email: stored.email, role: stored.role };
			}
		}
	},

	methods: {
		issueToken(user: User): string {
			return jwt.sign({ role: user.role }, this.settings.jwtSecret, {
				algorithm: "HS256",
				subject: user.id,
				expiresIn: this.settings.tokenTtl as jwt.SignOptions["expiresIn"]
			});
		},

		/** Creates the admin account, or resets its password and role: ADMIN_EMAIL/ADMIN_PASSWORD win at every start. */
		async upsertAdmin(rawEmail: string, password: string): Promise<void> {
			const email = rawEmail.trim().toLowerCase();
			await this.store.upsertAdmin(email, await hashPassword(password), randomUUID());
			this.logger.info(`Admin account ready: ${email}`);
		}
	},

	async started() {
		if (this.settings.jwtSecretGenerated) {
			this.logger.warn("JWT_SECRET is not set: tokens are signed with a random secret and stop working at the next start.");
		}
		if (this.settings.admin) await this.upsertAdmin(this.settings.admin.email, this.settings.admin.password);
	}
};

export default UsersService;
