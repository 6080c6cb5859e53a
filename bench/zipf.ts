/** A Zipf sampler for the catalogue benchmarks: item ranks with a skewed popularity, replayable. */
import { seededRandom } from "../lib/prng";

/**
 * Draws indexes 0..n-1 with P(i) ∝ 1 / (i + 1)^s (index 0 the most popular), from a mulberry32 PRNG
 * seeded with `seed`: the same sequence for the same arguments. At s = 1 over 1,000 items, index 0 is
 * drawn ~13% of the time and the least popular ~0.013%.
 */
export function zipfSampler(n: number, s: number, seed: number): () => number {
	if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipfSampler: n must be a positive integer, got ${n}`);
	const cumulative = new Float64Array(n);
	let total = 0;
	for (let i = 0; i < n; i++) cumulative[i] = total += 1 / Math.pow(i + 1, s);
	const next = seededRandom(seed);
	return () => {
		const target = next() * total;
		let low = 0;
		let high = n - 1;
		while (low < high) {
			const mid = (low + high) >>> 1;
			if (cumulative[mid] < target) low = mid + 1;
			else high = mid;
		}
		return low;
	};
}
