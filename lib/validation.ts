/**
 * Moleculer's Validator middleware, with no refused value in its errors. fastest-validator names the
 * value it refused in each error (`actual`): a card number sent as a number, a password sent as an
 * array, a card in the wrong field. Moleculer's ErrorHandler logs a rejected request with its error
 * at debug, and a remote caller gets the error over the bus, so the value would reach the log (and
 * every hop) though the client's answer never shows it (lib/errors.ts). The checks are the broker's
 * own validator's; only their answer loses `actual`, before any ValidationError is made of it.
 */
import type { Middleware, ServiceBroker } from "moleculer";

type Refusal = Record<string, unknown>;
type CheckResult = true | Refusal[];
type Check = ((params: unknown, opts?: unknown) => CheckResult | Promise<CheckResult>) & { async?: boolean };

interface BrokerValidator {
	compile(schema: unknown): Check;
	middleware(broker: ServiceBroker): Middleware;
}

function withoutValues(result: CheckResult): CheckResult {
	return result === true ? result : result.map(({ actual: _value, ...refusal }) => refusal);
}

/** A check that answers what `check` answers, without the refused values. */
export function redactedCheck(check: Check): Check {
	const redacted: Check = check.async
		? (params, opts) => (check(params, opts) as Promise<CheckResult>).then(withoutValues)
		: (params, opts) => withoutValues(check(params, opts) as CheckResult);
	redacted.async = check.async;
	return redacted;
}

/** The broker's validator as a middleware (Moleculer's "Validator"), its checks redacted; none without a validator. */
export function RedactingValidator(broker: ServiceBroker): Middleware | null {
	const validator = (broker as unknown as { validator?: BrokerValidator }).validator;
	if (!validator || typeof validator.middleware !== "function") return null;
	// The broker's validator itself stays as it is (other users of it, e.g. lib/cacher.ts, see its plain checks).
	const redacting: BrokerValidator = Object.create(validator);
	redacting.compile = schema => redactedCheck(validator.compile(schema));
	return validator.middleware.call(redacting, broker);
}
