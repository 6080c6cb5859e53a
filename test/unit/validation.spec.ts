/**
 * The broker's validator as the shop's brokers run it (lib/validation.ts): a refused value never in
 * the error, which Moleculer logs at debug and sends back over the bus.
 */
import { ServiceBroker, type Context } from "moleculer";
import { shopMiddlewares } from "../../lib/broker-middlewares";
import { redactedCheck } from "../../lib/validation";

describe("the validator's errors", () => {
	const broker = new ServiceBroker({ logger: false, transporter: null, internalMiddlewares: false, middlewares: shopMiddlewares([]) });
	broker.createService({
		name: "pay",
		actions: {
			capture: { params: { card: { type: "string" }, amount: { type: "number" } }, handler: (ctx: Context<{ card: string }>) => ctx.params.card.slice(-4) }
		}
	});
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	it("name each refused field, its rule and why, but not the value", async () => {
		const err = await broker.call("pay.capture", { card: 4000056655665556, amount: "5105105105105100" }).catch((e: unknown) => e);
		expect(err).toMatchObject({ name: "ValidationError", code: 422 });
		const data = (err as { data: Array<Record<string, unknown>> }).data;
		expect(data.map(({ field, type }) => ({ field, type }))).toEqual([
			{ field: "card", type: "string" },
			{ field: "amount", type: "number" }
		]);
		expect(data.every(item => !("actual" in item))).toBe(true);
		expect(JSON.stringify(err)).not.toMatch(/4000056655665556|5105105105105100/);
		await expect(broker.call("pay.capture", { card: "4242424242424242", amount: 1 })).resolves.toBe("4242");
	});

	it("an asynchronous check is redacted too, and stays asynchronous", async () => {
		const check = Object.assign(async () => [{ type: "string", field: "card", actual: "4242424242424242", message: "no" }], { async: true });
		const redacted = redactedCheck(check);
		expect(redacted.async).toBe(true);
		await expect(redacted({})).resolves.toEqual([{ type: "string", field: "card", message: "no" }]);
	});
});
