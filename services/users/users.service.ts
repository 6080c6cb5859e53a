/**
 * users: accounts, passwords and access tokens.
 *
 * Owns `users.sqlite`. Issues JWTs signed with JWT_SECRET and is the only service that checks
 * them (`resolveToken`), so the secret lives on users nodes alone.
 *
 * Every token carries its user's token version (`ver`) and an expiry; a new password or a new role
 * moves the version on, which revokes every earlier token. resolveToken's answers are cached per
 * token on each users node, so a revocation is broadcast (`user.tokensRevoked`) and every users
 * node drops its cached resolutions.
 */
import { randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import type { Context, ServiceSchema } from "moleculer";
import { ConfigError, shopConfig } from "../../lib/config";
import { alreadyExists, invalidState, notFound, unauthorized } from "../../lib/errors";
import { emailRule } from "../../lib/params";
import { dummyHash, hashPassword, needsRehash, verifyPassword } from "../../lib/passwords";
import type { AuthUser, Role, ShopMeta, User } from "../../lib/types";
import { createDbMixin, type DbSettings, type DbVars } from "../../mixins/db.mixin";
import { migrations } from "./users.migrations";
import { UsersStore, type StoredUser } from "./users.store";

const toUser = ({ passwordHash: _hidden, tokenVersion: _version, ...user }: StoredUser): User => user;

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
/** Operators only (the REPL, another node of the shop): never published by the gateway. */
export interface SetRoleParams {
	email: string;
	role: Role;
}
/** `user.tokensRevoked`: every token of this user issued before now is void. */
export interface TokensRevokedPayload {
	userId: string;
}
export interface AuthResult {
	user: User;
	token: string;
}

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
	/** scrypt N = 2^passwordHashCost for new hashes (PASSWORD_HASH_COST). */
	passwordHashCost: number;
}

interface UsersMethods {
	issueToken(user: StoredUser): string;
	ensureAdmin(email: string, password: string): Promise<void>;
	tokensRevoked(userId: string): void;
	forgetResolvedTokens(): void;
}

interface UsersVars extends DbVars<UsersStore> {
	/** Counts the revocations this node has heard of: a resolution that straddles one is read again. */
	revocations: number;
}

const config = shopConfig();

