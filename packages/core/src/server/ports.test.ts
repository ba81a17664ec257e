import { afterEach, describe, expect, it } from "bun:test";
import { readlinkSync } from "node:fs";
import { basename } from "node:path";
import { PortInUseError } from "../errors.ts";
import { assertPortFree, isPortFree, NoFreePortError, pickFreePort, portHolder, waitPortFree } from "./ports.ts";

const onLinux = process.platform === "linux";
function ownExecutableName(): string {
  return onLinux ? basename(readlinkSync("/proc/self/exe")) : "";
}

type Listener = Bun.TCPSocketListener<undefined>;
const open: Listener[] = [];
afterEach(() => {
  for (const listener of open.splice(0)) listener.stop(true);
});

function listen(hostname = "127.0.0.1", port = 0): Listener {
  const listener = Bun.listen({ hostname, port, socket: { data() {} } });
  open.push(listener);
  return listener;
}

function close(listener: Listener): void {
  listener.stop(true);
  open.splice(open.indexOf(listener), 1);
}

// portHolder names the executable, as /proc/<pid>/exe gives it.
const ownName = ownExecutableName();
const hasIpv6Loopback = (() => {
  try {
    Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
})();

describe("isPortFree and portHolder", () => {
  it("sees a port held by a real listener as taken, held by this process", async () => {
    const { port } = listen();
    expect(await isPortFree(port)).toBe(false);
    if (onLinux) expect(await portHolder(port)).toEqual({ pid: process.pid, name: ownName });
  });

  it("sees a port as free once its listener closes", async () => {
    const listener = listen();
    const { port } = listener;
    close(listener);
    expect(await isPortFree(port)).toBe(true);
    expect(await portHolder(port)).toBeUndefined();
  });

  it.skipIf(!onLinux || !hasIpv6Loopback)("sees a port held on ::1 as taken when testing 127.0.0.1", async () => {
    const v6 = listen("::1");
    // Binding 127.0.0.1 alone would succeed here; the kernel's table says otherwise.
    expect(await isPortFree(v6.port, "127.0.0.1")).toBe(false);
    expect((await portHolder(v6.port))?.pid).toBe(process.pid);
  });

  it.skipIf(!onLinux)("names another process that holds the port", async () => {
    const child = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }); console.log(l.port); setInterval(() => {}, 1000)`,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    try {
      const reader = child.stdout.getReader();
      const { value } = await reader.read();
      const port = Number(new TextDecoder().decode(value).trim());
      expect(await portHolder(port)).toEqual({ pid: child.pid, name: ownName });
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
  });

  it("refuses a number that is not a port", async () => {
    await expect(isPortFree(0)).rejects.toThrow("not a port");
    await expect(portHolder(70000)).rejects.toThrow("not a port");
  });
});

describe("assertPortFree", () => {
  it("throws PortInUseError naming this process as the holder", async () => {
    const { port } = listen();
    const attempt = assertPortFree(port);
    await expect(attempt).rejects.toBeInstanceOf(PortInUseError);
    if (onLinux) await expect(attempt).rejects.toMatchObject({ port, pid: process.pid, holder: ownName });
  });

  it("passes on a free port", async () => {
    const listener = listen();
    close(listener);
    expect(await assertPortFree(listener.port)).toBeUndefined();
  });
});

describe("pickFreePort", () => {
  it("skips a held port and the excluded ones", async () => {
    const { port } = listen();
    const picked = await pickFreePort([port, port + 3], { exclude: new Set([port + 1]) });
    expect([port + 2, port + 3]).toContain(picked);
    // Another process may hold port + 2; then picking port + 3 is right.
    if (picked === port + 3) expect(await isPortFree(port + 2)).toBe(false);
  });

  it("throws a PortInUseError naming the range when every port is taken or excluded", async () => {
    const { port } = listen();
    const attempt = pickFreePort([port, port + 1], { exclude: new Set([port + 1]) });
    await expect(attempt).rejects.toBeInstanceOf(NoFreePortError);
    await expect(attempt).rejects.toBeInstanceOf(PortInUseError);
    await expect(attempt).rejects.toThrow(`no free port in ${port}-${port + 1} (1 reserved for other slots)`);
  });
});

describe("waitPortFree", () => {
  it("returns true once the holder closes the port", async () => {
    const listener = listen();
    setTimeout(() => close(listener), 100);
    expect(await waitPortFree(listener.port, { timeoutMs: 10_000 })).toBe(true);
  });

  it("returns false when the port is still held at the deadline", async () => {
    const { port } = listen();
    expect(await waitPortFree(port, { timeoutMs: 150 })).toBe(false);
  });
});
