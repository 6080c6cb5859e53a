/**
 * `chaos <action> [--errors p] [--timeouts p] [--latency 2s] [--node ids] [--for 30s] [--seed n]`,
 * `chaos off [action]`, and `chaos` alone: what every node does (lib/chaos.ts).
 */
import type { ServiceBroker } from "moleculer";
import { CHAOS_PARAMS, chaosOnEveryNode, chaosRule, describeRule, switchChaos, type ChaosRequest } from "../chaos";
import { shopConfig } from "../config";
import { age, explain, printTable, type ReplCommand } from "./common";

async function list(broker: ServiceBroker, helpers: Parameters<ReplCommand["action"]>[2]): Promise<void> {
	const nodes = await chaosOnEveryNode(broker);
	const rows = nodes.flatMap(node => {
		if ("error" in node) return [[node.nodeID, `no answer (${node.error})`, ""]];
		if (!node.allowed) return [[node.nodeID, "refuses chaos (CHAOS_ALLOWED=false)", ""]];
		if (node.rules.length === 0) return [[node.nodeID, "none", ""]];
		return node.rules.map(rule => [node.nodeID, describeRule(rule), age(Date.parse(rule.until) - Date.now())]);
	});
	printTable(helpers, ["node", "chaos", "ends in"], rows);
}

const number = (value: unknown) => (value === undefined ? undefined : Number(value));

export const chaosCommand: ReplCommand = {
	command: "chaos [action] [target]",
	description: "Inject faults into an action for a while; chaos off [action]; chaos alone: what each node does",
	options: [
		{ option: "--errors <p>", description: "probability (0..1) of an injected server error (503, counted by the circuit breaker)" },
		{ option: "--timeouts <p>", description: "probability (0..1) that a call is held longer than its caller waits" },
		{ option: "--latency <duration>", description: "delay added to every call, e.g. 200ms, 2s" },
		{ option: "--node <ids>", description: "only on these nodes (comma list); default every node" },
		{ option: "--for <duration>", description: "how long, then off by itself (default 30s, at most 60m)" },
		{ option: "--seed <n>", description: "seed of the draws (default 1): the same seed fails the same calls again" }
	],
	async action(broker, args, helpers) {
		const action = args.action as string | undefined;
		const options = args.options;
		try {
			if (action === undefined) return await list(broker, helpers);
			if (action === "off") {
				const target = args.target as string | undefined;
				await switchChaos(broker, { off: { action: target } });
				console.log(`Chaos off: ${target ?? "every rule"}`);
				return;
			}
			if (!shopConfig().chaosAllowed)
				return void console.log("chaos: refused, this shop does not allow chaos (NODE_ENV=production without CHAOS_ALLOWED=true)");
			const request: ChaosRequest = {
				action,
				node: options.node as string | undefined,
				errors: number(options.errors),
				timeouts: number(options.timeouts),
				latency: options.latency as string | undefined,
				for: options.for as string | undefined,
				seed: number(options.seed)
			};
			for (const key of Object.keys(request) as Array<keyof ChaosRequest>) if (request[key] === undefined) delete request[key];
			// The admin action's own schema, checked by the broker's validator.
			const checked: unknown = await broker.validator!.compile(CHAOS_PARAMS)({ ...request });
			if (checked !== true) {
				const problems = checked as Array<{ field?: string; message?: string }>;
				return void console.log(`chaos: ${problems.map(problem => problem.message ?? problem.field).join("; ")} (try chaos --help)`);
			}
			const rule = chaosRule(request);
			await switchChaos(broker, { on: rule });
			console.log(`Chaos on: ${describeRule(rule)}`);
			// The event is on its way to every node: show what each one does now.
			await new Promise(resolve => setTimeout(resolve, 300));
			await list(broker, helpers);
		} catch (err) {
			console.log(`chaos: ${explain(err)}`);
		}
	}
};
