/**
 * The shop's errors, in one place: the factories services throw, and the mapping of any error to
 * the contract's HTTP answer `{ name, message, code, type, data }` used by the gateway.
 *
 * Services throw Moleculer's own `MoleculerClientError` (never a subclass of ours): error classes
 * cross the NATS wire by name, and Moleculer's regenerator rebuilds its own classes on the other
 * node with code, type and data intact.
 */
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerError, ValidationError } = Errors;

export const ErrorType = {
	INVALID_REQUEST_BODY: "INVALID_REQUEST_BODY",
	UNAUTHORIZED: "UNAUTHORIZED",
	FORBIDDEN: "FORBIDDEN",
	NOT_FOUND: "NOT_FOUND",
	OUT_OF_STOCK: "OUT_OF_STOCK",
	ALREADY_EXISTS: "ALREADY_EXISTS",
	INVALID_STATE: "INVALID_STATE",
	PAYMENT_DECLINED: "PAYMENT_DECLINED",
	PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
	VALIDATION_ERROR: "VALIDATION_ERROR",
	RATE_LIMIT_EXCEEDED: "RATE_LIMIT_EXCEEDED",
	SERVICE_NOT_AVAILABLE: "SERVICE_NOT_AVAILABLE",
	INTERNAL_ERROR: "INTERNAL_ERROR"
} as const;
export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

type Data = Record<string, unknown> | unknown[] | null;

export const notFound = (what: string, data: Data = null) => new MoleculerClientError(`${what} not found`, 404, ErrorType.NOT_FOUND, data);
export const alreadyExists = (message: string, data: Data = null) => new MoleculerClientError(message, 409, ErrorType.ALREADY_EXISTS, data);
export const invalidState = (message: string, data: Data = null) => new MoleculerClientError(message, 409, ErrorType.INVALID_STATE, data);
/** The products an order is short of (empty when an Idempotency-Key replays the answer: it is not stored). */
export interface ShortageData {
	products: Array<{ productId: string; requested: number; available: number }>;
	orderId?: string;
}
export const outOfStock = (data: ShortageData) => new MoleculerClientError("Not enough stock for some products", 409, ErrorType.OUT_OF_STOCK, data);
export const paymentDeclined = (data: Data = null) => new MoleculerClientError("The card was declined", 402, ErrorType.PAYMENT_DECLINED, data);
export const unauthorized = (message = "Authentication required") => new MoleculerClientError(message, 401, ErrorType.UNAUTHORIZED, null);
export const forbidden = (message = "Not allowed for this account") => new MoleculerClientError(message, 403, ErrorType.FORBIDDEN, null);
/** A params error found by a rule the schema cannot express (same shape as the validator's). */
export const validationError = (field: string, message: string, type = "invalid") =>
	new ValidationError("Parameters validation error!", ErrorType.VALIDATION_ERROR, [{ field, type, message }]);

/** The body of every error answer. */
export interface ErrorBody {
	name: string;
	message: string;
	code: number;
	type: string;
	data: unknown;
}

/** For statuses where the contract names exactly one type, that type, whatever the source called it. */
const TYPE_BY_STATUS: Record<number, ErrorTypeName> = {
	400: ErrorType.INVALID_REQUEST_BODY,
	401: ErrorType.UNAUTHORIZED,
	403: ErrorType.FORBIDDEN,
	404: ErrorType.NOT_FOUND,
	413: ErrorType.PAYLOAD_TOO_LARGE,
	422: ErrorType.VALIDATION_ERROR,
	429: ErrorType.RATE_LIMIT_EXCEEDED,
	503: ErrorType.SERVICE_NOT_AVAILABLE
};

/** Moleculer's errors for "no node could serve this call": the client sees 503. */
const UNAVAILABLE_ERRORS = new Set([
	"ServiceNotFoundError",
	"ServiceNotAvailableError",
	"RequestTimeoutError",
	"RequestSkippedError",
	"RequestRejectedError",
	"QueueIsFullError",
	"ServiceUnavailableError",
	"BrokerDisconnectedError"
]);

