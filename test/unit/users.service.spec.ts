import jwt from "jsonwebtoken";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import type { AuthUser, ShopMeta, User } from "../../lib/types";
import UsersService, { type AuthResult, type LoginParams, type RegisterParams } from "../../services/users/users.service";
import type { UsersStore } from "../../services/users/users.store";
import { countRows, dbOf, JWT_SECRET, metaOf, storeOf, tempDir, unitSettings } from "./helpers";

/** How many accounts have this email, straight from the database. */
const accountsWithEmail = (broker: ServiceBroker, email: string) =>
	countRows(dbOf(broker.getLocalService("users")), "SELECT COUNT(*) AS count FROM users WHERE email = $1", [email]);

describe("users service", () => {
	const broker = new ServiceBroker({ logger: false, transporter: null, cacher: "Memory" });
	broker.createService({ name: "users", mixins: [UsersService], settings: unitSettings().users } as ServiceSchema);

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

		it("answers 401 for an unsigned ('alg: none') token", async () => {
			const unsigned = jwt.sign({ role: "admin" }, "", { subject: dave.user.id, algorithm: "none" });
			await expect(resolveToken(unsigned)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("answers 401 for a well-signed token of a user that does not exist", async () => {
			const ghost = jwt.sign({ role: "admin" }, JWT_SECRET!, { subject: "00000000-0000-0000-0000-000000000000" });
			await expect(resolveToken(ghost)).rejects.toMatchObject({ code: 401, type: "UNAUTHORIZED" });
		});

		it("takes the role from the database, not from the token's claims", async () => {
			const claimsAdmin = jwt.sign({ role: "admin" }, JWT_SECRET!, { subject: dave.user.id });
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
		broker.createService({ name: "users", mixins: [UsersService], settings: { ...unitSettings(tmp.dir).users, admin } } as ServiceSchema);
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

	it("promotes an existing customer account named by ADMIN_EMAIL to admin", async () => {
		const plain = await startWith(null);
		try {
			const { user } = await plain.call<AuthResult, RegisterParams>("users.register", { email: "boss@shop.test", password: "customer-pass", name: "Boss" });
			expect(user.role).toBe("customer");
		} finally {
			await plain.stop();
		}

		const promoted = await startWith({ email: "Boss@Shop.test", password: "admin-pass-123" });
		try {
			await expect(login(promoted, "boss@shop.test", "admin-pass-123")).resolves.toHaveProperty("user.role", "admin");
			await expect(login(promoted, "boss@shop.test", "customer-pass")).rejects.toMatchObject({ code: 401 });
		} finally {
			await promoted.stop();
		}
	});
});
