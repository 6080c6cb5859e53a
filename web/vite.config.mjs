// The browser side: one Vite build, two pages (the storefront at / and the back office at /admin),
// written by `npm run build` / `prepare` into dist/web, which the gateway serves (services/api/web.mixin.ts).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
	root: here,
	base: "/",
	// Preact's automatic JSX runtime, compiled by Vite's own transformer (no Babel).
	oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
	build: {
		outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
		emptyOutDir: true,
		target: "es2022",
		// Every built file but the HTML pages is named by its content hash: the gateway serves them immutable.
		assetsDir: "assets",
		reportCompressedSize: true,
		rolldownOptions: {
			input: {
				storefront: fileURLToPath(new URL("index.html", import.meta.url)),
				admin: fileURLToPath(new URL("admin/index.html", import.meta.url))
			}
		}
	},
	logLevel: "warn"
});
