import { randomBytes, scryptSync } from "node:crypto";
import jwt from "jsonwebtoken";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import type { AuthUser, ShopMeta, User } from "../../lib/types";
import * as passwords from "../../lib/passwords";
import UsersService, { type AuthResult, type LoginParams, type RegisterParams, type SetRoleParams } from "../../services/users/users.service";
import type { UsersStore } from "../../services/users/users.store";
import { countRows, dbOf, JWT_SECRET, metaOf, storeOf, tempDir, unitSettings, waitFor } from "./helpers";

/** The unit settings, with the cheapest scrypt cost the service accepts (the default's format and cost are in users-passwords.spec.ts). */
const settingsIn = (dir?: string) => ({ ...unitSettings(dir).users, passwordHashCost: 14 });

/** How many accounts have this email, straight from the database. */
const accountsWithEmail = (broker: ServiceBroker, email: string) =>
	countRows(dbOf(broker.getLocalService("users")), "SELECT COUNT(*) AS count FROM users WHERE email = $1", [email]);

describe("users service", () => {
	const broker = new ServiceBroker({ logger: false, transporter: null, cacher: "Memory" });
	broker.createService({ name: "users", mixins: [UsersService], settings: settingsIn() } as ServiceSchema);

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	const register = (params: Partial<RegisterParams> & Record<string, unknown>, meta: ShopMeta = {}) =>
		broker.call<AuthResult, typeof params>("users.register", params, { meta });
	const login = (params: LoginParams) => broker.call<AuthResult, LoginParams>("users.login", params);
	const resolveToken = (token: string) => broker.call<AuthUser, { token: string }>("users.resolveToken", { token });
	const store = () => storeOf<UsersStore>(broker.getLocalService("users"));

	describe("register", () => {
		it("answers 201 with the public user and a token, and normalises the email", async () => {
			const meta: ShopMeta = {};
			const answer = await register({ email: "  Alice.Smith@Example.COM ", password: "correct horse", name: "  Alice " }, meta);

			expect(meta.$statusCode).toBe(201);
			// Relative to the service's base; the gateway adds /api.
			expect(meta.$location).toBe("/users/me");
			expect(Object.keys(answer).sort()).toEqual(["token", "user"]);
			expect(Object.keys(answer.user).sort()).toEqual(["createdAt", "email", "id", "name", "role"]);
			expect(answer.user).toMatchObject({ email: "alice.smith@example.com", name: "Alice", role: "customer" });
			expect(typeof answer.user.id).toBe("string");
			expect(new Date(answer.user.createdAt).toISOString()).toBe(answer.user.createdAt);
			expect(JSON.stringify(answer)).not.toMatch(/scrypt|passwordHash|correct horse/);

			const claims = jwt.verify(answer.token, JWT_SECRET!) as jwt.JwtPayload;
			expect(claims.sub).toBe(answer.user.id);
			expect(claims.role).toBe("customer");
		});

		it("stores a salted scrypt hash, never the password itself", async () => {
			const { user } = await register({ email: "hash@example.com", password: "s3cret-password", name: "Hash" });
			const row = await store().findById(user.id);
			const stored = String(row!.passwordHash);
			expect(stored).toMatch(/^scrypt\$/);
			expect(stored).not.toContain("s3cret-password");
		});

		it("ignores a role sent by the client: every new account is a customer", async () => {
			const { user } = await register({ email: "sneaky@example.com", password: "password123", name: "Sneaky", role: "admin" });
			expect(user.role).toBe("customer");
		});

		it("refuses a taken email, whatever its case, with 409 ALREADY_EXISTS and keeps one account", async () => {
			await register({ email: "bob@example.com", password: "password123", name: "Bob" });
			await expect(register({ email: "BOB@Example.com", password: "another-pass", name: "Bobby" })).rejects.toMatchObject({
				code: 409,
				type: "ALREADY_EXISTS"
			});
			expect(await accountsWithEmail(broker, "bob@example.com")).toBe(1);
			// The first account keeps its password.
			await expect(login({ email: "bob@example.com", password: "password123" })).resolves.toHaveProperty("user.name", "Bob");
		});

		it("checks a taken email before hashing: a 409 costs no scrypt", async () => {
			await register({ email: "taken@example.com", password: "password123", name: "Taken" });
			const hashing = jest.spyOn(passwords, "hashPassword");
			try {
				await expect(register({ email: "Taken@Example.com", password: "another-pass", name: "Again" })).rejects.toMatchObject({ code: 409 });
				expect(hashing).not.toHaveBeenCalled();
			} finally {
				hashing.mockRestore();
			}
		});

		it.each([
			["a password shorter than 8 characters", { email: "short@example.com", password: "1234567", name: "Short" }, "password"],
			["a password longer than 128 characters", { email: "long@example.com", password: "x".repeat(129), name: "Long" }, "password"],
			["a malformed email", { email: "not-an-email", password: "password123", name: "Bad" }, "email"],
			["an empty name", { email: "noname@example.com", password: "password123", name: "   " }, "name"],
			["a missing email", { password: "password123", name: "Nobody" }, "email"]
		])("answers 422 VALIDATION_ERROR for %s", async (_what, params, field) => {
			expect.assertions(3);
			try {
				await register(params);
			} catch (err) {
				expect(err).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
				const fields = ((err as { data: Array<{ field: string }> }).data ?? []).map(item => item.field);
				expect(fields).toContain(field);
			}
			// Nothing was stored for the refused request.
			expect(await countRows(dbOf(broker.getLocalService("users")), "SELECT COUNT(*) AS count FROM users WHERE name = $1", [params.name])).toBe(0);
		});
	});

	describe("login", () => {
		let registered: AuthResult;
		beforeAll(async () => {
			registered = await register({ email: "carol@example.com", password: "carol-password", name: "Carol" });
		});

		it("answers the user and a working token for the right password (email in any case)", async () => {
			const answer = await login({ email: " CAROL@example.com ", password: "carol-password" });
			expect(answer.user).toEqual(registered.user);
			await expect(resolveToken(answer.token)).resolves.toEqual({ id: registered.user.id, email: "carol@example.com", role: "customer" });
		});

		it("answers 401 with one message for a wrong password and for an unknown email", async () => {
			const wrongPassword = await login({ email: "carol@example.com", password: "wrong-password" }).catch((err: unknown) => err);
			const unknownEmail = await login({ email: "nobody@example.com", password: "carol-password" }).catch((err: unknown) => err);
			const malformedEmail = await login({ email: "not an email", password: "carol-password" }).catch((err: unknown) => err);

			for (const err of [wrongPassword, unknownEmail, malformedEmail]) {
				expect(err).toMatchObject({ code: 401, type: "UNAUTHORIZED" });
			}
			const message = (wrongPassword as Error).message;
			expect((unknownEmail as Error).message).toBe(message);
			expect((malformedEmail as Error).message).toBe(message);
			expect(message).not.toMatch(/password is wrong|no such|not found|unknown/i);
		});

		it("answers 422 when email or password is missing", async () => {
			await expect(broker.call("users.login", { email: "carol@example.com" })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		});
	});

	describe("resolveToken", () => {
		let dave: AuthResult;
		beforeAll(async () => {
			dave = await register({ email: "dave@example.com", password: "dave-password", name: "Dave" });
		});

		it("answers who a valid token belongs to", async () => {
			await expect(resolveToken(dave.token)).resolves.toEqual({ id: dave.user.id, email: "dave@example.com", role: "customer" });
		});

		it.each([
			["garbage", "not-a-jwt"],
			["an empty string", ""],
			["a token signed with another secret", jwt.sign({ role: "admin" }, "another-secret-0123456789", { subject: "x", algorithm: "HS256" })]
		])("answers 401 UNAUTHORIZED for %s", async (_what, token) => {
			await expect(resolveToken(token)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for a forged token naming a real user, signed with another secret", async () => {
			const forged = jwt.sign({ role: "admin" }, "another-secret-0123456789", { subject: dave.user.id, algorithm: "HS256" });
			await expect(resolveToken(forged)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for an expired token", async () => {
			const expired = jwt.sign({ role: "customer", exp: Math.floor(Date.now() / 1000) - 60 }, JWT_SECRET!, { subject: dave.user.id });
			await expect(resolveToken(expired)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for a well-signed token without an expiry", async () => {
			const forever = jwt.sign({ role: "customer" }, JWT_SECRET!, { subject: dave.user.id, algorithm: "HS256" });
			expect((jwt.decode(forever) as jwt.JwtPayload).exp).toBeUndefined();
			await expect(resolveToken(forever)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for a well-signed token of an older token version", async () => {
			const old = jwt.sign({ role: "customer", ver: -1 }, JWT_SECRET!, { subject: dave.user.id, algorithm: "HS256", expiresIn: "1h" });
			await expect(resolveToken(old)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for an unsigned ('alg: none') token", async () => {
			const unsigned = jwt.sign({ role: "admin" }, "", { subject: dave.user.id, algorithm: "none" });
			await expect(resolveToken(unsigned)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for a well-signed token of a user that does not exist", async () => {
			const ghost = jwt.sign({ role: "admin" }, JWT_SECRET!, { subject: "00000000-0000-0000-0000-000000000000", expiresIn: "1h" });
			await expect(resolveToken(ghost)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("takes the role from the database, not from the token's claims", async () => {
			const claimsAdmin = jwt.sign({ role: "admin", ver: 0 }, JWT_SECRET!, { subject: dave.user.id, expiresIn: "1h" });
			await expect(resolveToken(claimsAdmin)).resolves.toMatchObject({ id: dave.user.id, role: "customer" });
		});
	});

	describe("me", () => {
		it("answers the caller's public user", async () => {
			const erin = await register({ email: "erin@example.com", password: "erin-password", name: "Erin" });
			const me = await broker.call<User, object>("users.me", {}, { meta: metaOf({ id: erin.user.id, email: erin.user.email, role: "customer" }) });
			expect(me).toEqual(erin.user);
		});

		it("answers 404 when the account no longer exists", async () => {
			const meta = metaOf({ id: "00000000-0000-0000-0000-000000000000", email: "gone@example.com", role: "customer" });
			await expect(broker.call("users.me", {}, { meta })).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
		});
	});
});

describe("users service: the admin account from ADMIN_EMAIL / ADMIN_PASSWORD", () => {
	const tmp = tempDir("users-admin-");
	afterAll(() => tmp.remove());

	/**
	 * A broker with a users service on the shared database file, started as if with the given
	 * ADMIN_EMAIL / ADMIN_PASSWORD (null: neither set).
	 */
	async function startWith(admin: { email: string; password: string } | null) {
		const broker = new ServiceBroker({ logger: false, transporter: null });
		broker.createService({ name: "users", mixins: [UsersService], settings: { ...settingsIn(tmp.dir), admin } } as ServiceSchema);
		await broker.start();
		return broker;
	}
	const login = (broker: ServiceBroker, email: string, password: string) => broker.call<AuthResult, LoginParams>("users.login", { email, password });

	it("creates the admin at the first start, then resets its password (and role) at the next", async () => {
		const first = await startWith({ email: " Root@Shop.test ", password: "first-admin-password" });
		try {
			const { user, token } = await login(first, "root@shop.test", "first-admin-password");
			expect(user).toMatchObject({ email: "root@shop.test", role: "admin" });
			await expect(first.call("users.resolveToken", { token })).resolves.toMatchObject({ role: "admin" });
			// A customer account registered meanwhile must survive the restart.
			await first.call("users.register", { email: "kept@shop.test", password: "kept-password", name: "Kept" });
		} finally {
			await first.stop();
		}

		const second = await startWith({ email: "root@shop.test", password: "second-admin-password" });
		try {
			const { user } = await login(second, "root@shop.test", "second-admin-password");
			expect(user.role).toBe("admin");
			await expect(login(second, "root@shop.test", "first-admin-password")).rejects.toMatchObject({ code: 401 });
			await expect(login(second, "kept@shop.test", "kept-password")).resolves.toHaveProperty("user.role", "customer");
			expect(await accountsWithEmail(second, "root@shop.test")).toBe(1);
		} finally {
			await second.stop();
		}
	});

	it("refuses to start when ADMIN_EMAIL names a customer's account: that account is not promoted, its token stays a customer's", async () => {
		const plain = await startWith(null);
		let customerToken: string;
		try {
			const answer = await plain.call<AuthResult, RegisterParams>("users.register", { email: "boss@shop.test", password: "customer-pass", name: "Boss" });
			expect(answer.user.role).toBe("customer");
			customerToken = answer.token;
		} finally {
			await plain.stop();
		}

		// As the process would: the users service refuses with one line, and the node exits 1.
		const exit = jest.spyOn(process, "exit").mockImplementation(() => undefined as never);
		const refused = new ServiceBroker({ logger: false, transporter: null });
		refused.createService({
			name: "users",
			mixins: [UsersService],
			settings: { ...settingsIn(tmp.dir), admin: { email: "Boss@Shop.test", password: "admin-pass-123" } }
		} as ServiceSchema);
		try {
			await refused.start().catch(() => undefined);
			expect(exit).toHaveBeenCalledWith(1);
		} finally {
			exit.mockRestore();
			await refused.stop();
		}

		const after = await startWith(null);
		try {
			await expect(login(after, "boss@shop.test", "customer-pass")).resolves.toHaveProperty("user.role", "customer");
			await expect(login(after, "boss@shop.test", "admin-pass-123")).rejects.toMatchObject({ code: 401 });
			await expect(after.call("users.resolveToken", { token: customerToken! })).resolves.toMatchObject({ role: "customer" });
		} finally {
			await after.stop();
		}
	});

	it("a new ADMIN_PASSWORD revokes the admin's earlier tokens; an unchanged one keeps them", async () => {
		const first = await startWith({ email: "keeper@shop.test", password: "first-admin-password" });
		let token: string;
		try {
			token = (await login(first, "keeper@shop.test", "first-admin-password")).token;
		} finally {
			await first.stop();
		}
		const same = await startWith({ email: "keeper@shop.test", password: "first-admin-password" });
		try {
			await expect(same.call("users.resolveToken", { token: token! })).resolves.toMatchObject({ role: "admin" });
		} finally {
			await same.stop();
		}
		const changed = await startWith({ email: "keeper@shop.test", password: "second-admin-password" });
		try {
			await expect(changed.call("users.resolveToken", { token: token! })).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
			const fresh = await login(changed, "keeper@shop.test", "second-admin-password");
			await expect(changed.call("users.resolveToken", { token: fresh.token })).resolves.toMatchObject({ role: "admin" });
		} finally {
			await changed.stop();
		}
	});

	it("an earlier ADMIN_EMAIL's account stays admin; users.setRole demotes it and revokes its tokens", async () => {
		const first = await startWith({ email: "old-admin@shop.test", password: "old-admin-password" });
		let oldToken: string;
		try {
			oldToken = (await login(first, "old-admin@shop.test", "old-admin-password")).token;
		} finally {
			await first.stop();
		}
		const second = await startWith({ email: "new-admin@shop.test", password: "new-admin-password" });
		try {
			await expect(second.call("users.resolveToken", { token: oldToken! })).resolves.toMatchObject({ role: "admin" });
			const demoted = await second.call<User, SetRoleParams>("users.setRole", { email: "OLD-admin@shop.test", role: "customer" });
			expect(demoted).toMatchObject({ email: "old-admin@shop.test", role: "customer" });
			await expect(second.call("users.resolveToken", { token: oldToken! })).rejects.toMatchObject({ code: 401 });
			await expect(login(second, "old-admin@shop.test", "old-admin-password")).resolves.toHaveProperty("user.role", "customer");
			// The configured admin cannot be demoted while ADMIN_EMAIL names it: the next start would refuse.
			await expect(second.call("users.setRole", { email: "new-admin@shop.test", role: "customer" })).rejects.toMatchObject({
				code: 409,
				type: "INVALID_STATE"
			});
			await expect(second.call("users.setRole", { email: "nobody@shop.test", role: "admin" })).rejects.toMatchObject({ code: 404 });
		} finally {
			await second.stop();
		}
	});
});

describe("users service: token revocation across nodes", () => {
	const tmp = tempDir("users-revoke-");
	afterAll(() => tmp.remove());

	it("a role change is seen at once by every node, though each cached the token's resolution", async () => {
		const namespace = `revoke-${process.pid}-${Date.now()}`;
		const nodes = ["users-a", "users-b"].map(nodeID => {
			const broker = new ServiceBroker({ namespace, nodeID, logger: false, transporter: "Fake", cacher: "Memory" });
			broker.createService({ name: "users", mixins: [UsersService], settings: settingsIn(tmp.dir) } as ServiceSchema);
			return broker;
		});
		await Promise.all(nodes.map(broker => broker.start()));
		try {
			const [a, b] = nodes;
			await waitFor(() => b.registry.getServiceList({ onlyAvailable: true }).some(s => s.name === "users" && s.nodeID === "users-a"));
			const { token, user } = await a.call<AuthResult, RegisterParams>("users.register", {
				email: "frank@shop.test",
				password: "frank-password",
				name: "Frank"
			});
			// Each node resolves (and caches) the token itself.
			for (const broker of nodes)
				await expect(broker.call("users.resolveToken", { token })).resolves.toEqual({ id: user.id, email: "frank@shop.test", role: "customer" });
			expect(b.cacher).toBeDefined();

			await a.call("users.setRole", { email: "frank@shop.test", role: "admin" });
			await expect(a.call("users.resolveToken", { token })).rejects.toMatchObject({ code: 401 });
			await waitFor(
				async () => (await b.call("users.resolveToken", { token }).catch((err: { code?: number }) => err.code)) === 401,
				3000,
				"node b to drop the token"
			);
			// A new login gives a token with the new role on every node.
			const fresh = await b.call<AuthResult, LoginParams>("users.login", { email: "frank@shop.test", password: "frank-password" });
			for (const broker of nodes) await expect(broker.call("users.resolveToken", { token: fresh.token })).resolves.toMatchObject({ role: "admin" });
		} finally {
			await Promise.all(nodes.map(broker => broker.stop()));
		}
	});
});

describe("users service: password hashes of an older cost", () => {
	const broker = new ServiceBroker({ logger: false, transporter: null });
	// The service's default cost (PASSWORD_HASH_COST unset): what production runs.
	broker.createService({ name: "users", mixins: [UsersService], settings: unitSettings().users } as ServiceSchema);
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	/** A hash as this shop wrote them before the cost was raised: scrypt N=2^14, r=8, p=1. */
	function legacyHash(password: string): string {
		const salt = randomBytes(16);
		const key = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
		return ["scrypt", 16384, 8, 1, salt.toString("base64"), key.toString("base64")].join("$");
	}

	it("still verifies, and is re-hashed at the current cost on a successful login (same tokens kept)", async () => {
		const { user, token } = await broker.call<AuthResult, RegisterParams>("users.register", {
			email: "legacy@example.com",
			password: "legacy-password",
			name: "Legacy"
		});
		const db = dbOf(broker.getLocalService("users"));
		const planted = legacyHash("legacy-password");
		await db.write(sql => sql.run("UPDATE users SET password_hash = $1 WHERE id = $2", [planted, user.id]));

		// A wrong password does not touch the stored hash.
		await expect(broker.call("users.login", { email: "legacy@example.com", password: "wrong-password" })).rejects.toMatchObject({ code: 401 });
		expect((await storeOf<UsersStore>(broker.getLocalService("users")).findById(user.id))!.passwordHash).toBe(planted);

		await expect(broker.call("users.login", { email: "legacy@example.com", password: "legacy-password" })).resolves.toHaveProperty("user.id", user.id);
		const upgraded = (await storeOf<UsersStore>(broker.getLocalService("users")).findById(user.id))!.passwordHash;
		const [scheme, n] = upgraded.split("$");
		expect(scheme).toBe("scrypt");
		expect(Number(n)).toBeGreaterThanOrEqual(2 ** 17);
		// Same password, new hash: the login works with it, and the earlier token is not revoked.
		await expect(broker.call("users.login", { email: "legacy@example.com", password: "legacy-password" })).resolves.toHaveProperty("user.id", user.id);
		await expect(broker.call("users.resolveToken", { token })).resolves.toMatchObject({ id: user.id });
	});
});
