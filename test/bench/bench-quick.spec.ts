/**
 * The benchmark's smoke run (`npm run bench -- --quick`): it must work on a clean checkout and the
 * books must balance after its load. Its speed figures are printed, never asserted here.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../support/shop";

jest.setTimeout(300_000);

it("runs the quick benchmark end to end, and the books balance in every shop", async () => {
	const child = spawn(process.execPath, [path.join(ROOT, "dist/bench/bench.js"), "--quick"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
	let stdout = "";
	let stderr = "";
	child.stdout.on("data", chunk => (stdout += chunk));
	child.stderr.on("data", chunk => (stderr += chunk));
	const code = await new Promise<number | null>(resolve => child.once("exit", resolve));
	if (code !== 0) console.error(stdout, stderr.slice(-4000));
	expect(code).toBe(0);
	const file = /JSON: (bench\/results\/bench-quick-.*\.json)/.exec(stdout)?.[1];
	expect(file).toBeDefined();
	const report = JSON.parse(readFileSync(path.join(ROOT, file!), "utf8")) as {
		books: Record<string, { orders: number; problems: string[] }>;
		targets: Array<{ figure: string; measured: string; target: string }>;
	};
	expect(Object.keys(report.books)).toEqual(["single", "cluster", "single, no metrics"]);
	for (const books of Object.values(report.books)) {
		expect(books.orders).toBeGreaterThan(0);
		expect(books.problems).toEqual([]);
	}
	// Every figure of issue 10's table is reported, with its target.
	expect(report.targets.filter(target => target.target !== "").map(target => target.figure)).toEqual([
		"GET /api/products/:id, one process ÷ bare node:http",
		"GET product, NATS ÷ one process",
		"POST /api/orders, one process",
		"orders, NATS ÷ one process",
		"broker.call, the project's broker ÷ Moleculer's default",
		"RSS of the NATS gateway across the run",
		"books audit after the run"
	]);
	console.log(stdout.slice(stdout.indexOf("Shop benchmark")));
});
