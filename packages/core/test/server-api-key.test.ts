/**
 * server_api_key: auto against the real llama-server (`bun run llama:build`; skipped without it):
 * the key goes in LLAMA_API_KEY, never the command line; a direct request without it gets 401 from
 * llama-server itself; /health stays public; corral's /props and the gateway's forward (which drops
 * the client's Authorization and sends the server's key) succeed.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { newSecret } from "../src/auth/tokens.ts";
import { parseConfig } from "../src/config/load.ts";
import { forward } from "../src/gateway/proxy.ts";
import type { Lease } from "../src/gateway/types.ts";
import { fetchProps } from "../src/server/health.ts";
import { spawnServer } from "../src/server/spawn.ts";
import { type ProcessEntry, publicEntry } from "../src/store/schema.ts";
import { freePort, waitFor } from "./fixtures/index.ts";

const paths = llamaBuildPaths();
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) process.kill(pid, "SIGKILL");
});

describe("server_api_key", () => {
  it("is read from the configuration and stripped from what the API shows", () => {
    expect(parseConfig({}).server_api_key).toBe("none");
    expect(parseConfig({ server_api_key: "auto" }).server_api_key).toBe("auto");
    expect(() => parseConfig({ server_api_key: "yes" })).toThrow(/server_api_key/);
    const entry = { pid: 1, port: 1, api_key: "k" } as ProcessEntry;
    expect(JSON.stringify(publicEntry(entry))).not.toContain("api_key");
    expect(entry.api_key).toBe("k");
  });

  it.skipIf(!paths.ready || !paths.chatReady)(
    "llama-server refuses direct requests; corral's requests pass",
    async () => {
      const key = newSecret();
      const port = await freePort();
      const model = parseConfig({
        models: [{ id: "tiny", path: paths.chatModel, args: ["--chat-template", "chatml"] }],
      }).models[0]!;
      const spawned = spawnServer({
        model,
        slot: "0",
        executable: paths.server,
        host: "127.0.0.1",
        port,
        logsDir: mkdtempSync(join(tmpdir(), "corral-key-")),
        homeId: "test",
        env: { ...process.env, GGML_NO_BACKTRACE: "1" },
        apiKey: key,
      });
      pids.push(spawned.pid);
      expect(spawned.argv.join(" ")).not.toContain(key);
      expect(readFileSync(`/proc/${spawned.pid}/cmdline`, "utf8")).not.toContain(key);
      const url = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${url}/health`)).status === 200, 60_000, "llama-server ready");
      expect((await fetch(`${url}/props`)).status).toBe(401);
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${url}/slots`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await fetchProps({ host: "127.0.0.1", port, apiKey: key }))?.model_path).toBe(paths.chatModel);
      const lease = { entry: { api_key: key } as ProcessEntry, baseUrl: url, done: () => {} } as unknown as Lease;
      const response = await forward(lease, {
        method: "POST",
        path: "/v1/chat/completions",
        headers: { authorization: "Bearer a-client-token", "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2, temperature: 0 }),
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { choices: unknown[] }).choices.length).toBe(1);
    },
    90_000,
  );
});
