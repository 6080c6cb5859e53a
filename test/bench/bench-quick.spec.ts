/**
 * The benchmark's smoke run (`npm run bench -- --quick`): it must work on a clean checkout and the
 * books must balance after its load. Its speed figures are printed, never asserted here.
 */
import { spawn } from "node:child_process";
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
	const books = stdout.slice(stdout.indexOf("Books after the load:"));
	expect(books.match(/balanced/g)).toHaveLength(3);
	expect(books).not.toMatch(/PROBLEMS/);
	expect(stdout).toMatch(/JSON: bench\/results\/bench-quick-.*\.json/);
	console.log(stdout.slice(stdout.indexOf("Shop benchmark")));
});
