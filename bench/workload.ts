/**
 * The benchmark's workload: which product a read asks for. Popularity in a real catalogue is
 * skewed (a few products get most reads), so ids are drawn from a Zipf law over the seeded
 * products, with a fixed seed so every side and every round replays the same sequence.
 */
import { seededRandom } from "../lib/prng";

/** A draw of ranks 0..n-1 with P(k) ∝ 1/(k+1)^s (s ≈ 1 for catalogue popularity), from `seed`. */
export function zipfSampler(n: number, s: number, seed: number): () => number {
	const cumulative = new Float64Array(n);
	let sum = 0;
	for (let k = 0; k < n; k++) cumulative[k] = sum += 1 / Math.pow(k + 1, s);
	const next = seededRandom(seed);
	return () => {
		const target = next() * sum;
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
