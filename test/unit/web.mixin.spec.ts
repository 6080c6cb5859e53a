/** Which page the gateway serves for a browser's path (services/api/web.mixin.ts). */
import { spaFallback } from "../../services/api/web.mixin";

describe("spaFallback", () => {
	it("serves each app's page for its own routes, query kept", () => {
		expect(spaFallback("/cart")).toBe("/index.html");
		expect(spaFallback("/orders/3f2a?placed=1")).toBe("/index.html?placed=1");
		expect(spaFallback("/products/abc")).toBe("/index.html");
		expect(spaFallback("/admin")).toBe("/admin/index.html");
		expect(spaFallback("/admin/orders/3f2a")).toBe("/admin/index.html");
		expect(spaFallback("/admin/cluster?x=1")).toBe("/admin/index.html?x=1");
	});

	it("leaves files and unknown paths alone (a plain 404 when there is no such file)", () => {
		expect(spaFallback("/")).toBeNull();
		expect(spaFallback("/assets/storefront-abc.js")).toBeNull();
		expect(spaFallback("/admin/index.html")).toBeNull();
		expect(spaFallback("/nope")).toBeNull();
		expect(spaFallback("/orders/a/b")).toBeNull();
		expect(spaFallback("/administrator")).toBeNull();
	});
});
