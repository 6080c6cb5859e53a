/** The shop's additions to Moleculer's types, in one place. */
import "moleculer";

declare module "moleculer" {
	interface ActionSchema {
		/** Who may call this action through the gateway (mixins/auth.mixin.ts); absent means anyone. */
		auth?: "user" | "admin";
		/** A per-action request timeout (ms); Moleculer's timeout middleware honours it, its types omit it. */
		timeout?: number;
	}
}
