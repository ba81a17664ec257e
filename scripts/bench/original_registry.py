"""The original controller's registry (llamacontroller's process_registry.py, from the design in
/work/shared/original-design.md), reduced to what the bench compares and driven over stdin.

The methods below do what the original does, call for call: `save` writes the JSON with indent=2
to a temp file and renames it over the registry, with no fsync; `verify_process` asks psutil for
the PID (`psutil.Process`, which is psutil's pid_exists plus a read of its stat line), whether it
is running and its name; `find_orphaned_processes` walks `psutil.process_iter` for pid, name and
cmdline. Logging is left out (the original logs at info level around these calls).

Protocol: one command per line on stdin, one JSON line back with the time in ms measured here
(perf_counter), so the pipe is not counted:
  load <registry file>     read the registry as the original's load() does
  verify                   verify_all_processes()
  orphans                  find_orphaned_processes()
  register <slot> <pid>    register_process() into the loaded registry, then save()
  unregister <slot>        unregister_process(), then save()
  quit
"""

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, List

import psutil


@dataclass
class ProcessRegistryEntry:
    pid: int
    model_id: str
    model_name: str
    model_path: str
    gpu_id: str
    port: int
    started_at: datetime
    command_line: List[str]
    status: str = "unknown"

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "model_id": self.model_id,
            "model_name": self.model_name,
            "model_path": self.model_path,
            "gpu_id": self.gpu_id,
            "port": self.port,
            "started_at": self.started_at.isoformat(),
            "command_line": self.command_line,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ProcessRegistryEntry":
        return cls(
            pid=data["pid"],
            model_id=data["model_id"],
            model_name=data["model_name"],
            model_path=data["model_path"],
            gpu_id=data["gpu_id"],
            port=data["port"],
            # The original writes naive local times; corral writes "Z", which 3.11 also parses.
            started_at=datetime.fromisoformat(data["started_at"].replace("Z", "+00:00")),
            command_line=data["command_line"],
            status=data.get("status", "unknown"),
        )


class ProcessRegistry:
    def __init__(self, registry_file: Path):
        self.registry_file = registry_file
        self.registry_file.parent.mkdir(parents=True, exist_ok=True)
        self.processes: Dict[str, ProcessRegistryEntry] = {}

    def load(self) -> None:
        if not self.registry_file.exists():
            return
        with open(self.registry_file, "r") as f:
            data = json.load(f)
        self.processes = {}
        for gpu_id, entry_data in data.get("processes", {}).items():
            try:
                self.processes[gpu_id] = ProcessRegistryEntry.from_dict(entry_data)
            except Exception:
                pass

    def save(self) -> None:
        data = {
            "version": "1.0",
            "last_updated": datetime.now().isoformat(),
            "processes": {gpu_id: entry.to_dict() for gpu_id, entry in self.processes.items()},
        }
        temp_file = self.registry_file.with_suffix(".tmp")
        with open(temp_file, "w") as f:
            json.dump(data, f, indent=2)
        temp_file.replace(self.registry_file)

    def register_process(self, gpu_id, pid, model_id, model_name, model_path, port, command_line) -> None:
        entry = ProcessRegistryEntry(
            pid=pid,
            model_id=model_id,
            model_name=model_name,
            model_path=model_path,
            gpu_id=gpu_id,
            port=port,
            started_at=datetime.now(),
            command_line=command_line,
            status="running",
        )
        self.processes[gpu_id] = entry
        self.save()

    def unregister_process(self, gpu_id: str) -> None:
        if gpu_id in self.processes:
            self.processes.pop(gpu_id)
            self.save()

    def verify_process(self, gpu_id: str) -> bool:
        entry = self.processes.get(gpu_id)
        if not entry:
            return False
        try:
            process = psutil.Process(entry.pid)
            if not process.is_running():
                entry.status = "stopped"
                self.save()
                return False
            process_name = process.name().lower()
            if "llama" not in process_name and "server" not in process_name:
                entry.status = "unknown"
                self.save()
                return False
            entry.status = "running"
            return True
        except psutil.NoSuchProcess:
            entry.status = "stopped"
            self.save()
            return False
        except Exception:
            entry.status = "unknown"
            self.save()
            return False

    def verify_all_processes(self) -> Dict[str, bool]:
        results = {}
        for gpu_id in list(self.processes.keys()):
            results[gpu_id] = self.verify_process(gpu_id)
        return results

    def find_orphaned_processes(self, executable_name: str = "llama-server") -> List[int]:
        registered_pids = {entry.pid for entry in self.processes.values()}
        orphaned_pids = []
        for process in psutil.process_iter(["pid", "name", "cmdline"]):
            try:
                process_name = process.info["name"].lower()
                if executable_name.lower() in process_name:
                    pid = process.info["pid"]
                    if pid not in registered_pids:
                        orphaned_pids.append(pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return orphaned_pids


def main() -> None:
    registry = None
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        command, args = parts[0], parts[1:]
        if command == "quit":
            break
        started = time.perf_counter()
        result = None
        if command == "load":
            registry = ProcessRegistry(Path(args[0]))
            registry.load()
            result = len(registry.processes)
        elif command == "verify":
            result = sum(1 for ok in registry.verify_all_processes().values() if ok)
        elif command == "orphans":
            result = len(registry.find_orphaned_processes())
        elif command == "register":
            slot, pid = args[0], int(args[1])
            registry.register_process(slot, pid, f"bench-{slot}", f"Bench model {slot}", f"/models/bench-{slot}.gguf",
                                      20000 + int(slot), ["llama-server", "-m", f"/models/bench-{slot}.gguf"])
            result = len(registry.processes)
        elif command == "unregister":
            registry.unregister_process(args[0])
            result = len(registry.processes)
        ms = (time.perf_counter() - started) * 1000
        sys.stdout.write(json.dumps({"ms": ms, "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
