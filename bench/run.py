#!/usr/bin/env python3
"""chathub's benchmark harness (issue #7): one command, see docs/BENCHMARKS.md.

    bench/run.py                  full sizes, 3 repetitions, writes docs/BENCHMARKS.md
    bench/run.py --quick          small sizes (development, CI smoke); writes bench/results/ only
    bench/run.py --help           every option

It builds what it runs (release), then for each scenario runs every server
in turn, a fresh process each time, interleaved across repetitions:

    ref   Node socket.io 4.8 with the chapter's chat (bench/reference/)
    rust  the hub through the Rust example (core/examples/chat-server.rs)
    met   the same with its Prometheus endpoint on (METRICS_PATH), scraped
          every second during the run
    rb    the same with REDIS_BATCH_MS=0 (the cluster scenario only)
    node  the hub attached to a Node http.Server (examples/node/chat-server.js)
    nodehub  the same, its handlers through hub.onEvent, no socket objects
          (HANDLERS=hub; only when asked for with --servers)
    c     the hub in the C example (examples/c/chat_server)
    raw   a raw tokio-tungstenite broadcast server, the floor (bench/rawws/)

and drives it with chathub-loadgen (bench/loadgen/). Server and generator
are pinned to different cores when `taskset` exists. Before each run it
waits (bounded) for a quiet machine. It measures the server's CPU from
/proc/PID/stat over the generator's measured window, its RSS from
/proc/PID/status, and the rest of the machine's load over the same window
(other processes: the noise). Results: bench/results/<time>.json (every
run), the table between the markers of docs/BENCHMARKS.md, and
docs/benchmarks.svg.

Python 3 standard library only. Every wait is bounded; traffic goes only
to 127.0.0.1; every child process is killed at the end, on an error and on
Ctrl-C.

The `cluster` scenario runs three of a server on one redis-server (the
reference on @socket.io/redis-adapter, ours with REDIS_URL), spreads the
clients over them, and reads Redis's own CPU time and command counts
(`INFO cpu`, `INFO commandstats`, `INFO stats`) before and after the
measured window: Redis CPU per line is the difference over the lines sent
meanwhile.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import statistics
import tempfile
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "BENCHMARKS.md"
SVG = ROOT / "docs" / "benchmarks.svg"
MARK_START = "<!-- bench:results:start (written by bench/run.py; do not edit by hand) -->"
MARK_END = "<!-- bench:results:end -->"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def target_dir():
    """Cargo's target directory, as cargo reads CARGO_TARGET_DIR."""
    t = os.environ.get("CARGO_TARGET_DIR")
    return (ROOT / t).resolve() if t else ROOT / "target"


# name: (label, command, extra environment)
def servers():
    """Every server logs what the chapter's server logs (`my event`) and no
    more: ours with QUIET=1, the reference by itself."""
    release = target_dir() / "release"
    node = shutil.which("node") or "node"
    return {
        "ref": ("socket.io 4.8 (Node), the reference",
                [node, str(ROOT / "bench/reference/server.js")], {}),
        "rust": ("chathub, Rust example",
                 [str(release / "examples/chat-server")], {"FLOOD_LIMITS": "off", "QUIET": "1"}),
        "met": ("chathub, Rust example, metrics on and scraped every second",
                [str(release / "examples/chat-server")], {"FLOOD_LIMITS": "off", "QUIET": "1",
                                                          "METRICS_PATH": "/metrics"}),
        "rec": ("chathub, Rust example, recovery on",
                [str(release / "examples/chat-server")], {"FLOOD_LIMITS": "off", "QUIET": "1", "RECOVERY": "on"}),
        # The cluster scenario only: the hubs not gathering their Redis
        # writes (redis_batch 0 instead of the default 50 ms): what the
        # window buys in Redis CPU per line, and costs in cross-hub latency.
        "rb": ("chathub, Rust example, redis_batch 0",
               [str(release / "examples/chat-server")], {"FLOOD_LIMITS": "off", "QUIET": "1", "REDIS_BATCH_MS": "0"}),
        "node": ("chathub in Node (http.Server + addon)",
                 [node, str(ROOT / "examples/node/chat-server.js")], {"FLOOD_LIMITS": "off", "QUIET": "1"}),
        "nodehub": ("chathub in Node, handlers through hub.onEvent (no socket objects)",
                    [node, str(ROOT / "examples/node/chat-server.js")],
                    {"FLOOD_LIMITS": "off", "QUIET": "1", "HANDLERS": "hub"}),
        "c": ("chathub, C example",
              [str(ROOT / "examples/c/chat_server")], {"FLOOD_LIMITS": "off", "QUIET": "1"}),
        "raw": ("raw WebSocket broadcast (floor)",
                [str(release / "chathub-bench-rawws")], {}),
    }


SERVER_ORDER = ["ref", "rust", "met", "rec", "rb", "node", "nodehub", "c", "raw"]
# What `make bench` runs without --servers ("nodehub" compares the Node
# example's two handler forms; asked for by name).
DEFAULT_SERVERS = ["ref", "rust", "met", "rec", "rb", "node", "c", "raw"]
SCENARIOS = ["fanout", "rate", "idle", "connect", "storm", "acks", "cluster", "shards"]
# Servers a scenario does not run on: the reconnect storm needs connection
# state recovery (turned on for every server it runs on; "rec" is "rust"
# then), which the raw floor does not speak. The acks scenario measures
# handlers in JavaScript: the socket.io reference and the hub through the
# Node addon (the Rust and C examples have no `echo` handler, the raw floor
# no acks). "met" (metrics on) is measured where its cost would show: the
# fan-out and the fixed rate, per packet; "rb" (no Redis batching) in the
# cluster scenario only.
SKIP = {"storm": {"raw", "rec", "met", "rb"}, "acks": {"rust", "rec", "rb", "c", "raw", "met"},
        "cluster": {"raw", "met", "nodehub"},
        "shards": {"raw", "met", "nodehub", "rb", "rec", "node", "c"},
        "fanout": {"rb"}, "rate": {"rb"}, "idle": {"met", "rb"}, "connect": {"met", "rb"}}
# Environment a scenario gives its servers: the storm turns recovery on;
# acks turns on the `echo` handler (answering its ack with its arguments).
SCENARIO_ENV = {"storm": {"RECOVERY": "on"}, "acks": {"BENCH_ECHO": "1"}, "shards": {"REDIS_CLUSTER": "1"}}

