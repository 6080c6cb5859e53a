/** The plain functions: lib/cards.ts, lib/order-rules.ts, lib/config.ts, lib/errors.ts, lib/rest-aliases.ts. */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Errors } from "moleculer";
import ApiGateway from "moleculer-web";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD, decideCharge, isValidCardNumber, lastFour, passesLuhn } from "../../lib/cards";
import { ConfigError, loadConfig, SERVICE_NAMES, SERVICES_DIR } from "../../lib/config";
import { answerStatus, finishableFrom, isSettled, mergeLines, orderTotal, priceLines, toPublicOrder } from "../../lib/order-rules";
import type { Product } from "../../lib/types";
import { alreadyExists, forbidden, invalidState, notFound, outOfStock, paymentDeclined, toErrorBody, unauthorized, validationError } from "../../lib/errors";
import { restAliases } from "../../lib/rest-aliases";
import InventoryService from "../../services/inventory/inventory.service";
import OrdersService from "../../services/orders/orders.service";
import PaymentsService from "../../services/payments/payments.service";
import UsersService from "../../services/users/users.service";

const WebErrors = ApiGateway.Errors;

// --- cards ----------------------------------------------------------------------------------------

describe("cards", () => {
	it.each([APPROVED_TEST_CARD, DECLINED_TEST_CARD, "5555555555554444", "378282246310005", "6011111111111117", "000000000018", "4000000000000000006", "0"])(
		"passesLuhn(%s) is true",
		card => {
			expect(passesLuhn(card)).toBe(true);
		}
	);

	it.each(["4242424242424241", "4242424242424243", "5555555555554443", "1", "000000000019"])("passesLuhn(%s) is false", card => {
		expect(passesLuhn(card)).toBe(false);
	});

	it("catches a single wrong digit and a swap of two neighbouring digits", () => {
		// 4242424242424242 with its 3rd and 4th digits swapped: 4224...
		expect(passesLuhn("4224424242424242")).toBe(false);
		for (let i = 0; i < APPROVED_TEST_CARD.length; i++) {
			const digit = Number(APPROVED_TEST_CARD[i]);
			const changed = APPROVED_TEST_CARD.slice(0, i) + String((digit + 1) % 10) + APPROVED_TEST_CARD.slice(i + 1);
			expect(passesLuhn(changed)).toBe(false);
		}
	});

	it.each([
		["12 digits", "000000000018", true],
		["16 digits", APPROVED_TEST_CARD, true],
		["19 digits", "4000000000000000006", true],
		["11 digits passing Luhn", "00000000026", false],
		["20 digits passing Luhn", "00000000000000000000", false],
		["a Luhn failure", "4242424242424241", false],
		["spaces", "4242 4242 4242 4242", false],
		["dashes", "4242-4242-4242-4242", false],
		["letters", "42424242424242AB", false],
		["a trailing newline", `${APPROVED_TEST_CARD}\n`, false],
		["full-width digits", "４２４２４２４２４２４２４２４２", false],
		["an empty string", "", false]
	])("isValidCardNumber: %s → %s", (_what, card, valid) => {
		expect(isValidCardNumber(card)).toBe(valid);
	});

	it("declines only the declined test card", () => {
		expect(decideCharge(DECLINED_TEST_CARD)).toBe("declined");
		expect(decideCharge(APPROVED_TEST_CARD)).toBe("approved");
		expect(decideCharge("5555555555554444")).toBe("approved");
		expect(APPROVED_TEST_CARD).toBe("4242424242424242");
		expect(DECLINED_TEST_CARD).toBe("4000000000000002");
	});

	it("lastFour keeps the last four digits only", () => {
		expect(lastFour(APPROVED_TEST_CARD)).toBe("4242");
		expect(lastFour(DECLINED_TEST_CARD)).toBe("0002");
		expect(lastFour("4000000000000000006")).toBe("0006");
	});
});

// --- order rules ----------------------------------------------------------------------------------

