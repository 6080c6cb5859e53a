/**
 * Authentication and authorisation for the gateway, declared on the actions themselves:
 *
 *     actions: { me: { auth: "user", handler(ctx) { ctx.meta.user ... } } }
 *
 * `auth: "user"` needs a valid Bearer token, `auth: "admin"` an admin's. The gateway asks the users
 * service to check the token (`users.resolveToken`), so only users nodes hold JWT_SECRET. The action
 * property travels with the service's registry entry, so this works for actions on other nodes.
 */
import type { ActionSchema, Context, Service, ServiceSchema } from "moleculer";
import type { IncomingRequest, Route } from "moleculer-web";
import type { AuthUser, ShopMeta } from "../lib/types";
import type { ResolveTokenParams } from "../services/users/users.service";
import { forbidden, unauthorized } from "../lib/errors";

export type AuthRequirement = NonNullable<ActionSchema["auth"]>;

type GatewayRequest = IncomingRequest & { $action?: { auth?: AuthRequirement; name?: string } };

function bearerToken(req: IncomingRequest): string | null {
	const header = req.headers.authorization;
	if (typeof header !== "string") return null;
	const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
	return match ? match[1] : null;
}

export const AuthMixin: Partial<ServiceSchema> = {
	methods: {
		/** Resolves the caller from the Bearer token; an absent token is an anonymous call, a bad one a 401. */
		async authenticate(this: Service, ctx: Context<unknown, ShopMeta>, _route: Route, req: GatewayRequest): Promise<AuthUser | null> {
			// Public calls never depend on the users service, whatever headers they carry.
			if (!req.$action?.auth) return null;
			const token = bearerToken(req);
			if (token == null) {
				if (req.headers.authorization != null) throw unauthorized("The Authorization header must be 'Bearer <token>'");
				return null;
			}
			// A token resolveToken's schema refuses (e.g. over its length limit) is a bad token: 401, not 422.
			return ctx.call<AuthUser, ResolveTokenParams>("users.resolveToken", { token }).catch((err: unknown) => {
				if ((err as { code?: unknown } | null)?.code === 422) throw unauthorized("Invalid or expired token");
				throw err;
			});
		},

		/** Checks the action's `auth` requirement against the resolved caller. */
		authorize(this: Service, ctx: Context<unknown, ShopMeta>, _route: Route, req: GatewayRequest): void {
			const required = req.$action?.auth;
			if (!required) return;
			const user = ctx.meta.user;
			if (!user) throw unauthorized("Authentication required: send 'Authorization: Bearer <token>'");
			if (required === "admin" && user.role !== "admin") throw forbidden("Only an admin may do this");
		}
	}
};