/** body-parser's error types (it throws plain errors with `type` and `status`). */
const BODY_PARSER_ERRORS: Record<string, { status: number; message: string }> = {
	"entity.parse.failed": { status: 400, message: "The request body is not valid JSON" },
	"entity.verify.failed": { status: 400, message: "The request body is not valid JSON" },
	"request.aborted": { status: 400, message: "The request body was not received completely" },
	"request.size.invalid": { status: 400, message: "The request body is not the size its headers say" },
	"entity.too.large": { status: 413, message: "The request body is larger than 1 MB" },
	"charset.unsupported": { status: 400, message: "The request body's charset is not supported; send UTF-8 JSON" },
	"encoding.unsupported": { status: 400, message: "The request body's content encoding is not supported" },
	"parameters.too.many": { status: 400, message: "The request has too many parameters" }
};

interface LooseError {
	name?: unknown;
	message?: unknown;
	code?: unknown;
	status?: unknown;
	type?: unknown;
	data?: unknown;
}

/** Field-level validation details without echoing the offending value (it may be megabytes, or a secret). */
function validationDetails(data: unknown): unknown {
	if (!Array.isArray(data)) return data ?? null;
	return data.map(item => {
		const { field, type, message, expected } = (item ?? {}) as Record<string, unknown>;
		return expected === undefined ? { field, type, message } : { field, type, message, expected };
	});
}

/**
 * Maps any error to the contract's answer (`action`: the action the request was routed to, if any). Client errors keep their message and data; anything
 * else becomes a 503 (a service is unreachable) or an opaque 500 with no internals in it.
 */
export function toErrorBody(err: unknown, action?: string): ErrorBody {
	const e = (err ?? {}) as LooseError;
	const name = typeof e.name === "string" ? e.name : "Error";

	if (typeof e.type === "string" && e.type in BODY_PARSER_ERRORS) {
		const { status, message } = BODY_PARSER_ERRORS[e.type];
		return { name: status === 413 ? "PayloadTooLarge" : "InvalidRequestBodyError", message, code: status, type: TYPE_BY_STATUS[status], data: null };
	}

	// A compressed body that does not inflate: zlib's error code (Z_DATA_ERROR, ...) reaches us as moleculer-web's error code.
	if (typeof e.code === "string" && /^Z_[A-Z_]+$/.test(e.code)) {
		return {
			name: "InvalidRequestBodyError",
			message: "The request body could not be decompressed",
			code: 400,
			type: ErrorType.INVALID_REQUEST_BODY,
			data: null
		};
	}

	if (UNAVAILABLE_ERRORS.has(name) || (err instanceof MoleculerError && err.code === 503)) {
		const failedAction = (e.data as { action?: unknown } | undefined)?.action ?? action;
		const service = typeof failedAction === "string" ? failedAction.split(".")[0] : null;
		return {
			name: "ServiceNotAvailableError",
			message: service ? `The ${service} service is not available right now` : "A service this call needs is not available right now",
			code: 503,
			type: ErrorType.SERVICE_NOT_AVAILABLE,
			data: service ? { service } : null
		};
	}

	const code = typeof e.code === "number" ? e.code : typeof e.status === "number" ? e.status : 500;
	if (code >= 400 && code < 500) {
		const type = TYPE_BY_STATUS[code] ?? (typeof e.type === "string" ? e.type : "CLIENT_ERROR");
		const data = code === 422 ? validationDetails(e.data) : (e.data ?? null);
		const message = typeof e.message === "string" && e.message !== "" ? e.message : "Request failed";
		return { name, message, code, type, data };
	}

	return { name: "InternalError", message: "Something went wrong on our side; please try again", code: 500, type: ErrorType.INTERNAL_ERROR, data: null };
}