const UsersService: ServiceSchema<UsersSettings, UsersMethods, UsersVars> = {
	name: "users",
	mixins: [createDbMixin({ migrations, createStore: db => new UsersStore(db) })],

	settings: {
		db: shopConfig().dbUrl("users"),
		rest: "/users",
		tokenTtl: "24h",
		jwtSecret: config.jwtSecret,
		jwtSecretGenerated: config.jwtSecretGenerated,
		admin: config.admin,
		passwordHashCost: config.passwordHashCost,
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
				// A taken email costs no hashing. The 409 says no more than the contract's answer already does.
				if (await this.store.findByEmail(email)) throw alreadyExists("An account with this email already exists", { field: "email" });
				const passwordHash = await hashPassword(password, this.settings.passwordHashCost);
				// Two registrations of one email at once both get past the check: the unique index decides.
				const stored = await this.store.insert({ id: randomUUID(), email, name, role: "customer", passwordHash });
				if (!stored) throw alreadyExists("An account with this email already exists", { field: "email" });
				const user = toUser(stored);
				this.logger.info(`User registered: ${user.id}`);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `${this.settings.rest}/me`;
				return { user, token: this.issueToken(stored) };
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
				const { password } = ctx.params;
				const stored = await this.store.findByEmail(ctx.params.email.trim().toLowerCase());
				// Verify against a dummy hash for an unknown email: both failures take the same time.
				const ok = await verifyPassword(password, stored?.passwordHash ?? (await dummyHash(this.settings.passwordHashCost)));
				if (!stored || !ok) throw unauthorized("Wrong email or password");
				// A hash from before the cost was raised: store the same password at today's cost (its tokens stay valid).
				if (needsRehash(stored.passwordHash, this.settings.passwordHashCost)) {
					await this.store.upgradeHash(stored.id, stored.passwordHash, await hashPassword(password, this.settings.passwordHashCost));
				}
				return { user: toUser(stored), token: this.issueToken(stored) };
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
			// Cached per token on this node; `user.tokensRevoked` empties it on every users node.
			cache: { keys: ["token"], ttl: 60 },
			params: { token: { type: "string", max: 4096 } },
			async handler(ctx: Context<ResolveTokenParams>): Promise<AuthUser> {
				let subject: string;
				let version: number;
				try {
					const payload = jwt.verify(ctx.params.token, this.settings.jwtSecret, { algorithms: ["HS256"] });
					if (typeof payload === "string" || typeof payload.sub !== "string") throw new Error("no subject");
					// jwt.verify checks `exp` only when present: a token without one would never expire.
					if (typeof payload.exp !== "number") throw new Error("no expiry");
					// Tokens from before token versions existed carry none: version 0, as every account then had.
					version = payload.ver === undefined ? 0 : Number(payload.ver);
					if (!Number.isInteger(version)) throw new Error("bad version");
					subject = payload.sub;
				} catch {
					throw unauthorized("Invalid or expired token");
				}
				// Read again when a revocation arrived meanwhile: the answer is cached, and must not be the one from before it.
				let stored: StoredUser | undefined;
				for (let seen = -1; seen !== this.revocations;) {
					seen = this.revocations;
					stored = await this.store.findById(subject);
				}
				if (!stored || stored.tokenVersion !== version) throw unauthorized("Invalid or expired token");
				return { id: stored.id, email: stored.email, role: stored.role };
			}
		},

		/**
		 * Makes an account a customer or an admin, and revokes its tokens. For operators only: not
		 * published by the gateway (`npm run repl`, then `call users.setRole --email a@b.c --role customer`).
		 */
		setRole: {
			visibility: "public",
			params: { email: emailRule, role: { type: "enum", values: ["customer", "admin"] }, $$strict: "remove" },
			async handler(ctx: Context<SetRoleParams>): Promise<User> {
				const { email, role } = ctx.params;
				if (role !== "admin" && this.settings.admin && this.settings.admin.email.trim().toLowerCase() === email) {
					throw invalidState("ADMIN_EMAIL names this account: change ADMIN_EMAIL before demoting it, or the next start would refuse to run");
				}
				const stored = await this.store.setRole(email, role);
				if (!stored) throw notFound("User");
				this.tokensRevoked(stored.id);
				this.logger.info(`Role of user ${stored.id} set to ${role}; its tokens are revoked`);
				return toUser(stored);
			}
		}
	},

	events: {
		/** Another users node (or this one) revoked a user's tokens: forget every cached resolution. */
		"user.tokensRevoked"() {
			this.forgetResolvedTokens();
		}
	},

	methods: {
		issueToken(user: StoredUser): string {
			return jwt.sign({ role: user.role, ver: user.tokenVersion }, this.settings.jwtSecret, {
				algorithm: "HS256",
				subject: user.id,
				expiresIn: this.settings.tokenTtl as jwt.SignOptions["expiresIn"]
			});
		},

		/**
		 * ADMIN_EMAIL / ADMIN_PASSWORD at start. An absent account is created as admin; an admin
		 * account gets ADMIN_PASSWORD (a changed password revokes its tokens). A customer's account is
		 * never promoted: whoever registered that email first (perhaps not the operator) would own an
		 * admin. The node refuses to start instead (ConfigError).
		 */
		async ensureAdmin(rawEmail: string, password: string): Promise<void> {
			const email = rawEmail.trim().toLowerCase();
			const cost = this.settings.passwordHashCost;
			let existing = await this.store.findByEmail(email);
			if (!existing) {
				const created = await this.store.insert({
					id: randomUUID(),
					email,
					name: "Administrator",
					role: "admin",
					passwordHash: await hashPassword(password, cost)
				});
				if (created) this.logger.info(`Admin account created: ${email}`);
				// Another node (same ADMIN_EMAIL) or a registration took the email meanwhile: judge that account.
				else existing = await this.store.findByEmail(email);
			}
			if (existing) {
				if (existing.role !== "admin") {
					throw new ConfigError(
						`ADMIN_EMAIL names an existing customer account (${email}), which is never promoted to admin: choose an address nobody has registered`
					);
				}
				if (!(await verifyPassword(password, existing.passwordHash))) {
					await this.store.setPassword(existing.id, await hashPassword(password, cost));
					this.tokensRevoked(existing.id);
					this.logger.info(`Admin account ${email}: password set from ADMIN_PASSWORD; its earlier tokens are revoked`);
				} else if (needsRehash(existing.passwordHash, cost)) {
					await this.store.upgradeHash(existing.id, existing.passwordHash, await hashPassword(password, cost));
				}
			}
			const others = await this.store.otherAdmins(email);
			if (others.length > 0) {
				this.logger.warn(
					`Other admin accounts (from an earlier ADMIN_EMAIL): ${others.join(", ")}. Demote any no longer wanted: users.setRole { email, role: "customer" }`
				);
			}
		},

		/** Tells every users node (this one included) to forget cached resolutions: the user's earlier tokens are void. */
		tokensRevoked(userId: string): void {
			// This node at once, so the next call here sees it even before the broadcast comes back.
			this.forgetResolvedTokens();
			void this.broker.broadcast<TokensRevokedPayload>("user.tokensRevoked", { userId });
		},

		forgetResolvedTokens(): void {
			this.revocations++;
			// Keys are hashed tokens (maxParamsLength), so a user's own entries cannot be found: all go. Revocations are rare.
			void this.broker.cacher?.clean(`${this.fullName}.resolveToken**`);
		}
	},

	created() {
		this.revocations = 0;
	},

	async started() {
		if (this.settings.jwtSecretGenerated) {
			this.logger.warn("JWT_SECRET is not set: tokens are signed with a random secret and stop working at the next start.");
		}
		if (this.settings.admin) {
			try {
				await this.ensureAdmin(this.settings.admin.email, this.settings.admin.password);
			} catch (err) {
				// One clear line and exit 1, as for any bad configuration (moleculer.config.ts does the same before start).
				if (err instanceof ConfigError) {
					this.logger.fatal(`Configuration error: ${err.message}`);
					process.exit(1);
				}
				throw err;
			}
		}
	}
};

export default UsersService;
