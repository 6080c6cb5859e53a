/**
 * An order's trace as a waterfall (README "Operating the shop / Traces"): every span the nodes still
 * keep for the traces that touched the order, one row each, indented under its parent, with its
 * start and duration as text and as a bar on the trace's time line.
 */
import { useEffect, useState } from "preact/hooks";
import type { SpanRecord } from "../../../lib/types";
import { get } from "../shared/api";
import { explain } from "../shared/errors";
import { relogin, token } from "./state";

/** A span as `GET /api/admin/orders/:id/trace` answers it (services/api/traces.mixin.ts). */
type SpanRow = Omit<SpanRecord, "orderId" | "tags">;

interface TraceAnswer {
	traceIds: string[];
	spans: SpanRow[];
	unanswered: string[];
}

const ms = (value: number) => (value < 10 ? value.toFixed(1) : Math.round(value).toString());

/** Depth-first order under each root, with each span's depth (a span whose parent is not kept is a root). */
function ordered(spans: SpanRow[]): Array<{ span: SpanRow; depth: number }> {
	const ids = new Set(spans.map(span => span.id));
	const children = new Map<string | null, SpanRow[]>();
	for (const span of spans) {
		const parent = span.parentId !== null && ids.has(span.parentId) ? span.parentId : null;
		children.set(parent, [...(children.get(parent) ?? []), span]);
	}
	const rows: Array<{ span: SpanRow; depth: number }> = [];
	const visit = (parent: string | null, depth: number) => {
		for (const span of (children.get(parent) ?? []).sort((a, b) => a.startTime - b.startTime)) {
			rows.push({ span, depth });
			visit(span.id, depth + 1);
		}
	};
	visit(null, 0);
	return rows;
}

export function OrderTrace({ id }: { id: string }) {
	const [answer, setAnswer] = useState<TraceAnswer | null>(null);
	const [message, setMessage] = useState("Loading the trace…");
	useEffect(() => {
		get<TraceAnswer>(`/admin/orders/${encodeURIComponent(id)}/trace`, { token: token() }).then(setAnswer, err => {
			const explained = explain(err, "admin");
			if (explained.login) relogin();
			else
				setMessage(
					(err as { status?: number }).status === 404
						? "No trace is kept for this order (not sampled, or older than the spans the nodes keep)."
						: explained.message
				);
		});
	}, [id]);

	if (!answer) {
		return (
			<section aria-labelledby="trace-title">
				<h2 id="trace-title">Trace</h2>
				<p>{message}</p>
			</section>
		);
	}
	const start = Math.min(...answer.spans.map(span => span.startTime));
	const end = Math.max(...answer.spans.map(span => span.startTime + span.duration));
	const total = Math.max(end - start, 0.001);
	const services = new Set(answer.spans.map(span => span.service ?? "?"));
	return (
		<section aria-labelledby="trace-title">
			<h2 id="trace-title">Trace</h2>
			<p>
				Trace id <code>{answer.traceIds.join(", ")}</code> (search it in Zipkin or Jaeger). {answer.spans.length} spans from {services.size} services over{" "}
				{ms(total)} ms.
				{answer.unanswered.length > 0 && ` Nodes that did not answer: ${answer.unanswered.join(", ")}.`}
			</p>
			<div class="table-scroll">
				<table class="lines waterfall">
					<caption>Spans of the order's trace, in call order</caption>
					<thead>
						<tr>
							<th scope="col">Call</th>
							<th scope="col">Service</th>
							<th scope="col">Node</th>
							<th scope="col">Starts at</th>
							<th scope="col">Duration</th>
							<th scope="col">Time line</th>
						</tr>
					</thead>
					<tbody>
						{ordered(answer.spans).map(({ span, depth }) => (
							<tr key={span.traceId + span.id} class={span.error ? "span-error" : undefined}>
								<th scope="row" class="span-name" style={{ paddingLeft: `${0.5 + depth * 1.25}rem` }}>
									{span.name}
									{span.error && <strong> failed ({span.error})</strong>}
								</th>
								<td>{span.service}</td>
								<td>{span.nodeID}</td>
								<td>+{ms(span.startTime - start)} ms</td>
								<td>{ms(span.duration)} ms</td>
								<td class="span-line" aria-hidden="true">
									<div
										class="span-bar"
										style={{ marginLeft: `${((span.startTime - start) / total) * 100}%`, width: `${Math.max((span.duration / total) * 100, 0.5)}%` }}
									/>
								</td>
							</tr>
						))}
					</tbody>
				</table>
			</div>
		</section>
	);
}