describe("order rules", () => {
	const product = (id: string, price: number): Product => ({
		id,
		sku: `SKU-${id}`,
		name: `Name ${id}`,
		description: "",
		price,
		currency: "USD",
		stock: 10,
		createdAt: "2024-01-01T00:00:00.000Z",
		updatedAt: "2024-01-01T00:00:00.000Z"
	});

	it("mergeLines adds up the lines of one product, in order of first appearance", () => {
		expect(
			mergeLines([
				{ productId: "b", quantity: 1 },
				{ productId: "a", quantity: 2 },
				{ productId: "b", quantity: 3 }
			])
		).toEqual([
			{ productId: "b", quantity: 4 },
			{ productId: "a", quantity: 2 }
		]);
		expect(mergeLines([])).toEqual([]);
	});

	it("priceLines takes sku, name and price from the catalogue and reports missing products", () => {
		const { items, missing } = priceLines(
			[
				{ productId: "a", quantity: 2 },
				{ productId: "ghost", quantity: 1 },
				{ productId: "b", quantity: 1 }
			],
			[product("b", 250), product("a", 1000)]
		);
		expect(items).toEqual([
			{ productId: "a", sku: "SKU-a", name: "Name a", quantity: 2, unitPrice: 1000 },
			{ productId: "b", sku: "SKU-b", name: "Name b", quantity: 1, unitPrice: 250 }
		]);
		expect(missing).toEqual(["ghost"]);
	});

	it("orderTotal sums unit price × quantity in cents", () => {
		expect(
			orderTotal([
				{ productId: "a", sku: "A", name: "A", quantity: 3, unitPrice: 1299 },
				{ productId: "b", sku: "B", name: "B", quantity: 1, unitPrice: 1 }
			])
		).toBe(3898);
		expect(orderTotal([])).toBe(0);
	});

	it.each([
		["confirmed", null, 201],
		["pending", null, 202],
		["cancelled", "out_of_stock", 409],
		["cancelled", "payment_declined", 402],
		["cancelled", "payment_failed", 409],
		["cancelled", "cancelled_by_user", 409]
	] as const)("answerStatus(%s, %s) is %d", (status, reason, code) => {
		expect(answerStatus(status, reason)).toBe(code);
	});

	it("finishableFrom: pending → confirmed; pending or confirmed → cancelled; nothing leaves cancelled", () => {
		expect(finishableFrom("confirmed")).toEqual(["pending"]);
		expect([...finishableFrom("cancelled")].sort()).toEqual(["confirmed", "pending"]);
	});

	it.each([
		["pending", null, false],
		["pending", "cancelled_by_user", false],
		["confirmed", null, true],
		["confirmed", "cancelled_by_user", false],
		["cancelled", "payment_failed", true]
	] as const)("isSettled(%s, %s) is %s", (status, cancelReason, settled) => {
		expect(isSettled({ status, cancelReason })).toBe(settled);
	});

	it("toPublicOrder shows the contract's fields, and a cancellation only once it is done", () => {
		const stored = {
			id: "o1",
			userId: "u1",
			status: "confirmed" as const,
			items: [{ productId: "a", sku: "A", name: "A", quantity: 1, unitPrice: 100 }],
			total: 100,
			cancelReason: "cancelled_by_user" as const,
			createdAt: "2024-01-01T00:00:00.000Z",
			updatedAt: "2024-01-02T00:00:00.000Z",
			// Bookkeeping a client never sees.
			idempotencyKey: "key",
			firstResponse: 201,
			ownerNode: "node-1",
			attendedAt: "2024-01-02T00:00:00.000Z"
		};
		expect(toPublicOrder(stored)).toEqual({
			id: "o1",
			userId: "u1",
			status: "confirmed",
			items: stored.items,
			total: 100,
			currency: "USD",
			cancelReason: null,
			createdAt: stored.createdAt,
			updatedAt: stored.updatedAt
		});
		expect(toPublicOrder({ ...stored, status: "cancelled" })).toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user" });
	});
});

// --- configuration --------------------------------------------------------------------------------

