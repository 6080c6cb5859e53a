/** `cluster`: nodes, their services and availability, and the calls each one handled (lib/cluster-view.ts, as the back office shows it). */
import { clusterView } from "../cluster-view";
import { explain, printTable, type ReplCommand } from "./common";

export const clusterCommand: ReplCommand = {
	command: "cluster",
	description: "Show the nodes: services, availability, calls handled per node and per action",
	async action(broker, _args, helpers) {
		let view;
		try {
			view = await clusterView(broker);
		} catch (err) {
			return void console.log(`cluster: ${explain(err)}`);
		}
		printTable(
			helpers,
			["node", "available", "services", "calls", "errors", "calls per action"],
			view.nodes.map(node => [
				`${node.id}${node.local ? " (this REPL)" : ""}`,
				node.available ? "yes" : `no (silent ${node.silentFor}s)`,
				node.services.join(", "),
				node.requests ?? "?",
				node.errors ?? "?",
				Object.entries(node.actions)
					.sort(([a], [b]) => a.localeCompare(b))
					.map(([action, calls]) => `${action}=${calls}`)
					.join(" ")
			])
		);
		const where = Object.entries(view.services).map(([service, nodes]) => `${service}: ${nodes.length > 0 ? nodes.join(",") : "NONE"}`);
		console.log(`${view.ready ? "Ready" : "Degraded"}: ${where.join("; ")}`);
	}
};
