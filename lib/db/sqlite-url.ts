/**
 * What a `sqlite:` database URL says, read without opening anything (lib/config.ts checks the URLs
 * at start with it, so a bad option is a configuration error; lib/db/sqlite.ts opens with it).
 *
 * `PRAGMA synchronous`: FULL (the default) syncs the WAL at every commit, so a commit a caller was
 * told about survives a power cut; NORMAL syncs only at checkpoints and may lose the last commits.
 */
export type Synchronous = "full" | "normal";
const SYNCHRONOUS: readonly Synchronous[] = ["full", "normal"];

/** What follows `sqlite:` in a database URL: `<file>` or `:memory:`, optionally `?synchronous=full|normal`. */
export function parseSqliteTarget(target: string): { file: string; synchronous: Synchronous } {
	const question = target.indexOf("?");
	const file = (question >= 0 ? target.slice(0, question) : target) || ":memory:";
	const options = new URLSearchParams(question >= 0 ? target.slice(question + 1) : "");
	let synchronous: Synchronous = "full";
	for (const [key, value] of options) {
		const known = SYNCHRONOUS.find(level => level === value.toLowerCase());
		if (key !== "synchronous" || !known) throw new Error(`Unknown SQLite URL option "${key}=${value}": only synchronous=full or synchronous=normal`);
		synchronous = known;
	}
	return { file, synchronous };
}