describe("loadConfig", () => {
	/** The ConfigError a configuration raises (fails the test when it raises none, or another error). */
	function configError(env: Record<string, string>): ConfigError {
		try {
			loadConfig(env);
		} catch (err) {
			expect(err).toBeInstanceOf(ConfigError);
			expect((err as Error).name).toBe("ConfigError");
			// One clear line.
			expect((err as Error).message).not.toMatch(/\n/);
			return err as ConfigError;
		}
		throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
	}

	it("has the documented defaults in development", () => {
		const config = loadConfig({});
		expect(config).toMatchObject({
			production: false,
			port: 3000,
			host: "127.0.0.1",
			dataDir: path.resolve("./data"),
			transporterUrl: null,
			services: [...SERVICE_NAMES],
			nodeID: null,
			jwtSecretGenerated: true,
			admin: null,
			logLevel: "info",
			seedDemo: true,
			metricsPort: 3030,
			loginRateLimit: 10
		});
		// Not in the contract (a tuning knob): only its kind is checked.
		expect(Number.isInteger(config.paymentTimeoutMs) && config.paymentTimeoutMs > 0).toBe(true);
		expect(config.jwtSecret).toMatch(/^[0-9a-f]{64}$/);
		expect(loadConfig({}).jwtSecret).not.toBe(config.jwtSecret);
		expect(config.dbUrl("orders")).toBe(`sqlite:${path.resolve("./data", "orders.sqlite")}`);
		expect(config.dbUrl("users")).toBe(`sqlite:${path.resolve("./data", "users.sqlite")}`);
		// Any service's, a service added later included.
		expect(config.dbUrl("shipping")).toBe(`sqlite:${path.resolve("./data", "shipping.sqlite")}`);
	});

	it("knows the services from their folders: services/<name>/<name>.service.ts, sorted", () => {
		expect(SERVICE_NAMES).toEqual(expect.arrayContaining(["api", "inventory", "orders", "payments", "users"]));
		expect([...SERVICE_NAMES]).toEqual([...SERVICE_NAMES].sort());
		const withServiceFile = readdirSync(SERVICES_DIR, { withFileTypes: true })
			.filter(entry => entry.isDirectory() && existsSync(path.join(SERVICES_DIR, entry.name, `${entry.name}.service.ts`)))
			.map(entry => entry.name);
		expect([...SERVICE_NAMES].sort()).toEqual(withServiceFile.sort());
	});

	it("reads every variable", () => {
		const config = loadConfig({
			NODE_ENV: "production",
			PORT: "8080",
			HOST: "0.0.0.0",
			DATA_DIR: "/var/lib/shop",
			ORDERS_DB: "postgres://shop:pw@db:5432/orders",
			TRANSPORTER: "nats://orders:nats-pass@nats.internal:4222",
			TRANSIT_KEY: "ab".repeat(32),
			SERVICES: " orders , api,orders ",
			NODEID: "orders-1",
			JWT_SECRET: "a-production-secret-of-some-length",
			ADMIN_EMAIL: " admin@shop.test ",
			ADMIN_PASSWORD: "admin-password",
			LOG_LEVEL: "WARN",
			SEED_DEMO: "yes",
			METRICS_PORT: "0",
			LOGIN_RATE_LIMIT: "3",
			PAYMENT_TIMEOUT_MS: "250"
		});
		expect(config).toMatchObject({
			production: true,
			port: 8080,
			host: "0.0.0.0",
			dataDir: "/var/lib/shop",
			transporterUrl: "nats://orders:nats-pass@nats.internal:4222",
			transitKey: Buffer.from("ab".repeat(32), "hex"),
			services: ["orders", "api"],
			nodeID: "orders-1",
			jwtSecret: "a-production-secret-of-some-length",
			jwtSecretGenerated: false,
			admin: { email: "admin@shop.test", password: "admin-password" },
			logLevel: "warn",
			seedDemo: true,
			metricsPort: 0,
			loginRateLimit: 3,
			paymentTimeoutMs: 250
		});
		expect(config.dbUrl("orders")).toBe("postgres://shop:pw@db:5432/orders");
		expect(config.dbUrl("payments")).toBe("sqlite:/var/lib/shop/payments.sqlite");
	});

	it("turns the demo catalogue off in production unless asked for", () => {
		expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "0123456789abcdef" }).seedDemo).toBe(false);
		expect(loadConfig({ SEED_DEMO: "false" }).seedDemo).toBe(false);
		expect(loadConfig({ SEED_DEMO: "0" }).seedDemo).toBe(false);
		expect(loadConfig({ SEED_DEMO: "" }).seedDemo).toBe(true);
	});

	it("accepts SERVICES=* and an empty SERVICES as all services", () => {
		expect(loadConfig({ SERVICES: "*" }).services).toEqual([...SERVICE_NAMES]);
		expect(loadConfig({ SERVICES: "  " }).services).toEqual([...SERVICE_NAMES]);
	});

	it("rejects an unknown SERVICES name, naming it", () => {
		const err = configError({ SERVICES: "orders,shipping" });
		expect(err.message).toMatch(/^SERVICES/);
		expect(err.message).toContain("shipping");
		expect(configError({ SERVICES: "Orders" }).message).toContain("Orders");
	});

	it("rejects a SERVICES list that names no service at all", () => {
		expect(configError({ SERVICES: "," }).message).toMatch(/^SERVICES names no service/);
		expect(configError({ SERVICES: " , ," }).message).toMatch(/^SERVICES names no service/);
	});

	it.each([
		["not a URL", "not a url"],
		["a host:port without scheme", "localhost:4222"],
		["another scheme", "redis://127.0.0.1:6379"],
		["nats without a host", "nats://"],
		["a bare scheme", "nats:"]
	])("rejects a malformed TRANSPORTER: %s", (_what, value) => {
		expect(configError({ TRANSPORTER: value }).message).toMatch(/^TRANSPORTER/);
	});

	it("does not print the credentials of a rejected TRANSPORTER", () => {
		const err = configError({ TRANSPORTER: "tls://shop:s3cr3t-pass@nats.internal:4222" });
		expect(err.message).toMatch(/^TRANSPORTER/);
		expect(err.message).not.toContain("s3cr3t-pass");
		expect(err.message).toContain("nats.internal");
		expect(configError({ TRANSPORTER: "nats//shop:s3cr3t-pass@nats.internal" }).message).not.toContain("s3cr3t-pass");
		// A good URL with credentials is kept whole: the transporter needs them.
		expect(loadConfig({ TRANSPORTER: "nats://shop:s3cr3t-pass@nats.internal:4222" }).transporterUrl).toBe("nats://shop:s3cr3t-pass@nats.internal:4222");
	});

	it("requires JWT_SECRET in production", () => {
		expect(configError({ NODE_ENV: "production" }).message).toMatch(/JWT_SECRET/);
		expect(configError({ NODE_ENV: "production", JWT_SECRET: "" }).message).toMatch(/JWT_SECRET/);
	});

	it("rejects a JWT_SECRET shorter than 16 characters", () => {
		expect(configError({ JWT_SECRET: "too-short" }).message).toMatch(/JWT_SECRET/);
		expect(loadConfig({ JWT_SECRET: "exactly-16-chars" }).jwtSecret).toBe("exactly-16-chars");
	});

	it("rejects a bad LOG_LEVEL, and accepts the documented ones in any case", () => {
		expect(configError({ LOG_LEVEL: "verbose" }).message).toMatch(/^LOG_LEVEL.*verbose/);
		for (const level of ["trace", "debug", "info", "warn", "error", "fatal"]) {
			expect(loadConfig({ LOG_LEVEL: level.toUpperCase() }).logLevel).toBe(level);
		}
	});

	it("requires ADMIN_EMAIL and ADMIN_PASSWORD together, and a password of 8 to 128 characters", () => {
		expect(configError({ ADMIN_EMAIL: "admin@shop.test" }).message).toMatch(/ADMIN_EMAIL and ADMIN_PASSWORD/);
		expect(configError({ ADMIN_PASSWORD: "admin-password" }).message).toMatch(/ADMIN_EMAIL and ADMIN_PASSWORD/);
		expect(configError({ ADMIN_EMAIL: "admin@shop.test", ADMIN_PASSWORD: "short" }).message).toMatch(/ADMIN_PASSWORD/);
		expect(configError({ ADMIN_EMAIL: "admin@shop.test", ADMIN_PASSWORD: "x".repeat(129) }).message).toMatch(/ADMIN_PASSWORD/);
	});

	it("rejects a database URL of another kind without printing its password", () => {
		const err = configError({ PAYMENTS_DB: "mysql://shop:hunter2-secret@db/payments" });
		expect(err.message).toMatch(/^PAYMENTS_DB/);
		expect(err.message).not.toContain("hunter2-secret");
		expect(configError({ USERS_DB: "users.sqlite" }).message).toMatch(/^USERS_DB/);
		expect(loadConfig({ USERS_DB: "sqlite::memory:" }).dbUrl("users")).toBe("sqlite::memory:");
		expect(loadConfig({ USERS_DB: "postgresql://db/users" }).dbUrl("users")).toBe("postgresql://db/users");
	});

	it.each([
		["PORT", "abc"],
		["PORT", "70000"],
		["PORT", "-1"],
		["PORT", "80.5"],
		["METRICS_PORT", "metrics"],
		["SEED_DEMO", "maybe"],
		["LOGIN_RATE_LIMIT", "0"],
		["LOGIN_RATE_LIMIT", "ten"],
		["PAYMENT_TIMEOUT_MS", "-100"]
	])("rejects %s=%s", (key, value) => {
		const err = configError({ [key]: value });
		expect(err.message).toMatch(new RegExp(`^${key}`));
		expect(err.message).toContain(value);
	});
});

