// Prints what a fresh process reads from a registry, as JSON.
// usage: bun store-reader.ts <file>
import { createStore } from "../../src/store/store.ts";

const file = process.argv[2];
if (!file) throw new Error("usage: store-reader.ts <file>");
console.log(JSON.stringify(await createStore({ file }).read()));
