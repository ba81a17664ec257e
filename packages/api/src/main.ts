#!/usr/bin/env bun
/**
 * Runs the corral API from the command line, without the page: the api's tests and the torture
 * scripts start it as a subprocess. Users run `corral serve`, which calls the same serve() and
 * hands it the page (@corral/api does not depend on @corral/web).
 *
 *   bun packages/api/src/main.ts [--home DIR] [--config FILE] [--host ADDR] [--port N]
 *
 * The token comes from CORRAL_TOKEN or corral.yaml, never from argv, where `ps` would show it.
 */
import { parseArgs } from "node:util";
import { serve } from "./serve.ts";

function args() {
  try {
    return parseArgs({
      options: {
        home: { type: "string" },
        config: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: main.ts [--home DIR] [--config FILE] [--host ADDR] [--port N]`);
    process.exit(2);
  }
}

const values = args();

const port = values.port === undefined ? undefined : Number(values.port);
if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
  console.error(`--port: "${values.port}" is not a port number (0 to 65535)`);
  process.exit(2);
}

try {
  await serve({ home: values.home, configFile: values.config, host: values.host, port });
} catch (error) {
  console.error(`corral: ${(error as Error).message}`);
  process.exit(1);
}
