/**
 * A real terminal for the REPL tests: a tmux session (Debian package `tmux`) on its own server
 * socket, running a command in a pseudo-terminal, typed into with `send-keys` and read with
 * `capture-pane`, as an operator would use `npm run repl`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT } from "../../scripts/paths";

export interface Terminal {
	/** Everything on the screen and in its history, lines joined as they were printed (-J). */
	screen(): string;
	/** Types a line and Enter. */
	type(line: string): void;
	/** Waits until the screen's text matches; fails after `timeoutMs` with the screen. */
	waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
	/**
	 * Types a command at the REPL's prompt and waits until its output matches `until`; answers the
	 * output after the command's line.
	 */
	run(line: string, until: RegExp, timeoutMs?: number): Promise<string>;
	stop(): void;
}

let sessions = 0;

function tmux(socket: string, args: string[], env?: NodeJS.ProcessEnv): string {
	const res = spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8", env });
	if (res.error) throw new Error(`tmux could not run (${res.error.message}); run: apt-get install -y tmux`);
	if (res.status !== 0) throw new Error(`tmux ${args[0]} failed: ${res.stderr}`);
	return res.stdout;
}

/** Starts `command` (an argv, run in `cwd` with `env`) in a fresh terminal of 250 columns. */
export function startTerminal(command: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Terminal {
	const socket = `shop-test-${process.pid}-${sessions++}`;
	const quoted = command.map(arg => `'${arg.replace(/'/g, "'\\''")}'`).join(" ");
	// The server inherits `env` (a new server per terminal); a long history so that nothing scrolls away.
	tmux(
		socket,
		[
			"-f",
			"/dev/null",
			"start-server",
			";",
			"set-option",
			"-g",
			"history-limit",
			"100000",
			";",
			"new-session",
			"-d",
			"-x",
			"250",
			"-y",
			"50",
			"-c",
			options.cwd,
			quoted
		],
		options.env
	);
	const screen = () => tmux(socket, ["capture-pane", "-p", "-J", "-S", "-", "-t", "0"]);
	const waitFor = async (pattern: RegExp, timeoutMs = 15_000) => {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const text = screen();
			if (pattern.test(text)) return text;
			if (Date.now() > deadline) throw new Error(`the terminal did not show ${pattern} within ${timeoutMs} ms; it shows:\n${text}`);
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	};
	const type = (line: string) => void tmux(socket, ["send-keys", "-t", "0", "-l", line, ";", "send-keys", "-t", "0", "Enter"]);
	return {
		screen,
		type,
		waitFor,
		async run(line, until, timeoutMs) {
			// The pane's empty lines below the prompt are captured too: measure up to the prompt.
			const start = screen().trimEnd().length;
			type(line);
			const after = (text: string) => {
				const typed = text.indexOf(line, Math.max(0, start - 8));
				return typed < 0 ? "" : text.slice(typed + line.length);
			};
			const deadline = Date.now() + (timeoutMs ?? 15_000);
			for (;;) {
				const output = after(screen());
				if (until.test(output)) return output;
				if (Date.now() > deadline) throw new Error(`"${line}" did not print ${until} within ${timeoutMs ?? 15_000} ms; after it:\n${output}`);
				await new Promise(resolve => setTimeout(resolve, 100));
			}
		},
		stop() {
			try {
				tmux(socket, ["kill-server"]);
			} catch {
				// already gone
			}
		}
	};
}

/**
 * `npm run repl` in a fresh terminal, in the shop's folder, with `env` on top of this process's and
 * NODE_ENV=test, and a throwaway $HOME (the REPL keeps its history there; `stop()` removes it).
 * Resolves once the REPL shows its prompt.
 */
export async function startRepl(env: NodeJS.ProcessEnv): Promise<Terminal> {
	const home = mkdtempSync(path.join(tmpdir(), "shop-repl-home-"));
	const terminal = startTerminal(["npm", "run", "repl"], { cwd: ROOT, env: { ...process.env, HOME: home, NODE_ENV: "test", ...env } });
	const repl: Terminal = {
		...terminal,
		stop() {
			terminal.stop();
			rmSync(home, { recursive: true, force: true });
		}
	};
	try {
		await repl.waitFor(/mol \$/, 30_000);
	} catch (err) {
		repl.stop();
		throw err;
	}
	return repl;
}
