// A controller in its own process that loads a model and then stays up until it is killed, so a
// test can SIGKILL a controller that holds a running server: `bun hold-controller.ts <home> <config> <model> <gpu>`.
// Prints "spawned <pid>" as soon as the server exists and "loaded <pid>" once it answers /health.
import { createController } from "../../src/lifecycle/controller.ts";

const [home, configFile, modelId, gpu] = process.argv.slice(2);
const controller = await createController({
  home,
  configFile,
  gpuQuery: async () => undefined,
  hooks: { afterSpawn: (pid) => console.log(`spawned ${pid}`) },
});
const { entry } = await controller.load(modelId!, { gpu: gpu! });
console.log(`loaded ${entry.pid}`);
// Stay alive: the test decides how this controller ends.
setInterval(() => undefined, 60_000);
