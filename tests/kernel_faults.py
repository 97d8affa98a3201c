"""Drives the "Rust (fogkit)" Jupyter kernel through an engine fault, as a notebook front end
would (jupyter_client, the library JupyterLab's server uses), and prints what it saw as one
JSON object for tests/notebooks.rs to check:

1. an in-process cell is interrupted (Jupyter's interrupt request), and what survives is
   checked;
2. `:engines 4` starts 4 MPI engines (their ranks, hosts and pids are printed);
3. a cell that runs for a minute is broken by killing rank 2's engine process (SIGKILL), and
   nothing of that job is left running;
4. `:engines restart`, an interrupted cell on the engines, `:engines restart` again, then a
   cell with a collective on all ranks;
5. the kernel is shut down, and every process that was under it is checked.

Usage: python kernel_faults.py   (the kernel must be installed: notebooks/kernel/install.sh)
"""
import json
import os
import queue
import re
import signal
import sys
import time

from jupyter_client.manager import start_new_kernel


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""


def run(kc, code, timeout=900, until=None):
    """Runs a cell; returns (status, text of its outputs and errors). `until(text)`, when
    given, is called as output arrives; the cell keeps running after it returns True."""
    msg_id = kc.execute(code)
    text, fired = "", until is None
    deadline = time.time() + timeout
    while True:
        if time.time() > deadline:
            raise TimeoutError(f"the cell did not finish in {timeout} s: {code!r}\n{text}")
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text += content["text"]
        elif kind in ("display_data", "execute_result"):
            text += content["data"].get("text/plain", "") + "\n"
        elif kind == "error":
            text += f"ERROR {content['ename']}: {content['evalue']}\n"
            text += "\n".join(content["traceback"]) + "\n"
        elif kind == "status" and content["execution_state"] == "idle":
            break
        if not fired and until(text):
            fired = True
    reply = kc.get_shell_msg(timeout=60)
    return reply["content"]["status"], text


def main():
    km, kc = start_new_kernel(kernel_name="fogkit", startup_timeout=900)
    kernel_pid = km.provisioner.process.pid
    seen = {}
    try:
        # Interrupting an in-process cell: its variables go, its items stay.
        seen["define"] = run(kc, "let kept = 41;\nfn item() -> i32 { 1 }")
        interrupted = {}

        def interrupt(text):
            if "sleeping" not in text:
                return False
            time.sleep(1)
            km.interrupt_kernel()
            interrupted["at"] = time.time()
            return True

        seen["interrupt"] = run(
            kc,
            'println!("sleeping");\nstd::thread::sleep(std::time::Duration::from_secs(120));',
            until=interrupt,
        )
        seen["interrupt_seconds"] = time.time() - interrupted.get("at", 0)
        seen["item_after_interrupt"] = run(kc, "item() + 1")
        seen["variable_after_interrupt"] = run(kc, "kept")

        seen["start"] = run(kc, ":engines 4")
        pids = {int(r): int(p) for r, p in re.findall(r"rank (\d+) on \S+ \(pid (\d+)\)", seen["start"][1])}
        seen["engine_pids"] = pids

        killed = {}

        def kill_rank_2(text):
            if "[rank 0] started" not in text:
                return False
            time.sleep(2)
            roots = [p for p in descendants(kernel_pid) if "fogrun" in cmdline(p)]
            killed["job"] = roots + [d for r in roots for d in descendants(r)]
            os.kill(pids[2], signal.SIGKILL)
            killed["at"] = time.time()
            return True

        started = time.time()
        seen["fault"] = run(
            kc,
            'let bf = fogkit::init()?;\nprintln!("started");\n'
            "std::thread::sleep(std::time::Duration::from_secs(60));\n"
            'println!("never {}", bf.rank());',
            until=kill_rank_2,
        )
        seen["fault_seconds"] = time.time() - killed.get("at", started)
        # What is still under the kernel of the first engines' job: nothing alive.
        seen["first_job"] = killed.get("job", [])
        seen["first_job_alive"] = [p for p in seen["first_job"] if alive(p)]
        seen["after_fault"] = run(kc, 'println!("still here");')
        seen["restart"] = run(kc, ":engines restart")

        def interrupt_engines(text):
            if "[rank 0] napping" not in text:
                return False
            time.sleep(1)
            km.interrupt_kernel()
            return True

        seen["engines_interrupt"] = run(
            kc,
            'println!("napping");\nstd::thread::sleep(std::time::Duration::from_secs(120));',
            until=interrupt_engines,
        )
        seen["restart_after_interrupt"] = run(kc, ":engines restart")
        seen["collective"] = run(
            kc, 'let bf = fogkit::init()?;\nprintln!("mean {}", bf.allreduce(&[bf.rank() as f64])?[0]);'
        )
        seen["under_kernel"] = [p for p in descendants(kernel_pid) if alive(p)]
        seen["zombies"] = [p for p in descendants(kernel_pid) if not alive(p)]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    deadline = time.time() + 15
    left = [p for p in seen.get("under_kernel", []) + [kernel_pid] if alive(p)]
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = [p for p in left if alive(p)]
    seen["left"] = left
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
