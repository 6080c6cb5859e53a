/**
 * The admin API of chaos on purpose (lib/chaos.ts): `POST /api/admin/chaos` switches a fault on for
 * every node, `DELETE /api/admin/chaos/<action>` switches it off (every rule without one), `GET /api/admin/chaos` shows
 * what each node does. The gateway refuses (403) when its node does not allow chaos (CHAOS_ALLOWED,
 * false by default in production), and every node checks again for itself.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { ApiSettingsSchema } from "moleculer-web";
import { CHAOS_PARAMS, chaosOnEveryNode, chaosRule, switchChaos, type ChaosRequest, type ChaosRule, type NodeChaos } from "../../lib/chaos";
import { shopConfig } from "../../lib/config";
import { forbidden } from "../../lib/errors";
import type { ShopMeta } from "../../lib/types";

interface ChaosSettings {
	/** CHAOS_ALLOWED (lib/config.ts). */
	chaosAllowed: boolean;
}

function refuseUnlessAllowed(settings: ChaosSettings): void {
	if (!settings.chaosAllowed) throw forbidden("Chaos is not allowed on this shop (NODE_ENV=production without CHAOS_ALLOWED=true)");
}

export const ChaosMixin: Partial<ServiceSchema<ApiSettingsSchema>> = {
	settings: { chaosAllowed: shopConfig().chaosAllowed },

	actions: {
		chaos: {
			rest: "POST /chaos",
			auth: "admin",
			retryPolicy: { enabled: false },
			params: CHAOS_PARAMS,
			async handler(ctx: Context<ChaosRequest, ShopMeta>): Promise<{ rule: ChaosRule }> {
				refuseUnlessAllowed(this.settings as unknown as ChaosSettings);
				const rule = chaosRule(ctx.params);
				await switchChaos(this.broker, { on: rule }, ctx);
				this.logger.warn(`Chaos switched on by ${ctx.meta.user!.email}`);
				return { rule };
			}
		},

		chaosOff: {
			// The action to switch off in the path (`DELETE /api/admin/chaos/payments.capture`); none: every rule.
			rest: "DELETE /chaos{/:action}",
			auth: "admin",
			params: { action: { type: "string", max: 128, optional: true }, $$strict: "remove" },
			async handler(ctx: Context<{ action?: string }, ShopMeta>): Promise<{ off: string }> {
				await switchChaos(this.broker, { off: { action: ctx.params.action } }, ctx);
				return { off: ctx.params.action ?? "every rule" };
			}
		},

		chaosRules: {
			rest: "GET /chaos",
			auth: "admin",
			cache: false,
			async handler(): Promise<{ nodes: Array<NodeChaos | { nodeID: string; error: string }> }> {
				return { nodes: await chaosOnEveryNode(this.broker) };
			}
		}
	}
};

/** The alias table's source for the actions above: `/api/admin/chaos`. */
export const chaosRestSource = { name: "api", settings: { rest: "/admin" }, actions: ChaosMixin.actions };
