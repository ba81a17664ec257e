// Placement through the API: model facts in GET /api/v1/models, a load refused with the numbers
// (503, LOAD_FAILED), `force: true` loading anyway, and a load that says it checked nothing.
import { afterEach, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { queryGpus } from "@corral/core";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { req, type TestHome, testHome } from "./helpers.ts";

const llama = llamaBuildPaths();
if (!llama.chatReady) console.log("API placement tests skipped: no tiny-chat.gguf: run `bun run llama:build`");
const FAKE_DIR = join(import.meta.dir, "..", "..", "core", "test", "fixtures", "nvidia-smi");
const foreignGpu0 = () =>
  queryGpus({
    env: {
      PATH: `${FAKE_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      FAKE_NVIDIA_SMI_DIR: join(FAKE_DIR, "recorded", "foreign-gpu0"),
    },
  });

const homes: TestHome[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) h.cleanup();
});

async function home(gpuQuery?: TestHome["controller"]["gpuQuery"]) {
  // Real GGUF headers for two of the models; the third's file (this test) is not a GGUF at all.
  const models = [
    { id: "tiny", path: llama.chatModel, gpu: "0" },
    { id: "big", path: llama.chatModel, gpu: "0", args: ["-c", "8388608"] },
    { id: "standin", path: import.meta.path, gpu: "0" },
  ];
  const t = await testHome([], { gpuQuery, config: { models } });
  homes.push(t);
  return t;
}

describe.skipIf(!llama.chatReady)("placement in the API", () => {
  it("fills parameter_count and quantization from the GGUF header, empty where the file is not one", async () => {
    const t = await home();
    const res = await t.app().handle(req("GET", "/api/v1/models"));
    const { models } = (await res.json()) as {
      models: Array<{ id: string; parameter_count: string; quantization: string }>;
    };
    expect(models.map((m) => [m.id, m.parameter_count, m.quantization])).toEqual([
      ["tiny", "4.2M", "F32"],
      ["big", "4.2M", "F32"],
      ["standin", "", ""],
    ]);
  });

  it("refuses a load that does not fit with the numbers, and force: true loads it anyway", async () => {
    const t = await home(foreignGpu0);
    const app = t.app();
    const refused = await app.handle(req("POST", "/api/v1/models/load", { model_id: "big" }));
    expect(refused.status).toBe(503);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("LOAD_FAILED");
    expect(body.error.message).toMatch(
      /big needs about \d+\.\d GiB on GPU 0 \(weights 0\.0, KV 4\.0 at ctx 8388608, compute 8\.0\); 9\.2 GiB free: 14\.3 GiB held by pid 4242 \(not corral's\) \(force loads anyway\)/,
    );
    const forced = await app.handle(req("POST", "/api/v1/models/load", { model_id: "big", force: true }));
    expect(forced.status).toBe(200);
    const loaded = (await forced.json()) as { placement?: { forced?: boolean; checked: boolean } };
    expect(loaded.placement).toMatchObject({ checked: true, forced: true });
  });

  it("says in the load's answer that it checked nothing without GPU figures", async () => {
    const t = await home();
    const res = await t.app().handle(req("POST", "/api/v1/models/load", { model_id: "tiny" }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { message: string; placement?: { checked: boolean } };
    expect(body.placement?.checked).toBe(false);
    expect(body.message).toEndWith("; placement: no GPU figures (nvidia-smi): no placement check");
  });

  it("takes gpu_id auto and loads where nobody else holds the GPU", async () => {
    const t = await home(foreignGpu0);
    const res = await t.app().handle(req("POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: "auto" }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { slot: string; placement?: { checked: boolean; fits?: boolean } };
    expect(body.slot).toBe("1");
    expect(body.placement).toMatchObject({ checked: true, fits: true });
  });
});
