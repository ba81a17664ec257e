import { reattached } from "@corral/core";
import { booleanFlag, integerFlag, stringFlag } from "../args.ts";
import type { Command } from "../context.ts";

/**
 * `corral serve [--host H] [--port N]`: the REST API and web page, until Ctrl-C or SIGTERM.
 * This is where the two are composed: @corral/api does not depend on the page, it mounts the
 * routes it is given. Elysia and the page are imported only here, so no other command pays for them.
 * @example
 * corral serve --port 7070
 */
export const command: Command = {
  name: "serve",
  args: [],
  options: {
    host: { type: "string", value: "HOST", description: "address to listen on [default: server.host, 127.0.0.1]" },
    port: {
      type: "string",
      value: "N",
      description: "port to listen on, 0 for any free one [default: server.port, 7070]",
    },
    "no-auth": {
      type: "boolean",
      description: "no token at all (loopback only): any local user and program can drive corral",
    },
  },
  examples: ["corral serve", "corral serve --port 8000", "CORRAL_TOKEN=secret corral serve --host 0.0.0.0"],
  async run(ctx, input) {
    const port = integerFlag(input, "port", { min: 0, max: 65535 }, "serve");
    const host = stringFlag(input, "host");
    const [{ serve }, { pageRoutes }] = await Promise.all([import("@corral/api"), import("@corral/web")]);
    // Signals are ours, not serve()'s: from the menu, Ctrl-C must stop the server and come back.
    const signal = waitForSignal();
    try {
      const server = await serve({
        home: ctx.home,
        configFile: ctx.configFile,
        host,
        port,
        handleSignals: false,
        // Bundled once, with the page's security headers (CSP, no framing, no Referer).
        page: await pageRoutes(),
        ...(booleanFlag(input, "no-auth") ? { auth: "none" as const } : {}),
      });
      const url = server.url.toString();
      const n = reattached(server.recovered);
      // The page's link carries the server's own token in its fragment: open it to sign the page in.
      const line =
        `corral is serving on ${url}${n ? ` (reattached ${n} slot${n === 1 ? "" : "s"})` : ""}\n` +
        `open the page: ${server.pageUrl}`;
      if (ctx.interactive) (await ctx.ui()).log.info(`${line}; Ctrl-C stops it`);
      else await ctx.print(`${line}\n`);
      await signal.received;
      await server.stop();
      return { data: { url }, lines: [], summary: "stopped serving; the llama-servers keep running" };
    } finally {
      signal.dispose();
    }
  },
};

/** Resolves on the first SIGINT or SIGTERM: stopping the server is the normal end, not a failure. */
function waitForSignal(): { received: Promise<void>; dispose(): void } {
  let done = () => {};
  const received = new Promise<void>((resolve) => {
    done = () => resolve();
  });
  process.on("SIGINT", done);
  process.on("SIGTERM", done);
  return {
    received,
    dispose() {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
    },
  };
}