// --- the error mapping ----------------------------------------------------------------------------

describe("toErrorBody", () => {
	const keysOf = (body: object) => Object.keys(body).sort();

	it("maps body-parser's 'entity.parse.failed' to 400 INVALID_REQUEST_BODY", () => {
		const err = Object.assign(new SyntaxError("Unexpected token } in JSON at position 12"), {
			type: "entity.parse.failed",
			status: 400,
			body: '{"email": }'
		});
		const body = toErrorBody(err);
		expect(body).toEqual({
			name: "InvalidRequestBodyError",
			message: "The request body is not valid JSON",
			code: 400,
			type: "INVALID_REQUEST_BODY",
			data: null
		});
	});

	it("maps body-parser's 'entity.too.large' to 413 PAYLOAD_TOO_LARGE", () => {
		const err = Object.assign(new Error("request entity too large"), { type: "entity.too.large", status: 413, limit: 1048576 });
		expect(toErrorBody(err)).toMatchObject({ name: "PayloadTooLarge", code: 413, type: "PAYLOAD_TOO_LARGE", data: null });
	});

	it("maps moleculer-web's own 413 and 400 errors to the contract's types", () => {
		expect(toErrorBody(new WebErrors.BadRequestError("ERR_UNABLE_DECODE_PARAM", null))).toMatchObject({ code: 400, type: "INVALID_REQUEST_BODY" });
	});

	it.each([
		["ServiceNotAvailableError", () => new Errors.ServiceNotAvailableError({ action: "payments.capture", nodeID: "node-2" })],
		["RequestTimeoutError", () => new Errors.RequestTimeoutError({ action: "payments.capture", nodeID: "node-2" })],
		["ServiceNotFoundError", () => new Errors.ServiceNotFoundError({ action: "payments.capture", nodeID: "node-2" })],
		["RequestRejectedError", () => new Errors.RequestRejectedError({ action: "payments.capture", nodeID: "node-2" })]
	])("maps %s to 503 SERVICE_NOT_AVAILABLE naming the service", (_name, make) => {
		const body = toErrorBody(make());
		expect(body).toEqual({
			name: "ServiceNotAvailableError",
			message: "The payments service is not available right now",
			code: 503,
			type: "SERVICE_NOT_AVAILABLE",
			data: { service: "payments" }
		});
		expect(JSON.stringify(body)).not.toContain("node-2");
	});

	it("maps any MoleculerError with code 503 to SERVICE_NOT_AVAILABLE", () => {
		expect(toErrorBody(new WebErrors.ServiceUnavailableError("NO_NODES", null))).toEqual({
			name: "ServiceNotAvailableError",
			message: "A service this call needs is not available right now",
			code: 503,
			type: "SERVICE_NOT_AVAILABLE",
			data: null
		});
	});

	it("keeps a ValidationError's fields and reasons but drops the offending 'actual' values", () => {
		const err = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{ field: "password", type: "stringMin", message: "The 'password' field length must be >= 8.", expected: 8, actual: "hunter2" },
			{ field: "email", type: "email", message: "The 'email' field must be a valid e-mail.", actual: "x".repeat(100_000) }
		]);
		const body = toErrorBody(err);
		expect(body).toEqual({
			name: "ValidationError",
			message: "Parameters validation error!",
			code: 422,
			type: "VALIDATION_ERROR",
			data: [
				{ field: "password", type: "stringMin", message: "The 'password' field length must be >= 8.", expected: 8 },
				{ field: "email", type: "email", message: "The 'email' field must be a valid e-mail." }
			]
		});
		expect(JSON.stringify(body)).not.toContain("hunter2");
	});

	it("maps the shop's own validationError like the validator's", () => {
		expect(toErrorBody(validationError("payment.card", "bad card", "card"))).toEqual({
			name: "ValidationError",
			message: "Parameters validation error!",
			code: 422,
			type: "VALIDATION_ERROR",
			data: [{ field: "payment.card", type: "card", message: "bad card" }]
		});
	});

	it.each([
		["notFound", () => notFound("Order", { id: "o1" }), 404, "NOT_FOUND", { id: "o1" }],
		["alreadyExists", () => alreadyExists("taken", { field: "email" }), 409, "ALREADY_EXISTS", { field: "email" }],
		["invalidState", () => invalidState("cancelled already"), 409, "INVALID_STATE", null],
		[
			"outOfStock",
			() => outOfStock({ products: [{ productId: "p1", requested: 3, available: 1 }] }),
			409,
			"OUT_OF_STOCK",
			{ products: [{ productId: "p1", requested: 3, available: 1 }] }
		],
		["paymentDeclined", () => paymentDeclined({ orderId: "o1" }), 402, "PAYMENT_DECLINED", { orderId: "o1" }],
		["unauthorized", () => unauthorized("Wrong email or password"), 401, "UNAUTHORIZED", null],
		["forbidden", () => forbidden(), 403, "FORBIDDEN", null]
	])("keeps the code, type, message and data of a client error: %s", (_name, make, code, type, data) => {
		const err = make();
		const body = toErrorBody(err);
		expect(body).toEqual({ name: "MoleculerClientError", message: err.message, code, type, data });
	});

	it.each([
		["moleculer-web's 401 with its own type", () => new WebErrors.UnAuthorizedError("ERR_INVALID_TOKEN", null), 401, "UNAUTHORIZED"],
		["moleculer-web's 403", () => new WebErrors.ForbiddenError("FORBIDDEN_ACCESS", null), 403, "FORBIDDEN"],
		["moleculer-web's 404", () => new WebErrors.NotFoundError("NOT_FOUND", null), 404, "NOT_FOUND"],
		["moleculer-web's 429", () => new WebErrors.RateLimitExceeded("RATE_LIMIT", null), 429, "RATE_LIMIT_EXCEEDED"],
		["a plain error with a status", () => Object.assign(new Error("gone"), { status: 404 }), 404, "NOT_FOUND"],
		["an unknown 4xx with its own type", () => new Errors.MoleculerClientError("teapot", 418, "I_AM_A_TEAPOT"), 418, "I_AM_A_TEAPOT"],
		["an unknown 4xx without a type", () => new Errors.MoleculerClientError("teapot", 418), 418, "CLIENT_ERROR"]
	])("gives the contract's type for %s", (_what, make, code, type) => {
		const body = toErrorBody(make());
		expect(body.code).toBe(code);
		expect(body.type).toBe(type);
		expect(keysOf(body)).toEqual(["code", "data", "message", "name", "type"]);
	});

	it("says something when a client error has no message", () => {
		expect(toErrorBody(new Errors.MoleculerClientError("", 409, "INVALID_STATE")).message).toBe("Request failed");
	});

	it.each([
		["a plain Error", () => new Error("SQLITE_CORRUPT: database disk image is malformed at /var/lib/shop/orders.sqlite")],
		["a TypeError", () => new TypeError("Cannot read properties of undefined (reading 'id')")],
		["a MoleculerServerError", () => new Errors.MoleculerServerError("db down", 500, "DB_DOWN", { host: "10.0.0.5" })],
		["a 504 from a gateway", () => new Errors.MoleculerError("upstream", 504, "GATEWAY_TIMEOUT", { secret: "x" })],
		["a thrown string", () => "boom"],
		["null", () => null],
		["undefined", () => undefined]
	])("maps %s to an opaque 500", (_what, make) => {
		const body = toErrorBody(make());
		expect(body).toEqual({
			name: "InternalError",
			message: "Something went wrong on our side; please try again",
			code: 500,
			type: "INTERNAL_ERROR",
			data: null
		});
	});
});

