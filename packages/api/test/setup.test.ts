import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { scopeRefusal } from "@corral/core";
import { makeFirstRunHome } from "../../core/test/fixtures/first-run-home.ts";
import { call, type TestHome, testHome } from "./helpers.ts";

const fake = makeFirstRunHome();
const homes: TestHome[] = [];
const realHome = process.env.HOME;
// The well-known places (~/models, the Hugging Face cache, LM Studio, Ollama) are the fake home's.
process.env.HOME = fake.home;
afterAll(() => {
  process.env.HOME = realHome;
  for (const t of homes) t.cleanup();
});

describe("the first-run setup routes", () => {
  it("scan a folder and the usual places, add the chosen model to the configuration, and load it without a restart", async () => {
    const t = await testHome([]);
    homes.push(t);
    const app = t.app();
    const scan = await call(app, "GET", `/api/v1/setup/scan?folder=${encodeURIComponent(fake.extra)}`);
    expect(scan.status).toBe(200);
    expect(scan.body.config_file).toBe(t.configFile);
    expect(scan.body.init_command).toBe("corral init");
    expect(scan.body.models.map((m: { id: string }) => m.id).sort()).toEqual(fake.expected.map((e) => e.id).sort());
    const extra = scan.body.models.find((m: { id: string }) => m.id === "extra-model");
    expect(extra).toMatchObject({ source: "folder", architecture: "llama", quantization: "F32", context_length: 512 });

    const added = await call(app, "POST", "/api/v1/setup/models", { paths: [extra.path], folder: fake.extra });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ ids: ["extra-model"], created: false, file: t.configFile });
    expect(JSON.parse(readFileSync(t.configFile, "utf8")).models).toEqual([{ id: "extra-model", path: extra.path }]);
    const models = await call(app, "GET", "/api/v1/models");
    expect(models.body.models.map((m: { id: string }) => m.id)).toEqual(["extra-model"]);
    const loaded = await call(app, "POST", "/api/v1/models/load", { model_id: "extra-model", gpu_id: 0 });
    expect(loaded.status).toBe(200);
    expect(loaded.body.status).toMatchObject({ status: "running", model_id: "extra-model" });
  }, 30_000);

  it("refuse a file the scan does not find, and callers without a token", async () => {
    const t = await testHome([]);
    homes.push(t);
    const app = t.app();
    const refused = await call(app, "POST", "/api/v1/setup/models", { paths: ["/etc/passwd"] });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain("not found by the scan");
    expect(readFileSync(t.configFile, "utf8")).not.toContain("passwd");
    const anonymous = await app.handle(new Request("http://localhost/api/v1/setup/scan"));
    expect(anonymous.status).toBe(401);
  });

  it("are for admin tokens only", () => {
    expect(scopeRefusal("control", "POST", "/api/v1/setup/models")).toContain("admin");
    expect(scopeRefusal("read", "GET", "/api/v1/setup/scan")).toContain("admin");
    expect(scopeRefusal("admin", "POST", "/api/v1/setup/models")).toBeUndefined();
  });
});
