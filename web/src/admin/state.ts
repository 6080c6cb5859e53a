/** The back office's session (kept apart from a customer's session in the storefront). */
import type { Session } from "../shared/api";
import { navigate } from "../shared/router";
import { stored } from "../shared/store";

const isSession = (value: unknown): value is Session | null =>
	value === null || (typeof value === "object" && typeof (value as Session).token === "string" && (value as Session).user?.role === "admin");

export const adminSession = stored<Session | null>("shop.admin.session", null, isSession);

/** The session is gone or no longer valid: back to the login form, then back here. */
export function relogin(): void {
	adminSession.set(null);
	navigate(`/admin/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
}

export const token = () => adminSession.get()?.token ?? null;
