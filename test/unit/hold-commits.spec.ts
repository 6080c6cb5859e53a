/**
 * services/orders/hold-commits.ts: confirmed orders' stock holds are committed in batches after the
 * answer; while inventory fails, the batch is retried once a second however many orders come in.
 */
import type { Logger } from "moleculer";
import { HoldCommits } from "../../services/orders/hold-commits";

const quiet = { info: () => undefined, warn: () => undefined } as unknown as Logger;

describe("HoldCommits", () => {
	beforeEach(() => jest.useFakeTimers());
	afterEach(() => jest.useRealTimers());

	it("gathers the orders confirmed within 100 ms into one call", async () => {
		const sent: string[][] = [];
		const commits = new HoldCommits(async ids => void sent.push(ids), quiet);
		for (const id of ["o-1", "o-2", "o-3"]) commits.add(id);
		await jest.advanceTimersByTimeAsync(150);
		expect(sent).toEqual([["o-1", "o-2", "o-3"]]);
	});

	it("retries once a second while inventory fails, though orders keep coming, and sends them all once it answers", async () => {
		let failing = true;
		const calls: string[][] = [];
		// Each failing call takes 200 ms (a timeout would take longer): orders confirmed meanwhile must not bring the retry forward.
		const commits = new HoldCommits(async ids => {
			calls.push(ids);
			if (!failing) return;
			await new Promise(resolve => setTimeout(resolve, 200));
			throw new Error("inventory unreachable");
		}, quiet);
		// An order every 50 ms for 3 s.
		for (let i = 0; i < 60; i++) {
			commits.add(`o-${i}`);
			await jest.advanceTimersByTimeAsync(50);
		}
		expect(calls.length).toBeGreaterThanOrEqual(3);
		expect(calls.length).toBeLessThanOrEqual(4);
		failing = false;
		await jest.advanceTimersByTimeAsync(1_500);
		expect(calls.at(-1)!.length).toBe(60);
	});
});
