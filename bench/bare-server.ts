/**
 * The ceiling for the catalogue benchmark: a bare node:http server that answers the very same
 * bytes the shop answered, from memory. Run as its own process, like the shop.
 *   node dist/bench/bare-server.js <port> <routes.json>   (routes.json: { "/api/products/x": "<body>" })
 */
import { readFileSync } from "node:fs";
import http from "node:http";

const [portArg, routesFile] = process.argv.slice(2);
const routes = new Map<string, Buffer>(
	Object.entries(JSON.parse(readFileSync(routesFile, "utf8")) as Record<string, string>).map(([url, body]) => [url, Buffer.from(body)])
);

http
	.createServer((req, res) => {
		const body = routes.get(req.url ?? "");
		if (!body) {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", "Content-Length": body.length });
		res.end(body);
	})
	.listen(Number(portArg), "127.0.0.1", () => process.stdout.write("ready\n"));