# Sizes: (full, quick).
SIZES = {
    "fanout": ({"clients": 1000, "senders": 10, "duration": 10, "warmup": 2},
               {"clients": 100, "senders": 5, "duration": 3, "warmup": 1}),
    "rate": ({"clients": 1000, "rate": 50, "duration": 10, "warmup": 2},
             {"clients": 100, "rate": 50, "duration": 3, "warmup": 1}),
    "idle": ({"clients": 10000, "room_size": 10, "settle": 3},
             {"clients": 500, "room_size": 10, "settle": 1}),
    "connect": ({"duration": 10, "concurrency": 50},
                {"duration": 3, "concurrency": 20}),
    "storm": ({"clients": 1000, "rate": 50, "duration": 5, "warmup": 1},
              {"clients": 100, "rate": 50, "duration": 2, "warmup": 1}),
    "acks": ({"clients": 50, "window": 4, "duration": 10, "warmup": 1},
             {"clients": 50, "window": 4, "duration": 3, "warmup": 1}),
    # Three hubs on one Redis, the clients spread over them in `rooms`
    # rooms (members of every room on every hub); `rate` lines per second
    # in all, from `senders` senders (one per room). Many small rooms, not
    # one big one: Redis's cost per line is only seen when it carries
    # thousands of lines per second, and one room of 300 at that rate
    # would be more than three socket.io servers on one core deliver (a
    # saturated reference batches its reads and flatters its Redis).
    "cluster": ({"hubs": 3, "clients": 300, "rooms": 20, "senders": 20, "rate": 1000, "duration": 10, "warmup": 2},
                {"hubs": 3, "clients": 300, "rooms": 20, "senders": 20, "rate": 1000, "duration": 4, "warmup": 1}),
    # The same on a Redis Cluster of three masters (sharded pub/sub).
    "shards": ({"hubs": 3, "shards": 3, "clients": 300, "rooms": 20, "senders": 20, "rate": 1000, "duration": 10,
                "warmup": 2},
               {"hubs": 3, "shards": 3, "clients": 300, "rooms": 20, "senders": 20, "rate": 1000, "duration": 4,
                "warmup": 1}),
}

# What each scenario reports: (key, label, unit, higher is better).
METRICS = {
    "fanout": [("deliveries_per_sec", "deliveries/s", "", True),
               ("p50_ms", "p50", "ms", False),
               ("p99_ms", "p99", "ms", False),
               ("server_cpu", "server CPU", "%", None),
               ("loadgen_cpu", "generator CPU", "%", None)],
    "rate": [("p50_ms", "p50", "ms", False),
             ("p99_ms", "p99", "ms", False),
             ("server_cpu", "server CPU", "%", False),
             ("server_sys_cpu", "of it in the kernel", "%", None),
             ("deliveries_per_sec", "deliveries/s", "", None)],
    "idle": [("kib_per_conn", "RSS growth per connection", "KiB", False),
             ("rss_before_mib", "RSS before", "MiB", None),
             ("rss_after_mib", "RSS with all connected", "MiB", None)],
    "connect": [("connects_per_sec", "connects/s", "", True),
                ("server_cpu", "server CPU", "%", None),
                ("loadgen_cpu", "generator CPU", "%", None)],
    "storm": [("recovered_pct", "recovered", "%", True),
              ("missing", "lines missing", "", False),
              ("duplicates", "lines twice", "", False),
              ("recover_p99_ms", "drop to caught up, p99", "ms", False),
              ("catchup_p50_ms", "back to caught up, p50", "ms", False),
              ("catchup_p99_ms", "back to caught up, p99", "ms", False),
              ("rss_growth_mib", "RSS growth", "MiB", False)],
    "cluster": [("deliveries_per_sec", "deliveries/s", "", True),
                ("cross_p99_ms", "cross-hub p99", "ms", False),
                ("redis_us_per_line", "Redis CPU per line", "µs", False),
                ("redis_calls_per_line", "Redis commands per line", "", None),
                ("redis_cpu", "Redis CPU", "%", None),
                ("server_cpu", "hubs' CPU (3 processes)", "%", None),
                ("lost", "lines lost", "", False),
                ("out_of_order", "lines twice or out of order", "", False)],
    "shards": [("deliveries_per_sec", "deliveries/s", "", True),
               ("cross_p99_ms", "cross-hub p99", "ms", False),
               ("redis_us_per_line", "Redis CPU per line, all shards", "µs", False),
               ("busiest_shard_pct", "busiest shard's part of it", "%", False),
               ("server_cpu", "hubs' CPU (3 processes)", "%", None),
               ("lost", "lines lost", "", False),
               ("out_of_order", "lines twice or out of order", "", False)],
    "acks": [("acks_per_sec", "acks/s", "", True),
             ("acks_per_cpu_sec", "acks per second of server CPU", "", True),
             ("p50_ms", "p50", "ms", False),
             ("p99_ms", "p99", "ms", False),
             ("server_cpu", "server CPU", "%", None),
             ("loadgen_cpu", "generator CPU", "%", None)],
}

TITLES = {
    "fanout": "Fan-out",
    "rate": "Fixed rate",
    "idle": "Idle memory",
    "connect": "Connect rate",
    "storm": "Reconnect storm",
    "acks": "Acks handled in JavaScript",
    "cluster": "Scale-out: three hubs on one Redis",
    "shards": "Scale-out: three hubs on a Redis Cluster of three shards",
}

LOG = None  # the run's log file


def log(msg):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if LOG:
        LOG.write(line + "\n")
        LOG.flush()


class BenchError(Exception):
    """A run could not be done (the harness goes on with the next one)."""


# ---------------------------------------------------------------------------
# Child processes: every one is registered and killed at the end.

CHILDREN = []


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    CHILDREN.append(p)
    return p


def stop(p, timeout=10):
    """SIGTERM, then SIGKILL after `timeout` s, to the child's process group."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"  pid {p.pid} ignored SIGTERM for {timeout} s: SIGKILL")
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    if p in CHILDREN:
        CHILDREN.remove(p)


def kill_all():
    for p in list(CHILDREN):
        try:
            stop(p, timeout=3)
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"could not stop pid {p.pid}: {e}", file=sys.stderr)


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------------------
# /proc readings.

def machine_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def process_jiffies(pid):
    """(utime, stime) of a process (all its threads), in jiffies."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[11]), int(rest[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpus():
    return len(os.sched_getaffinity(0))


def wait_quiet(threshold, timeout):
    """Waits until the machine's load (all cores) is at most `threshold`
    (a fraction) over one second, for at most `timeout` s. Returns
    (seconds waited, last load fraction, quiet?)."""
    started = time.monotonic()
    load = 1.0
    while True:
        b0, t0 = machine_jiffies()
        time.sleep(1.0)
        b1, t1 = machine_jiffies()
        load = (b1 - b0) / max(1, t1 - t0)
        waited = time.monotonic() - started
        if load <= threshold:
            return waited, load, True
        if waited >= timeout:
            return waited, load, False


