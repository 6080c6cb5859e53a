/**
 * The back office's traces (README "Operating the shop / Traces"): an order's trace, or any trace by
 * its id, gathered from the recent spans every node keeps (`$tracing.spans`, lib/tracing.ts).
 *
 *   GET /api/admin/orders/:id/trace   the traces that touched the order (its creation, a later cancel)
 *   GET /api/admin/traces/:id         one trace, by the 32-hex id a response's `traceparent` / X-Request-ID names
 *
 * Each node is asked once per lookup (1.5 s at most, in parallel); a node that does not answer is
 * named in `unanswered` and its spans are missing, the rest are shown.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { ApiSettingsSchema } from "moleculer-web";
import { notFound } from "../../lib/errors";
import { idRule } from "../../lib/params";
import { traceIdHex, type SpanQuery, type SpanRecord } from "../../lib/tracing";
import type { ShopMeta } from "../../lib/types";

export interface TraceAnswer {
	traceIds: string[];
	/** Every kept span of those traces, in start order. */
	spans: SpanRecord[];
	/** The nodes asked, and those that did not answer in time. */
	nodes: string[];
	unanswered: string[];
}

interface ListedNode {
	id: string;
	available: boolean;
	services?: Array<{ name: string }>;
}

/** Asks every node that keeps spans, in parallel. */
async function gather(ctx: Context, query: SpanQuery): Promise<{ spans: SpanRecord[]; nodes: string[]; unanswered: string[] }> {
	const listed = await ctx.call<ListedNode[], { onlyAvailable: boolean; withServices: boolean }>("$node.list", { onlyAvailable: true, withServices: true });
	const nodes = listed.filter(node => node.available && (node.services ?? []).some(service => service.name === "$tracing")).map(node => node.id);
	const unanswered: string[] = [];
	const answers = await Promise.all(
		nodes.map(nodeID =>
			ctx.call<SpanRecord[], SpanQuery>("$tracing.spans", query, { nodeID, timeout: 1500, retries: 0 }).catch(() => {
				unanswered.push(nodeID);
				return [];
			})
		)
	);
	return { spans: answers.flat(), nodes, unanswered };
}

function answerOf(traceIds: string[], found: { spans: SpanRecord[]; nodes: string[]; unanswered: string[] }): TraceAnswer {
	const seen = new Set<string>();
	const spans = found.spans
		.filter(span => traceIds.includes(span.traceId) && !seen.has(`${span.traceId}/${span.id}`) && seen.add(`${span.traceId}/${span.id}`))
		.sort((a, b) => a.startTime - b.startTime);
	return { traceIds, spans, nodes: found.nodes.sort(), unanswered: found.unanswered.sort() };
}

export const TracesMixin: Partial<ServiceSchema<ApiSettingsSchema>> = {
	actions: {
		orderTrace: {
			rest: "GET /orders/:id/trace",
			auth: "admin",
			cache: false,
			params: { id: idRule },
			async handler(ctx: Context<{ id: string }, ShopMeta>): Promise<TraceAnswer> {
				// The spans tagged with the order name its traces; then every span of those traces (the gateway's, the users service's).
				const tagged = await gather(ctx, { orderId: ctx.params.id });
				const traceIds = [...new Set(tagged.spans.map(span => span.traceId))];
				if (traceIds.length === 0) throw notFound("Trace of this order (not sampled, or older than the spans the nodes keep)", { orderId: ctx.params.id });
				return answerOf(traceIds, await gather(ctx, { traceIds }));
			}
		},

		trace: {
			rest: "GET /traces/:id",
			auth: "admin",
			cache: false,
			params: { id: { type: "string", min: 1, max: 128 } },
			async handler(ctx: Context<{ id: string }, ShopMeta>): Promise<TraceAnswer> {
				const traceId = traceIdHex(ctx.params.id);
				const answer = answerOf([traceId], await gather(ctx, { traceIds: [traceId] }));
				if (answer.spans.length === 0) throw notFound("Trace (not sampled, or older than the spans the nodes keep)", { traceId });
				return answer;
			}
		}
	}
};

/** The alias table's source for the actions above (see lib/rest-aliases.ts): `/api/admin/...`. */
export const tracesRestSource = { name: "api", settings: { rest: "/admin" }, actions: TracesMixin.actions };
