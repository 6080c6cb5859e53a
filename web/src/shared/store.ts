/** A value kept in localStorage and shared by every component that reads it (a hook re-renders them on change). */
import { useEffect, useState } from "preact/hooks";

export interface Stored<T> {
	get(): T;
	set(value: T): void;
	use(): T;
}

export function stored<T>(key: string, initial: T, valid: (value: unknown) => value is T): Stored<T> {
	const listeners = new Set<(value: T) => void>();
	let current = initial;
	try {
		const raw = localStorage.getItem(key);
		const parsed: unknown = raw == null ? null : JSON.parse(raw);
		if (parsed != null && valid(parsed)) current = parsed;
	} catch {
		// unreadable: start empty
	}
	// Another tab of the same shop changed it.
	window.addEventListener("storage", event => {
		if (event.key !== key) return;
		try {
			const parsed: unknown = event.newValue == null ? initial : JSON.parse(event.newValue);
			current = valid(parsed) ? parsed : initial;
		} catch {
			current = initial;
		}
		listeners.forEach(listener => listener(current));
	});
	return {
		get: () => current,
		set(value: T) {
			current = value;
			try {
				if (value == null) localStorage.removeItem(key);
				else localStorage.setItem(key, JSON.stringify(value));
			} catch {
				// storage full or disabled: kept for this page only
			}
			listeners.forEach(listener => listener(value));
		},
		use() {
			const [value, setValue] = useState(current);
			useEffect(() => {
				listeners.add(setValue);
				setValue(current);
				return () => void listeners.delete(setValue);
			}, []);
			return value;
		}
	};
}