// --- REST aliases -------------------------------------------------------------------------------------

describe("restAliases", () => {
	it("builds the contract's routes from the services' rest lines, and no route for internal actions", () => {
		const table = restAliases([UsersService, InventoryService, OrdersService, PaymentsService]);
		expect(table.map(alias => `${alias.route} → ${alias.action}`).sort()).toEqual(
			[
				"POST /users/register → users.register",
				"POST /users/login → users.login",
				"GET /users/me → users.me",
				"GET /products → inventory.list",
				"GET /products/:id → inventory.get",
				"POST /products → inventory.create",
				"PATCH /products/:id → inventory.update",
				"POST /products/:id/restock → inventory.restock",
				"POST /orders → orders.create",
				"GET /orders → orders.list",
				"GET /orders/:id → orders.get",
				"POST /orders/:id/cancel → orders.cancel",
				"GET /payments → payments.list"
			].sort()
		);
		const actions = table.map(alias => alias.action);
		for (const internal of [
			"users.resolveToken",
			"inventory.reserve",
			"inventory.release",
			"inventory.commit",
			"inventory.getMany",
			"payments.capture",
			"payments.refund",
			"payments.resolve"
		]) {
			expect(actions).not.toContain(internal);
		}
	});

	it("uses settings.rest as the base, or /<name>, and joins paths cleanly", () => {
		const table = restAliases([
			{
				name: "things",
				actions: {
					list: { rest: "get /" },
					one: { rest: "GET /:id" },
					bare: { rest: "DELETE" },
					spaced: { rest: "  PUT    /:id/name  " },
					plain: () => null,
					hidden: { handler: () => null },
					weird: { rest: 42 }
				}
			},
			{ name: "widgets", settings: { rest: "/api-v2/widgets/" }, actions: { make: { rest: "POST /make" }, root: { rest: "GET /" } } },
			{ name: "root", settings: { rest: "/" }, actions: { home: { rest: "GET /" }, about: { rest: "GET /about" } } },
			{ name: "empty" }
		]);
		expect(table).toEqual([
			{ route: "GET /things", action: "things.list" },
			{ route: "GET /things/:id", action: "things.one" },
			{ route: "DELETE /things", action: "things.bare" },
			{ route: "PUT /things/:id/name", action: "things.spaced" },
			{ route: "POST /api-v2/widgets/make", action: "widgets.make" },
			{ route: "GET /api-v2/widgets/", action: "widgets.root" },
			{ route: "GET /", action: "root.home" },
			{ route: "GET /about", action: "root.about" }
		]);
	});
});
