// A controller in its own process, for crash tests: `bun controller-proc.ts <home> <config> load <model> <gpu> [after-spawn]`
// or `… unload <slot> <timeoutMs>`. It prints "ready" before acting and "done" when finished.
import { createController } from "../../src/lifecycle/controller.ts";

const [home, configFile, action, a, b, crash] = process.argv.slice(2);
const controller = await createController({
  home,
  configFile,
  gpuQuery: async () => undefined,
  hooks: {
    afterSpawn: (pid) => {
      console.log(`spawned ${pid}`);
      if (crash === "after-spawn") process.kill(process.pid, "SIGKILL");
    },
  },
});
console.log("ready");
if (action === "load") await controller.load(a!, { gpu: b! });
else if (action === "unload") await controller.unload(a!, { timeoutMs: Number(b) });
console.log("done");
