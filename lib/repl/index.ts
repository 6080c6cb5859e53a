/**
 * The shop's commands in `npm run repl` (moleculer-repl's custom commands, declared in
 * moleculer.config.ts as `replOptions.customCommands`): listed by the REPL's `help`, each with `--help`.
 */
import type { ReplOptions } from "moleculer";
import { booksCommand } from "./books";
import { chaosCommand } from "./chaos";
import { clusterCommand } from "./cluster";
import type { ReplArgs, ReplCommand, ReplHelpers } from "./common";
import { ordersCommand } from "./orders";

const commands: ReplCommand[] = [ordersCommand, booksCommand, clusterCommand, chaosCommand];

/**
 * As broker options declare them. Moleculer's types give a command's action `args: string[]`;
 * moleculer-repl 0.8 passes `{ options, rawCommand, ...operands }` (src/index.js): typed here once.
 */
export const replCommands: NonNullable<ReplOptions["customCommands"]> = commands.map(command => ({
	...command,
	action: (broker, args, helpers) => command.action(broker, args as unknown as ReplArgs, helpers as ReplHelpers)
}));
