// ESLint 9 flat config: typescript-eslint's recommended rules, a few cheap type-aware ones (promises
// that are forgotten, awaited for nothing or passed where a callback's result is ignored), and
// eslint-config-prettier last so that no rule argues with Prettier (.prettierrc) about layout.
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import tseslint from "typescript-eslint";

export default tseslint.config(
	{ ignores: ["dist/", "node_modules/", "coverage/", "data/", "bench/results/"] },
	js.configs.recommended,
	tseslint.configs.recommended,
	{
		files: ["**/*.ts", "**/*.tsx"],
		languageOptions: {
			parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
		},
		rules: {
			"@typescript-eslint/no-floating-promises": "error",
			"@typescript-eslint/await-thenable": "error",
			"@typescript-eslint/no-misused-promises": "error",
			"@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }]
		}
	},
	{
		// JSON answers are typed `any` on purpose in the tests' HTTP client (each test checks what it reads).
		files: ["test/**/*.ts", "bench/**/*.ts"],
		rules: { "@typescript-eslint/no-explicit-any": "off" }
	},
	{
		// The browser side (web/, its own tsconfig): browser globals, no Node ones.
		files: ["web/**/*.ts", "web/**/*.tsx", "web/**/*.mjs"],
		languageOptions: {
			globals: {
				window: "readonly",
				document: "readonly",
				location: "readonly",
				history: "readonly",
				localStorage: "readonly",
				sessionStorage: "readonly",
				crypto: "readonly",
				fetch: "readonly",
				URL: "readonly",
				URLSearchParams: "readonly",
				AbortController: "readonly",
				DOMException: "readonly",
				Intl: "readonly"
			}
		}
	},
	{
		// CommonJS config files (jest.config.js); the `globals` package is not a dependency of ours.
		files: ["**/*.js", "**/*.cjs"],
		languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly", __dirname: "readonly", process: "readonly" } },
		rules: { "@typescript-eslint/no-require-imports": "off" }
	},
	prettier
);
