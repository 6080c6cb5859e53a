/**
 * The cluster, live: every node the gateway's broker knows, with its services, whether it still sends
 * heartbeats (grey once it stops, within the heartbeat timeout) and the requests it handled, from
 * its own metrics. Refreshed every REFRESH_MS; rates are the change since the previous refresh.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ClusterAnswer, ClusterNode } from "../../../lib/types";
import { get } from "../shared/api";
import { explain } from "../shared/errors";
import { dateTime, timeOfDay } from "../shared/format";
import { Notice, PageTitle, useInterval } from "../shared/ui";
import { relogin, token } from "./state";

const REFRESH_MS = 2000;

const percent = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "0 %");

function NodeCard({ node, previous, seconds }: { node: ClusterNode; previous?: ClusterNode; seconds: number }) {
	const rate = node.requests !== null && previous?.requests != null && seconds > 0 ? Math.max(0, (node.requests - previous.requests) / seconds) : null;
	const actions = Object.entries(node.actions)
		.filter(([action]) => action !== "api.rest")
		.sort((a, b) => b[1] - a[1])
		.slice(0, 5);
	return (
		<li class={node.available ? "node" : "node node-gone"} aria-labelledby={`node-${node.id}`}>
			<h3 id={`node-${node.id}`}>{node.id}</h3>
			<p>
				<span class={`badge ${node.available ? "badge-up" : "badge-down"}`}>{node.available ? "Up" : `Gone: no heartbeat for ${node.silentFor} s`}</span>
				{node.local && " · this gateway"}
			</p>
			<dl>
				<dt>Services</dt>
				<dd>{node.services.length > 0 ? node.services.join(", ") : "none"}</dd>
				<dt>Last heartbeat</dt>
				<dd>{node.lastSeen ? timeOfDay(node.lastSeen) : "unknown"}</dd>
				{node.cpu !== null && (
					<>
						<dt>CPU</dt>
						<dd>{node.cpu} %</dd>
					</>
				)}
				<dt>Requests</dt>
				<dd>{node.requests === null ? "unknown" : node.requests}</dd>
				<dt>Errors</dt>
				<dd>{node.errors === null || node.requests === null ? "unknown" : `${node.errors} (${percent(node.errors, node.requests)})`}</dd>
				<dt>Rate</dt>
				<dd>{rate === null ? "–" : `${rate.toFixed(1)} requests/s`}</dd>
			</dl>
			{actions.length > 0 && (
				<>
					<p>Busiest actions:</p>
					<ul>
						{actions.map(([action, count]) => (
							<li key={action}>
								{action}: {count}
							</li>
						))}
					</ul>
				</>
			)}
		</li>
	);
}

export function Cluster() {
	const [answer, setAnswer] = useState<ClusterAnswer | null>(null);
	const previous = useRef<ClusterAnswer | null>(null);
	const [error, setError] = useState("");
	const load = useCallback(() => {
		get<ClusterAnswer>("/admin/cluster", { token: token() }).then(
			got => {
				setAnswer(current => {
					previous.current = current;
					return got;
				});
				setError("");
			},
			err => {
				const explained = explain(err, "admin");
				if (explained.login) relogin();
				else setError(explained.message);
			}
		);
	}, []);
	useEffect(load, [load]);
	useInterval(load, REFRESH_MS);

	const before = previous.current;
	const seconds = answer && before ? (Date.parse(answer.at) - Date.parse(before.at)) / 1000 : 0;
	const down = answer ? Object.entries(answer.services).filter(([, nodes]) => nodes.length === 0) : [];
	return (
		<>
			<PageTitle title="Cluster · Back office">Cluster</PageTitle>
			<Notice kind="error">{error}</Notice>
			{answer && (
				<>
					<p role="status">
						{answer.ready
							? "Ready: every service has a live node."
							: `Degraded: no live node runs ${down.map(([name]) => name).join(", ")}. The rest keeps answering.`}{" "}
						Seen from gateway {answer.gateway} at {dateTime(answer.at)}; a node that sends no heartbeat for {answer.heartbeatTimeout} s turns grey.
					</p>
					<table class="lines">
						<caption>Services</caption>
						<thead>
							<tr>
								<th scope="col">Service</th>
								<th scope="col">Live nodes</th>
							</tr>
						</thead>
						<tbody>
							{Object.entries(answer.services).map(([name, nodes]) => (
								<tr key={name}>
									<th scope="row">{name}</th>
									<td>{nodes.length > 0 ? nodes.join(", ") : <strong>none: down</strong>}</td>
								</tr>
							))}
						</tbody>
					</table>
					<h2>Nodes</h2>
					<ul class="nodes">
						{answer.nodes.map(node => (
							<NodeCard key={node.id} node={node} previous={before?.nodes.find(other => other.id === node.id)} seconds={seconds} />
						))}
					</ul>
				</>
			)}
		</>
	);
}
