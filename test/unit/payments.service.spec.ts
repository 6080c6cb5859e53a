import { ServiceBroker, type Context, type Service, type ServiceSchema } from "moleculer";
import { APPROVED_TEST_CARD as APPROVED, DECLINED_TEST_CARD as DECLINED } from "../../lib/cards";
import { notFound } from "../../lib/errors";
import type { AuthUser, Payment } from "../../lib/types";
import PaymentsService, { type CaptureParams } from "../../services/payments/payments.service";
import type { PaymentsStore } from "../../services/payments/payments.store";
import { dbOf, metaOf, storeOf, unitSettings } from "./helpers";

/** Other numbers that pass the Luhn check: approved. */
const MASTERCARD = "5555555555554444";
const TWELVE_DIGITS = "000000000018";
const NINETEEN_DIGITS = "4000000000000000006";

const owner: AuthUser = { id: "user-owner", email: "owner@shop.test", role: "customer" };
const stranger: AuthUser = { id: "user-stranger", email: "stranger@shop.test", role: "customer" };
const admin: AuthUser = { id: "user-admin", email: "admin@shop.test", role: "admin" };

describe("payments service", () => {
	const broker = new ServiceBroker({ logger: false, transporter: null, cacher: "Memory" });
	broker.createService({ name: "payments", mixins: [PaymentsService], settings: unitSettings().payments } as ServiceSchema);
	/** The orders service decides who may see an order: a stub that knows who owns which. */
	const owners = new Map<string, string>();
	broker.createService({
		name: "orders",
		actions: {
			get(ctx: Context<{ id: string }, { user?: AuthUser }>) {
				const user = ctx.meta.user!;
				if (user.role !== "admin" && owners.get(ctx.params.id) !== user.id) throw notFound("Order", { id: ctx.params.id });
				return { id: ctx.params.id, userId: owners.get(ctx.params.id) };
			}
		}
	});
	const logged: string[] = [];

	beforeAll(async () => {
		await broker.start();
		const service = broker.getLocalService("payments") as Service;
		for (const level of ["trace", "debug", "info", "warn", "error", "fatal"] as const) {
			jest.spyOn(service.logger, level).mockImplementation((...args: unknown[]) => {
				logged.push(args.map(arg => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" "));
			});
		}
	});
	afterAll(() => broker.stop());

	let orderCounter = 0;
	const nextOrder = () => `order-${++orderCounter}`;
	const db = () => dbOf(broker.getLocalService("payments"));
	const capture = (params: Partial<CaptureParams> & { orderId: string }) =>
		broker.call<Payment, CaptureParams>("payments.capture", { userId: owner.id, amount: 2599, card: APPROVED, ...params });
	const refund = (orderId: string) => broker.call<Payment | null, { orderId: string }>("payments.refund", { orderId });
	const resolve = (orderId: string) => broker.call<Payment | null, { orderId: string }>("payments.resolve", { orderId });
	const list = (orderId: string, user: AuthUser) => broker.call<{ rows: Payment[] }, object>("payments.list", { orderId }, { meta: metaOf(user) });
	/** The payment rows stored for an order. */
	const paymentRows = async (orderId: string) => (await storeOf<PaymentsStore>(broker.getLocalService("payments")).listForOrder(orderId)).length;

	describe("capture", () => {
		it("captures the approved test card and answers the payment with only the last four digits", async () => {
			const orderId = nextOrder();
			const payment = await capture({ orderId, amount: 2599, card: APPROVED });
			expect(payment).toMatchObject({ orderId, amount: 2599, currency: "USD", status: "captured", cardLast4: "4242" });
			expect(Object.keys(payment).sort()).toEqual(["amount", "cardLast4", "createdAt", "currency", "id", "orderId", "status"]);
			expect(new Date(payment.createdAt).toISOString()).toBe(payment.createdAt);
		});

		it("declines the declined test card", async () => {
			const orderId = nextOrder();
			await expect(capture({ orderId, card: DECLINED })).resolves.toMatchObject({ orderId, status: "declined", cardLast4: "0002" });
		});

		it.each([
			["a 16-digit Mastercard test number", MASTERCARD, "4444"],
			["a 12-digit number", TWELVE_DIGITS, "0018"],
			["a 19-digit number", NINETEEN_DIGITS, "0006"]
		])("approves any other Luhn-valid number: %s", async (_what, card, last4) => {
			await expect(capture({ orderId: nextOrder(), card })).resolves.toMatchObject({ status: "captured", cardLast4: last4 });
		});

		it.each([
			["a number failing the Luhn check", "4242424242424241"],
			["letters", "4242abcd42424242"],
			["spaces", "4242 4242 4242 4242"],
			["11 digits", "00000000026"],
			["20 digits", "00000000000000000000"],
			["an empty string", ""]
		])("answers 422 VALIDATION_ERROR for %s and stores nothing", async (_what, card) => {
			const orderId = nextOrder();
			await expect(capture({ orderId, card })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
			expect(await paymentRows(orderId)).toBe(0);
		});

		it("names the card field in a Luhn failure, without echoing the number", async () => {
			expect.assertions(2);
			try {
				await capture({ orderId: nextOrder(), card: "4242424242424241" });
			} catch (err) {
				expect((err as { data: Array<{ field: string }> }).data.map(item => item.field)).toEqual(["payment.card"]);
				expect(JSON.stringify(err)).not.toContain("4242424242424241");
			}
		});

		it("charges an order once: a second capture answers the first payment", async () => {
			const orderId = nextOrder();
			const first = await capture({ orderId });
			const second = await capture({ orderId });
			expect(second).toEqual(first);
			// Even with another card or amount, the first payment stands.
			await expect(capture({ orderId, card: DECLINED, amount: 1 })).resolves.toEqual(first);
			expect(await paymentRows(orderId)).toBe(1);
		});

		it("charges an order once under concurrent captures", async () => {
			const orderId = nextOrder();
			const payments = await Promise.all(Array.from({ length: 10 }, () => capture({ orderId })));
			expect(new Set(payments.map(payment => payment.id)).size).toBe(1);
			expect(await paymentRows(orderId)).toBe(1);
		});
	});

	describe("refund", () => {
		it("refunds a captured payment, and a second refund changes nothing", async () => {
			const orderId = nextOrder();
			const captured = await capture({ orderId });
			const refunded = await refund(orderId);
			expect(refunded).toEqual({ ...captured, status: "refunded" });
			await expect(refund(orderId)).resolves.toEqual(refunded);
			expect(await paymentRows(orderId)).toBe(1);
		});

		it("leaves a declined payment declined", async () => {
			const orderId = nextOrder();
			await capture({ orderId, card: DECLINED });
			await expect(refund(orderId)).resolves.toMatchObject({ status: "declined" });
		});

		it("a capture retried after the refund answers the refunded payment, charging nothing", async () => {
			const orderId = nextOrder();
			await capture({ orderId });
			await refund(orderId);
			await expect(capture({ orderId })).resolves.toMatchObject({ status: "refunded" });
			expect(await paymentRows(orderId)).toBe(1);
		});

		it("before any capture, voids the order: it answers null and a later capture fails INVALID_STATE", async () => {
			const orderId = nextOrder();
			await expect(refund(orderId)).resolves.toBeNull();
			await expect(refund(orderId)).resolves.toBeNull();
			await expect(capture({ orderId })).rejects.toMatchObject({ code: 409, type: "INVALID_STATE" });
			expect(await paymentRows(orderId)).toBe(0);
		});
	});

	describe("resolve", () => {
		it("before any capture answers null and voids the order for good", async () => {
			const orderId = nextOrder();
			await expect(resolve(orderId)).resolves.toBeNull();
			await expect(capture({ orderId })).rejects.toMatchObject({ code: 409, type: "INVALID_STATE" });
			await expect(resolve(orderId)).resolves.toBeNull();
			expect(await paymentRows(orderId)).toBe(0);
		});

		it("after a capture answers the payment, and changes nothing", async () => {
			const orderId = nextOrder();
			const captured = await capture({ orderId });
			await expect(resolve(orderId)).resolves.toEqual(captured);
			await expect(capture({ orderId })).resolves.toEqual(captured);
		});

		it("when racing a capture, either the capture wins and resolve answers it, or the order is voided", async () => {
			for (let i = 0; i < 5; i++) {
				const orderId = nextOrder();
				const [captured, resolved] = await Promise.allSettled([capture({ orderId }), resolve(orderId)]);
				if (captured.status === "fulfilled") {
					expect(resolved).toEqual({ status: "fulfilled", value: captured.value });
					expect(await paymentRows(orderId)).toBe(1);
				} else {
					expect(captured.reason).toMatchObject({ type: "INVALID_STATE" });
					expect(resolved).toEqual({ status: "fulfilled", value: null });
					expect(await paymentRows(orderId)).toBe(0);
				}
			}
		});
	});

	describe("list", () => {
		const orderId = "order-listed";
		let payment: Payment;
		beforeAll(async () => {
			owners.set(orderId, owner.id);
			payment = await capture({ orderId, userId: owner.id });
		});

		it("shows the owner the order's payments", async () => {
			await expect(list(orderId, owner)).resolves.toEqual({ rows: [payment] });
		});

		it("answers another customer 404, as orders does: never another's order or payments", async () => {
			await expect(list(orderId, stranger)).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
		});

		it("shows an admin the order's payments", async () => {
			await expect(list(orderId, admin)).resolves.toEqual({ rows: [payment] });
		});

		it("answers 422 without an orderId", async () => {
			await expect(broker.call("payments.list", {}, { meta: metaOf(owner) })).rejects.toMatchObject({ code: 422 });
		});
	});

	describe("card numbers", () => {
		const cards = [APPROVED, DECLINED, MASTERCARD, TWELVE_DIGITS, NINETEEN_DIGITS];
		beforeAll(async () => {
			for (const card of cards) {
				const orderId = nextOrder();
				await capture({ orderId, card });
				await refund(orderId);
			}
		});

		it("stores only the last four digits: no column of any payment row holds more of the number", async () => {
			const rows = await db().all<Record<string, unknown>>("SELECT * FROM payments");
			expect(rows.length).toBeGreaterThanOrEqual(cards.length);
			for (const row of rows) {
				expect(String(row.card_last4)).toMatch(/^[0-9]{4}$/);
				for (const value of Object.values(row)) {
					const text = String(value);
					for (const card of cards) {
						expect(text).not.toContain(card);
						expect(text).not.toContain(card.slice(0, 8));
					}
				}
			}
		});

		it("stores the number in no table of the payments database", async () => {
			const tables = await db().all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'");
			expect(tables.map(table => table.name)).toEqual(expect.arrayContaining(["payments", "voided_orders"]));
			for (const { name } of tables) {
				// A table's name cannot be bound; these come from sqlite_master itself.
				const dump = JSON.stringify(await db().all(`SELECT * FROM "${name.replace(/"/g, '""')}"`));
				for (const card of cards) expect(dump).not.toContain(card);
			}
		});

		it("never logs the number", () => {
			expect(logged.length).toBeGreaterThan(0);
			for (const line of logged) for (const card of cards) expect(line).not.toContain(card);
		});
	});
});