# ---------------------------------------------------------------------------
# One run: a fresh server, the generator, the measurements.

def start_server(name, pin, logdir, run_id, more_env=None):
    label, cmd, extra = servers()[name]
    if not Path(cmd[-1]).exists():
        raise BenchError(f"{label}: {cmd[-1]} is missing (build it, or run without --no-build)")
    env = dict(os.environ, PORT="0", HOST=HOST, **extra, **(more_env or {}))
    logfile = logdir / f"{run_id}-{name}.log"
    out = open(logfile, "w")
    full = (["taskset", "-c", pin] if pin else []) + cmd
    # The servers' output goes to a file: it never blocks them (a pipe
    # nobody reads would).
    p = spawn(full, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = logfile.read_text(errors="replace")
        m = re.search(r"listening on http://([0-9.]+):(\d+)/", text)
        if m:
            return p, f"http://{m.group(1)}:{m.group(2)}", logfile
        if p.poll() is not None:
            raise BenchError(f"{label} exited ({p.returncode}) before listening: {text[-2000:]}")
        time.sleep(0.05)
    stop(p)
    raise BenchError(f"{label} did not print its listening line within 30 s")


class Loadgen:
    """chathub-loadgen in a child process; its JSON lines, read with deadlines."""

    def __init__(self, args, pin, stderr_path):
        cmd = (["taskset", "-c", pin] if pin else []) + [str(target_dir() / "release/chathub-loadgen")] + args
        self.err = open(stderr_path, "w")
        self.p = spawn(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""

    def line(self, timeout):
        """The next JSON line, within `timeout` s."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                raise BenchError(f"the load generator printed nothing for {timeout:.0f} s")
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                self.p.wait(10)
                raise BenchError(f"the load generator ended (status {self.p.returncode}) without a result")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def go_on(self):
        """Closes its stdin (idle: it then closes its clients)."""
        self.p.stdin.close()

    def finish(self):
        stop(self.p)
        self.err.close()


class Scraper:
    """Scrapes a server's /metrics once a second in a thread, as Prometheus
    would (more often than its usual 15 s), so that the cost of writing the
    text counts too."""

    def __init__(self, url):
        import threading
        self.url, self.ok, self.done = url, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        import urllib.request
        while not self.done.wait(1.0):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200 and b"chathub_packets_sent_total" in r.read():
                        self.ok += 1
            except OSError:
                pass

    def finish(self):
        """Stops; the number of good scrapes."""
        self.done.set()
        self.t.join(10)
        return self.ok


def loadgen_args(scenario, size, url, window, threads):
    a = [scenario, "--url", url, "--ns", "/chat"]
    if threads:
        a += ["--threads", str(threads)]
    if scenario == "fanout":
        a += ["--clients", size["clients"], "--senders", size["senders"], "--window", window,
              "--duration", size["duration"], "--warmup", size["warmup"]]
    elif scenario == "rate":
        a += ["--clients", size["clients"], "--rate", size["rate"],
              "--duration", size["duration"], "--warmup", size["warmup"]]
    elif scenario == "idle":
        a += ["--clients", size["clients"], "--room-size", size["room_size"]]
    elif scenario == "connect":
        a += ["--duration", size["duration"], "--concurrency", size["concurrency"]]
    elif scenario == "storm":
        a += ["--clients", size["clients"], "--rate", size["rate"],
              "--duration", size["duration"], "--warmup", size["warmup"]]
    elif scenario == "acks":
        a += ["--clients", size["clients"], "--window", size["window"],
              "--duration", size["duration"], "--warmup", size["warmup"]]
    return [str(x) for x in a]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of its own for one run, on a free port, and the
    figures it keeps about itself (a minimal RESP client: INFO only)."""

    def __init__(self, pin, logdir, run_id, extra=()):
        exe = shutil.which("redis-server")
        if not exe:
            raise BenchError("redis-server is missing (scripts/setup.sh installs it)")
        for _ in range(5):
            self.port = free_port()
            log_path = logdir / f"{run_id}-redis.log"
            out = open(log_path, "w")
            cmd = (["taskset", "-c", pin] if pin else []) + [
                exe, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
                "--loglevel", "notice", *extra]
            self.p = spawn(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            out.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.p.poll() is None:
                if "Ready to accept connections" in log_path.read_text(errors="replace"):
                    self.url = f"redis://{HOST}:{self.port}"
                    return
                time.sleep(0.05)
            stop(self.p)
        raise BenchError("redis-server did not start")

    def command(self, *args):
        """One command; its reply: a simple one's line (`+OK`, `:12`) or a
        bulk string's text."""
        import socket
        req = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection((HOST, self.port), timeout=5) as s:
            s.sendall(req.encode())
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise BenchError("Redis closed the connection")
                buf += chunk
            head, rest = buf.split(b"\r\n", 1)
            if head.startswith(b"-"):
                raise BenchError(f"Redis answered {args[0]} with {head.decode()}")
            if not head.startswith(b"$"):
                return head.decode()
            n = int(head[1:])
            while len(rest) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise BenchError("Redis closed the connection")
                rest += chunk
        return rest[:n].decode()

    def info(self, section):
        return self.command("INFO", section)

    def sample(self):
        """(CPU seconds, {command: (calls, usec)}); beside the commands,
        Redis's reads and writes of sockets and bytes in and out, as
        `@reads`, `@writes`, `@in`, `@out` (calls: the count)."""
        cpu = dict(line.split(":", 1) for line in self.info("cpu").splitlines() if ":" in line)
        used = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
        st = dict(line.split(":", 1) for line in self.info("stats").splitlines() if ":" in line)
        stats = {}
        for line in self.info("commandstats").splitlines():
            m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line)
            if m:
                stats[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        for key, name in (("total_reads_processed", "@reads"), ("total_writes_processed", "@writes"),
                          ("total_net_input_bytes", "@in"), ("total_net_output_bytes", "@out")):
            if key in st:
                stats[name] = (int(st[key]), 0)
        stats["@sys_us"] = (int(float(cpu["used_cpu_sys"]) * 1e6), 0)
        return used, stats

    def stop(self):
        stop(self.p)


class RedisShards:
    """A Redis Cluster of `n` masters for one run (each an equal share of
    the slots, ports from the OS, the cluster bus too); its figures are the
    sums of its nodes' (and `shares`, each node's part of the CPU)."""

    def __init__(self, n, pin, logdir, run_id):
        self.dir = Path(tempfile.mkdtemp(prefix="chathub-bench-shards-"))
        self.nodes = []
        try:
            buses = []
            for i in range(n):
                bus = free_port()
                self.nodes.append(Redis(pin, logdir, f"{run_id}-shard{i + 1}", [
                    "--cluster-enabled", "yes", "--cluster-port", str(bus),
                    "--cluster-config-file", f"nodes-{i}.conf", "--cluster-node-timeout", "2000",
                    "--dir", str(self.dir)]))
                buses.append(bus)
            for i, node in enumerate(self.nodes):
                node.command("CLUSTER", "ADDSLOTSRANGE", i * 16384 // n, (i + 1) * 16384 // n - 1)
            for node, bus in zip(self.nodes[1:], buses[1:]):
                self.nodes[0].command("CLUSTER", "MEET", HOST, node.port, bus)
            deadline = time.monotonic() + 30
            while True:
                infos = [node.command("CLUSTER", "INFO") for node in self.nodes]
                if all("cluster_state:ok" in i and f"cluster_known_nodes:{n}" in i for i in infos):
                    break
                if time.monotonic() > deadline:
                    raise BenchError("the Redis Cluster did not form")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        self.url = self.nodes[0].url

    def sample(self):
        samples = [node.sample() for node in self.nodes]
        used = sum(u for u, _ in samples)
        stats = {}
        for _, st in samples:
            for k, (calls, usec) in st.items():
                c0, u0 = stats.get(k, (0, 0))
                stats[k] = (c0 + calls, u0 + usec)
        for i, (u, _) in enumerate(samples):
            stats[f"@cpu{i}"] = (int(u * 1e6), 0)
        return used, stats

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_cluster(name, size, opts, logdir, run_id, result, scenario="cluster"):
    """`cluster`: three servers on one Redis, the generator's clients spread
    over them; Redis's CPU and commands over the measured window. `shards`:
    the same on a Redis Cluster."""
    # Redis on the generator's core: beside the hubs it would get its
    # commands in bigger or smaller batches as their CPU use differs (a
    # busy core batches for it), and so cost less or more per line for
    # reasons of its own core, not of what the hubs send.
    if scenario == "shards":
        redis = RedisShards(size["shards"], opts.loadgen_cpu, logdir, run_id)
    else:
        redis = Redis(opts.loadgen_cpu, logdir, run_id)
    hubs = []
    gen = None
    try:
        env = dict(SCENARIO_ENV.get(scenario, {}), REDIS_URL=redis.url)
        for i in range(size["hubs"]):
            hubs.append(start_server(name, opts.server_cpu, logdir, f"{run_id}-hub{i + 1}", env))
        time.sleep(1.0)
        urls = ",".join(url for _, url, _ in hubs)
        timeout = 120 + size["duration"] + size["warmup"]
        args = ["cluster", "--url", urls, "--ns", "/chat", "--clients", size["clients"],
                "--senders", size["senders"], "--rate", size["rate"], "--rooms", size.get("rooms", 1),
                "--duration", size["duration"], "--warmup", size["warmup"]]
        if opts.loadgen_threads:
            args += ["--threads", opts.loadgen_threads]
        gen = Loadgen([str(a) for a in args], opts.loadgen_cpu, logdir / f"{run_id}-{name}-loadgen.err")
        window = {}
        cpu = lambda: sum(sum(process_jiffies(p.pid)) for p, _, _ in hubs)  # noqa: E731
        while True:
            msg = gen.line(timeout)
            if msg.get("measuring") is True:
                window["start"] = (time.monotonic(), cpu(), redis.sample())
            elif msg.get("measuring") is False:
                window["end"] = (time.monotonic(), cpu(), redis.sample())
            elif "ready" in msg:
                pass
            else:
                result["loadgen"] = msg
                break
        for p, _, log_path in hubs:
            if p.poll() is not None:
                raise BenchError(f"a server exited ({p.returncode}) during the run; see {log_path}")
    finally:
        if gen:
            gen.finish()
        for p, _, _ in hubs:
            stop(p)
        redis.stop()
    if "start" not in window or "end" not in window:
        raise BenchError("the generator did not report its measured window")
    lg = result["loadgen"]
    t0, c0, (r0, s0) = window["start"]
    t1, c1, (r1, s1) = window["end"]
    secs = t1 - t0
    lines = max(1, lg.get("sent_measured", 0))
    calls = {k: s1[k][0] - s0.get(k, (0, 0))[0] for k in s1}
    usec = {k: s1[k][1] - s0.get(k, (0, 0))[1] for k in s1}
    shard_cpu = [calls.pop(k) for k in sorted(k for k in list(calls) if k.startswith("@cpu"))]
    io = {k[1:]: calls.pop(k) / lines for k in ("@reads", "@writes", "@in", "@out", "@sys_us") if k in calls}
    top = sorted((k for k in calls if calls[k] > 0), key=lambda k: -usec[k])
    result.update(
        server_cpu=(c1 - c0) / CLK_TCK / secs * 100,
        redis_cpu=(r1 - r0) / secs * 100,
        redis_us_per_line=(r1 - r0) * 1e6 / lines,
        redis_calls_per_line=sum(calls.values()) / lines,
        redis_commands={k: {"calls_per_line": calls[k] / lines, "usec_per_line": usec[k] / lines} for k in top},
        redis_io_per_line=io,
        lost=lg.get("gaps", 0),
        out_of_order=lg.get("out_of_order", 0))
    if shard_cpu and sum(shard_cpu) > 0:
        result["shard_cpu_pct"] = [round(c / 1e6 / secs * 100, 2) for c in shard_cpu]
        result["busiest_shard_pct"] = max(shard_cpu) / sum(shard_cpu) * 100
    for k in ("deliveries_per_sec", "p50_ms", "p99_ms", "cross_p50_ms", "cross_p99_ms"):
        if isinstance(lg.get(k), (int, float)):
            result[k] = lg[k]
    shown = ", ".join(f"{k} {calls[k] / lines:.2f}×/{usec[k] / lines:.1f} µs" for k in top[:5])
    log(f"  Redis per line: {shown} (commands: calls and time inside Redis); "
        + ", ".join(f"{k} {v:.2f}" for k, v in io.items()))
    return result


def run_once(scenario, name, size, opts, logdir, run_id):
    """One fresh server, one generator run: a dict of measurements."""
    waited, load, quiet = wait_quiet(opts.quiet_threshold, opts.quiet_timeout)
    if not quiet:
        log(f"  machine not quiet after {waited:.0f} s (load {load:.0%} of {cpus()} cores): going on anyway")
    elif waited > 1.5:
        log(f"  waited {waited:.0f} s for a quiet machine")
    result = {"scenario": scenario, "server": name, "quiet_wait_s": round(waited, 1),
              "load_before": round(load, 3), "quiet": quiet}
    if scenario in ("cluster", "shards"):
        return run_cluster(name, size, opts, logdir, run_id, result, scenario)
    server, url, server_log = start_server(name, opts.server_cpu, logdir, run_id, SCENARIO_ENV.get(scenario))
    gen = None
    scraper = Scraper(url + "/metrics") if name == "met" else None
    try:
        time.sleep(1.0)  # let it settle (JIT, allocator)
        rss0 = rss_kib(server.pid)
        timeout = 120 + (size.get("duration", 0) + size.get("warmup", 0))
        gen = Loadgen(loadgen_args(scenario, size, url, opts.window, opts.loadgen_threads),
                      opts.loadgen_cpu, logdir / f"{run_id}-{name}-loadgen.err")
        window = {}
        while True:
            msg = gen.line(timeout)
            if msg.get("measuring") is True:
                window["start"] = (time.monotonic(), process_jiffies(server.pid), process_jiffies(gen.p.pid),
                                   *machine_jiffies())
            elif msg.get("measuring") is False:
                window["end"] = (time.monotonic(), process_jiffies(server.pid), process_jiffies(gen.p.pid),
                                 *machine_jiffies())
            elif "ready" in msg:
                if scenario == "idle":
                    time.sleep(size["settle"])
                    rss1 = rss_kib(server.pid)
                    n = msg["ready"]
                    result.update(connections=n, rss_before_mib=rss0 / 1024, rss_after_mib=rss1 / 1024,
                                  kib_per_conn=(rss1 - rss0) / n)
                    gen.go_on()
                elif scenario == "storm":
                    rss_ready = rss_kib(server.pid)
            else:
                result["loadgen"] = msg
                if scenario == "storm":
                    # What the hub holds after the storm (the history and
                    # the sessions kept for recovery among it).
                    result["rss_growth_mib"] = (rss_kib(server.pid) - rss_ready) / 1024
                break
        if server.poll() is not None:
            raise BenchError(f"the server exited ({server.returncode}) during the run; see {server_log}")
    finally:
        if scraper:
            result["scrapes"] = scraper.finish()
        if gen:
            gen.finish()
        stop(server)
    if scraper and not result["scrapes"]:
        raise BenchError(f"no scrape of {url}/metrics succeeded")
    if "start" in window and "end" in window:
        t0, (su0, ss0), g0, b0, tot0 = window["start"]
        t1, (su1, ss1), g1, b1, tot1 = window["end"]
        secs = t1 - t0
        pct = lambda jiffies: jiffies / CLK_TCK / secs * 100  # noqa: E731
        server_cpu = pct(su1 - su0 + ss1 - ss0)
        loadgen_cpu = pct(sum(g1) - sum(g0))
        machine = (b1 - b0) / max(1, tot1 - tot0) * cpus() * 100
        # Kernel time: the TCP writes (on loopback, the receiving side's
        # work too) are charged to the writer.
        result.update(server_cpu=server_cpu, server_sys_cpu=pct(ss1 - ss0), loadgen_cpu=loadgen_cpu,
                      other_cpu=max(0.0, machine - server_cpu - loadgen_cpu))
    lg = result.get("loadgen", {})
    for k in ("deliveries_per_sec", "p50_ms", "p99_ms", "connects_per_sec", "recovered_pct",
              "missing", "duplicates", "recover_p99_ms", "catchup_p50_ms", "catchup_p99_ms", "acks_per_sec"):
        if isinstance(lg.get(k), (int, float)):
            result[k] = lg[k]
    if scenario == "acks" and result.get("server_cpu"):
        # What the target counts: round trips per second of one core.
        result["acks_per_cpu_sec"] = result.get("acks_per_sec", 0) / (result["server_cpu"] / 100)
    if scenario == "acks" and not lg.get("acks"):
        raise BenchError(f"no ack came back ({lg.get('errors')} clients failed; last: {lg.get('last_error')})")
    if lg.get("wrong") or lg.get("late") or lg.get("errors"):
        log(f"  {lg.get('wrong', 0)} wrong answers, {lg.get('late', 0)} acks unanswered for over 1 s, "
            f"{lg.get('errors', 0)} clients failed (last: {lg.get('last_error')})")
    if lg.get("failed"):
        log(f"  {lg['failed']} connects failed (last: {lg.get('last_error')})")
    if lg.get("window_timeouts"):
        log(f"  {lg['window_timeouts']} window timeouts (lines lost by the server)")
    return result


# ---------------------------------------------------------------------------
# Building.

def sh(cmd, cwd=ROOT, **kw):
    log("$ " + " ".join(str(c) for c in cmd) + (f"   (in {Path(cwd).relative_to(ROOT)})" if Path(cwd) != ROOT else ""))
    subprocess.run([str(c) for c in cmd], cwd=cwd, check=True, **kw)


def npm_ci_if_needed(d, extra=()):
    lock, stamp = d / "package-lock.json", d / "node_modules" / ".package-lock.json"
    if not stamp.exists() or lock.stat().st_mtime > stamp.stat().st_mtime:
        sh(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", *extra], cwd=d)


def build(names):
    env_note = os.environ.get("CARGO_TARGET_DIR", "target/ (CARGO_TARGET_DIR unset)")
    log(f"building (release; target dir {env_note})")
    sh(["cargo", "build", "--release", "--quiet", "-p", "chathub-loadgen", "-p", "chathub-bench-rawws",
        "-p", "chathub", "--bins", "--example", "chat-server"])
    if "node" in names or "nodehub" in names:
        npm_ci_if_needed(ROOT / "node-binding", ["--ignore-scripts"])
        sh(["npm", "run", "--silent", "build"], cwd=ROOT / "node-binding")
    if "c" in names:
        sh(["make", "--quiet", "-C", "examples/c", f"CARGO_TARGET_DIR={target_dir()}"])
    if "ref" in names:
        npm_ci_if_needed(ROOT / "bench" / "reference")


# ---------------------------------------------------------------------------
# Summaries, the document and the chart.

def summarize(runs, scenario_names, server_names):
    """{scenario: {server: {metric: {median, min, max, n}}}} and ratios to ref."""
    out = {}
    for sc in scenario_names:
        out[sc] = {}
        for sv in server_names:
            rs = [r for r in runs if r["scenario"] == sc and r["server"] == sv and "error" not in r]
            if not rs:
                continue
            stats = {}
            for key, *_ in METRICS[sc] + [("other_cpu", None, None, None)]:
                vals = [r[key] for r in rs if isinstance(r.get(key), (int, float)) and r[key] == r[key]]
                if vals:
                    stats[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
            out[sc][sv] = stats
    return out


def ratio(summary, sc, sv, key):
    try:
        return summary[sc][sv][key]["median"] / summary[sc]["ref"][key]["median"]
    except (KeyError, ZeroDivisionError):
        return None


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "" and v >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(stats, key, unit):
    s = stats.get(key)
    if not s:
        return "–"
    if s["n"] == 1:
        return fmt(s["median"], unit)
    return f"{fmt(s['median'], unit)} ({fmt(s['min'], unit)}–{fmt(s['max'], unit)})"


def targets(summary):
    """[(target, server, value text, met?)] for each chathub server: the
    targets of the engine issue (#13), per face (the Node-attached hub has
    its own, a little looser)."""
    rows = []
    hubs = [s for s in ("rust", "node", "c") if any(s in summary[sc] for sc in summary)]

    def med(sc, sv, key):
        try:
            return summary[sc][sv][key]["median"]
        except KeyError:
            return None
    for sv in hubs:
        node = sv == "node"
        kib = med("idle", sv, "kib_per_conn")
        if kib is not None:
            goal = 10 if node else 8
            rows.append((f"idle memory ≤ {goal} KiB per connection", sv, f"{kib:.1f} KiB", kib <= goal))
        raw, hub = med("fanout", "raw", "deliveries_per_sec"), med("fanout", sv, "deliveries_per_sec")
        if raw and hub:
            goal = 0.95 if node else 1.0
            rows.append((f"fan-out ≥ {goal:.0%} of the raw floor", sv, f"{hub / raw:.0%}", hub / raw >= goal))
        r = ratio(summary, "connect", sv, "connects_per_sec")
        if r is not None:
            goal = 4 if node else 7
            rows.append((f"connects/s ≥ {goal}× the reference", sv, f"{r:.1f}×", r >= goal))
        r = ratio(summary, "rate", sv, "server_cpu")
        if r is not None:
            goal = 0.65 if node else 0.60
            rows.append((f"CPU at 50 lines/s ≤ {goal:.2f}× the reference's", sv, f"{r:.2f}×", r <= goal))
        raw_p99, p99 = med("fanout", "raw", "p99_ms"), med("fanout", sv, "p99_ms")
        if raw_p99 and p99 is not None:
            goal = 1.1 if node else 1.0
            rows.append((f"p99 at saturation ≤ {goal:g}× the raw floor's", sv,
                         f"{p99:.1f} ms (floor {raw_p99:.1f})", p99 <= raw_p99 * goal))
        # The recovery issue's (#16).
        rec = med("storm", sv, "recovered_pct")
        if rec is not None:
            missing = med("storm", sv, "missing") or 0
            rows.append(("reconnect storm: 100 % recovered, no line missing", sv,
                         f"{rec:.1f} %, {missing:.0f} missing", rec >= 100 and missing == 0))
        # The node-binding issue's (#14, item 6): handlers in JavaScript.
        r = ratio(summary, "acks", sv, "acks_per_cpu_sec")
        if r is not None:
            rows.append(("acks in JS per second of CPU ≥ 2× the reference's", sv, f"{r:.2f}×", r >= 2))
        ref_p99, p99 = med("acks", "ref", "p99_ms"), med("acks", sv, "p99_ms")
        if ref_p99 and p99 is not None:
            rows.append(("acks in JS: p99 ≤ the reference's", sv, f"{p99:.2f} ms (reference {ref_p99:.2f})",
                         p99 <= ref_p99))
    # The scale-out issue's (#17, item 6): Redis CPU per line.
    for sv in ("rust", "rec", "rb"):
        r = ratio(summary, "cluster", sv, "redis_us_per_line")
        lost = (med("cluster", sv, "lost") or 0) + (med("cluster", sv, "out_of_order") or 0)
        if r is not None:
            rows.append(("cluster: Redis CPU per line ≤ the adapter's, no line lost or out of order", sv,
                         f"{r:.2f}×, {lost:.0f} lost or out of order", r <= 1 and lost == 0))
    # The same on a Redis Cluster (sharded pub/sub), against the sharded adapter.
    r = ratio(summary, "shards", "rust", "redis_us_per_line")
    if r is not None:
        lost = (med("shards", "rust", "lost") or 0) + (med("shards", "rust", "out_of_order") or 0)
        rows.append(("shards: Redis CPU per line ≤ the sharded adapter's, no line lost or out of order", "rust",
                     f"{r:.2f}×, {lost:.0f} lost or out of order", r <= 1 and lost == 0))
    off, on = med("fanout", "rust", "deliveries_per_sec"), med("fanout", "rec", "deliveries_per_sec")
    if off and on:
        rows.append(("fan-out with recovery on ≥ 90 % of off", "rust", f"{on / off:.0%}", on / off >= 0.9))
    # Issue 17, item 3: the Prometheus endpoint on, scraped every second.
    on = med("fanout", "met", "deliveries_per_sec")
    if off and on:
        rows.append(("fan-out with metrics on ≥ 97 % of off", "rust", f"{on / off:.0%}", on / off >= 0.97))
    return rows


def results_markdown(report):
    s, meta = report["summary"], report["meta"]
    names = servers()
    lines = []
    q = "quick run (small sizes; not the real figures)" if meta["quick"] else "full sizes"
    lines.append(f"Run of {meta['date']} on commit `{meta['commit']}`: {q}, "
                 f"{meta['repeat']} repetition(s) per server and scenario, "
                 f"{'server pinned to core ' + meta['server_cpu'] + ', generator to core ' + meta['loadgen_cpu'] if meta['pinned'] else 'no pinning'}.")
    lines.append(f"Machine: {meta['cpu_model']}, {meta['cpus']} cores, {meta['mem_gib']:.0f} GiB, "
                 f"Linux {meta['kernel']}; {meta['node']}, {meta['rustc']}.")
    lines.append("")
    lines.append("Each cell: median (min–max) over the repetitions; ×ref: the median "
                 "over the reference's median from the same run.")
    for sc in report["scenarios"]:
        if sc not in s or not s[sc]:
            continue
        size = report["sizes"][sc]
        desc = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in size.items())
        lines += ["", f"#### {TITLES[sc]} ({desc})", ""]
        metrics = METRICS[sc]
        head = ["server"] + [f"{lab}{' (' + u + ')' if u else ''}" for _, lab, u, _ in metrics]
        ratio_keys = [(k, lab) for k, lab, _, better in metrics if better is not None]
        head += [f"{lab} ×ref" for _, lab in ratio_keys]
        head += ["other load (%)"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for sv in report["servers"]:
            if sv not in s[sc]:
                continue
            st = s[sc][sv]
            row = [names[sv][0]] + [cell(st, k, u) for k, _, u, _ in metrics]
            for k, _ in ratio_keys:
                r = ratio(s, sc, sv, k)
                row.append(f"{r:.2f}×" if r is not None else "–")
            row.append(fmt(st["other_cpu"]["median"], "%") if "other_cpu" in st else "–")
            lines.append("| " + " | ".join(row) + " |")
    rows = targets(s)
    if rows:
        lines += ["", "#### Targets", "", "| target | server | measured | met |", "|---|---|---|---|"]
        for t, sv, v, ok in rows:
            lines.append(f"| {t} | {sv} | {v} | {'yes' if ok else '**no**'} |")
    notes = report.get("notes", [])
    if notes:
        lines += ["", "Notes from this run:", ""] + [f"- {n}" for n in notes]
    lines += ["", f"Every run's figures: `bench/results/{report['file']}` (not committed). "
              f"Chart: [benchmarks.svg](benchmarks.svg)."]
    return "\n".join(lines)


def write_doc(report):
    md = results_markdown(report)
    text = DOC.read_text() if DOC.exists() else ""
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + MARK_START + "\n" + md + "\n" + MARK_END + tail
    else:
        text = text + "\n" + MARK_START + "\n" + md + "\n" + MARK_END + "\n"
    DOC.write_text(text)
    log(f"wrote {DOC.relative_to(ROOT)}")


def esc(t):
    return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(report, path):
    """A horizontal bar chart (log scale): each server's advantage over the
    reference per scenario (higher is better: throughput × ref; for costs,
    the reference's cost over the server's)."""
    s = report["summary"]
    # (scenario, metric, title, inverse?, the target as a ratio)
    items = [("fanout", "deliveries_per_sec", "Fan-out: deliveries/s", False, None),
             ("fanout", "p99_ms", "Fan-out: p99 latency (inverse)", True, None),
             ("rate", "server_cpu", "50 msg/s: server CPU (inverse)", True, 1 / 0.60),
             ("rate", "p99_ms", "50 msg/s: p99 latency (inverse)", True, None),
             ("idle", "kib_per_conn", "Idle: memory per connection (inverse)", True, None),
             ("connect", "connects_per_sec", "Connects/s", False, 7.0),
             ("acks", "acks_per_cpu_sec", "Acks in JS per CPU second", False, 2.0),
             ("cluster", "redis_us_per_line", "3 hubs on Redis: Redis CPU per line (inverse)", True, 1.0),
             ("shards", "redis_us_per_line", "3 hubs on 3 shards: Redis CPU per line (inverse)", True, 1.0)]
    colors = {"ref": "#9e9e9e", "rust": "#d9480f", "met": "#f08c00", "rec": "#e8590c", "rb": "#ffa94d",
              "node": "#2f9e44", "nodehub": "#8ce99a", "c": "#1971c2", "raw": "#5f3dc4"}
    shown = [sv for sv in report["servers"] if sv != "ref"]
    groups = []
    for sc, key, title, inverse, goal in items:
        bars = []
        for sv in shown:
            r = ratio(s, sc, sv, key)
            if r:
                bars.append((sv, 1 / r if inverse else r))
        if bars:
            groups.append((title, bars, goal))
    values = [v for _, bars, _ in groups for _, v in bars] + [1.0] + [g for _, _, g in groups if g]
    lo = min(0.5, min(values) / 1.5)
    hi = max(2.0, max(values) * 1.5)
    lmin, lmax = math.log10(lo), math.log10(hi)
    left, width, bar_h, gap, top = 300, 560, 16, 14, 70
    height = top + sum(len(b) * bar_h + gap + 18 for _, b, _ in groups) + 60
    x = lambda v: left + (math.log10(v) - lmin) / (lmax - lmin) * width  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="22" font-size="15" font-weight="bold">chathub vs socket.io 4.8 (the reference = 1×), '
           f'higher is better, log scale</text>',
           f'<text x="10" y="42" fill="#555">{esc(report["meta"]["date"])} · '
           f'{"quick run" if report["meta"]["quick"] else "full sizes"} · medians of {report["meta"]["repeat"]} · '
           f'{esc(report["meta"]["cpu_model"])}, {report["meta"]["cpus"]} cores</text>']
    # Grid: powers of ten and 1×.
    dec = math.floor(lmin)
    while dec <= math.ceil(lmax):
        for m in (1, 2, 5):
            v = m * 10 ** dec
            if lo <= v <= hi:
                xv = x(v)
                stroke = "#333" if v == 1 else "#ddd"
                out.append(f'<line x1="{xv:.1f}" y1="{top - 10}" x2="{xv:.1f}" y2="{height - 40}" stroke="{stroke}"/>')
                out.append(f'<text x="{xv:.1f}" y="{height - 26}" text-anchor="middle" fill="#555">{v:g}×</text>')
        dec += 1
    y = top
    for title, bars, goal in groups:
        out.append(f'<text x="10" y="{y + 12}" font-weight="bold">{esc(title)}</text>')
        if goal:
            xg = x(goal)
            out.append(f'<line x1="{xg:.1f}" y1="{y + 2}" x2="{xg:.1f}" y2="{y + 18 + len(bars) * bar_h}" '
                       f'stroke="#c92a2a" stroke-dasharray="4 3" stroke-width="1.5"/>')
            out.append(f'<text x="{xg + 4:.1f}" y="{y + 12}" fill="#c92a2a">target {goal:.3g}×</text>')
        y += 18
        for sv, v in bars:
            x0, x1 = x(1.0), x(v)
            a, b = min(x0, x1), max(x0, x1)
            out.append(f'<text x="{left - 8}" y="{y + 12}" text-anchor="end">{esc(servers()[sv][0])}</text>')
            out.append(f'<rect x="{a:.1f}" y="{y}" width="{max(1.0, b - a):.1f}" height="{bar_h - 3}" fill="{colors[sv]}"/>')
            out.append(f'<text x="{b + 4:.1f}" y="{y + 12}">{v:.2f}×</text>')
            y += bar_h
        y += gap
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
    log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


# ---------------------------------------------------------------------------

def meta(opts, pinned):
    def cmd(c):
        try:
            return subprocess.run(c, cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) / 1024 / 1024
    dirty = cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": cmd(["git", "rev-parse", "--short", "HEAD"]) + (" + local changes" if dirty else ""),
        "quick": opts.quick, "repeat": opts.repeat, "pinned": pinned,
        "server_cpu": opts.server_cpu, "loadgen_cpu": opts.loadgen_cpu,
        "cpu_model": model, "cpus": cpus(), "mem_gib": mem, "kernel": platform.release(),
        "node": "Node " + cmd(["node", "--version"]), "rustc": cmd(["rustc", "--version"]).split(" (")[0],
        "window": opts.window,
    }


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See docs/BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true", help="small sizes (development, CI smoke)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per server and scenario (default 3)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    ap.add_argument("--servers", default=",".join(DEFAULT_SERVERS), help="comma-separated, of: " + ", ".join(SERVER_ORDER))
    ap.add_argument("--window", type=int, default=2,
                    help="fan-out: lines in flight per sender (not yet seen by every member; default 2)")
    ap.add_argument("--retries", type=int, default=1,
                    help="a run that fails (say, its server was killed from outside) is run again this often (default 1)")
    ap.add_argument("--no-build", action="store_true", help="use what is built")
    ap.add_argument("--from-results", metavar="FILE",
                    help="run nothing: write the table and chart again from a results file of an earlier run")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and generator to cores")
    ap.add_argument("--quiet-threshold", type=float, default=0.10,
                    help="machine load (fraction of all cores) under which it counts as quiet (default 0.10)")
    ap.add_argument("--quiet-timeout", type=float, default=None,
                    help="longest wait for a quiet machine before each run, s (default 60; --quick: 5)")
    ap.add_argument("--write-doc", dest="write_doc", action="store_true", default=None,
                    help="write docs/BENCHMARKS.md's table and docs/benchmarks.svg (default: unless --quick)")
    ap.add_argument("--no-write-doc", dest="write_doc", action="store_false")
    opts = ap.parse_args()
    opts.scenarios = [x for x in opts.scenarios.split(",") if x]
    opts.servers = [x for x in opts.servers.split(",") if x]
    for x in opts.scenarios:
        if x not in SCENARIOS:
            ap.error(f"unknown scenario {x}")
    for x in opts.servers:
        if x not in SERVER_ORDER:
            ap.error(f"unknown server {x}")
    if not 1 <= opts.repeat <= 50:
        ap.error("--repeat is 1..50")
    if not 0 <= opts.retries <= 5:
        ap.error("--retries is 0..5")
    if not 1 <= opts.window <= 512:
        ap.error("--window is 1..512")
    if opts.quiet_timeout is None:
        opts.quiet_timeout = 5.0 if opts.quick else 60.0
    opts.quiet_timeout = min(max(opts.quiet_timeout, 1.0), 3600.0)
    if opts.write_doc is None:
        opts.write_doc = not opts.quick
    return opts


def render_again(opts):
    """Writes the document's table and the chart from a saved results file."""
    report = json.loads(Path(opts.from_results).read_text())
    print(results_markdown(report))
    if opts.write_doc is not False:
        write_doc(report)
        write_svg(report, SVG)
    return 0


def main():
    global LOG
    opts = parse()
    if opts.from_results:
        return render_again(opts)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    # Many sockets: the children inherit this limit (the hard one is the most
    # an unprivileged process may ask for).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = RESULTS / f"{stamp}-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    LOG = open(logdir / "harness.log", "w")
    pinned = not opts.no_pin and shutil.which("taskset") is not None and cpus() >= 2
    if pinned:
        mine = sorted(os.sched_getaffinity(0))
        opts.server_cpu, opts.loadgen_cpu, opts.loadgen_threads = str(mine[0]), str(mine[1]), 1
    else:
        opts.server_cpu = opts.loadgen_cpu = None
        opts.loadgen_threads = None
        log("not pinning (no taskset, fewer than 2 cores, or --no-pin)")
    need = max(SIZES["idle"][1 if opts.quick else 0]["clients"] + 512, 0)
    if "idle" in opts.scenarios and nofile < need:
        log(f"warning: the open-file limit is {nofile}; idle needs about {need}")
    try:
        if not opts.no_build:
            build(opts.servers)
        meta_ = meta(opts, pinned)  # the commit as it is when the runs start
        sizes = {sc: SIZES[sc][1 if opts.quick else 0] for sc in opts.scenarios}
        runs = []
        notes = []
        total = sum(opts.repeat * len([sv for sv in opts.servers if sv not in SKIP.get(sc, ())])
                    for sc in opts.scenarios)
        i = 0
        for sc in opts.scenarios:
            for rep in range(opts.repeat):
                # Interleaved, and a different server first each time.
                order = opts.servers[rep % len(opts.servers):] + opts.servers[:rep % len(opts.servers)]
                for sv in order:
                    if sv in SKIP.get(sc, ()):
                        continue
                    i += 1
                    run_id = f"{sc}-{rep + 1}"
                    log(f"[{i}/{total}] {sc} #{rep + 1} on {sv}")
                    for attempt in range(opts.retries + 1):
                        try:
                            r = run_once(sc, sv, sizes[sc], opts, logdir, f"{run_id}-{attempt + 1}")
                            break
                        except BenchError as e:
                            log(f"  failed: {e}")
                            r = {"scenario": sc, "server": sv, "error": str(e)}
                            if attempt < opts.retries:
                                log("  once more, with a fresh server")
                                notes.append(f"{sc} #{rep + 1} on {sv} failed once and was run again: {str(e)[:200]}")
                            else:
                                notes.append(f"{sc} #{rep + 1} on {sv} failed: {str(e)[:200]}")
                    r["repetition"] = rep + 1
                    runs.append(r)
                    shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                             if k not in ("loadgen", "scenario", "server", "repetition")}
                    log(f"  {shown}")
        summary = summarize(runs, opts.scenarios, opts.servers)
        noisy = [r for r in runs if not r.get("quiet", True)]
        if noisy:
            notes.append(f"{len(noisy)} of {len(runs)} runs started on a busy machine "
                         f"(load over {opts.quiet_threshold:.0%} after waiting {opts.quiet_timeout:.0f} s).")
        loud = [r for r in runs if r.get("other_cpu", 0) > 20]
        if loud:
            notes.append(f"{len(loud)} of {len(runs)} runs had other processes using over 20 % of a core "
                         f"during the measured window (column \"other load\").")
        for sc, what in (("fanout", "fan-out"), ("acks", "acks")):
            bound = [r for r in runs if r["scenario"] == sc and r.get("loadgen_cpu", 0) > 90]
            if bound:
                notes.append(f"{len(bound)} {what} runs had the generator at over 90 % of its core: "
                             "there it, not the server, may be the limit.")
        file = f"{stamp}.json"
        report = {"meta": meta_, "scenarios": opts.scenarios, "servers": opts.servers, "sizes": sizes,
                  "runs": runs, "summary": summary, "notes": notes, "file": file}
        (RESULTS / file).write_text(json.dumps(report, indent=1))
        log(f"results: {(RESULTS / file).relative_to(ROOT)}")
        print()
        print(results_markdown(report))
        if opts.write_doc:
            write_doc(report)
            write_svg(report, SVG)
        else:
            write_svg(report, RESULTS / f"{stamp}.svg")
        failed = [r for r in runs if "error" in r]
        return 1 if failed else 0
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'Ctrl-C'}): stopping every child process")
        return 130
    except subprocess.CalledProcessError as e:
        log(f"build failed: {e}")
        return 1
    finally:
        kill_all()
        LOG.close()


if __name__ == "__main__":
    sys.exit(main())
