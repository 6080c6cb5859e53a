/** The shop's REST API, as the browser calls it: JSON in and out, the contract's error body turned into an ApiError. */

import type { Order as ServiceOrder, User } from "../../../lib/types";

export interface FieldError {
	field: string;
	message: string;
}

/** An answer other than 2xx, or no answer at all (`status` 0: the shop could not be reached). */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly type: string,
		message: string,
		readonly data: unknown = null
	) {
		super(message);
		this.name = "ApiError";
	}

	/** The fields a 422 names, each with why. */
	get fields(): FieldError[] {
		if (this.status !== 422 || !Array.isArray(this.data)) return [];
		return this.data
			.filter((item): item is { field: unknown; message: unknown } => typeof item === "object" && item !== null)
			.map(item => ({ field: String(item.field ?? ""), message: String(item.message ?? "") }));
	}
}

export interface CallOptions {
	body?: unknown;
	token?: string | null;
	headers?: Record<string, string>;
	signal?: AbortSignal;
}

export interface Answer<T> {
	status: number;
	body: T;
}

/** One call; resolves with the status and parsed body of a 2xx answer, rejects with an ApiError otherwise. */
export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<Answer<T>> {
	const headers: Record<string, string> = { accept: "application/json", ...options.headers };
	if (options.token) headers.authorization = `Bearer ${options.token}`;
	if (options.body !== undefined) headers["content-type"] = "application/json";
	let res: Response;
	try {
		res = await fetch(`/api${path}`, {
			method,
			headers,
			body: options.body === undefined ? undefined : JSON.stringify(options.body),
			signal: options.signal
		});
	} catch (err) {
		if (err instanceof DOMException && err.name === "AbortError") throw err;
		throw new ApiError(0, "NETWORK", "The shop could not be reached");
	}
	const text = await res.text();
	let body: unknown = null;
	try {
		body = text === "" ? null : JSON.parse(text);
	} catch {
		body = null;
	}
	if (!res.ok) {
		const error = (body ?? {}) as { type?: unknown; message?: unknown; data?: unknown };
		throw new ApiError(
			res.status,
			typeof error.type === "string" ? error.type : "HTTP_" + res.status,
			typeof error.message === "string" ? error.message : res.statusText,
			error.data ?? null
		);
	}
	return { status: res.status, body: body as T };
}

export const get = <T>(path: string, options?: CallOptions) => call<T>("GET", path, options).then(answer => answer.body);

// --- The contract's shapes ---------------------------------------------------------------------------

// The contract's shapes, as the services declare them in lib/types.ts (type-only: nothing of lib/ is bundled).
export type { CancelReason, OrderItem, OrderStatus, Page, Payment, Product, Role, User } from "../../../lib/types";

export interface Session {
	user: User;
	token: string;
}
/** An order; an admin's list also names the node attending it. */
export interface Order extends ServiceOrder {
	ownerNode?: string;
}

export function query(params: Record<string, string | number | undefined | null>): string {
	const search = new URLSearchParams();
	for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
	const text = search.toString();
	return text ? `?${text}` : "";
}
