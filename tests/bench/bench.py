#!/usr/bin/env python3
"""wdsmc benchmark driver. Run it through tests/bench/run.sh, which builds everything and
enters a throwaway network namespace holding only lo; this script refuses to run elsewhere.

Profile 1 (loopback, same file for every tool): wdsmc serve -> get, udpcast --full-duplex,
uftp -R -1, and a raw UDP multicast ceiling at wdsmc's datagram size.
Every run that writes a file is paired with a plain write of the same bytes to the same
filesystem (`dd bs=1M`) right before it, so the machine's own write noise is shown beside each
tool's spread. A second ceiling adds the part of a download that is not protocol: the
GSO+GRO blast whose receiver writes every payload to a file in wdsmc's write sizes.
Profile 2 (sessions): one server, 1, 2 and 4 concurrent sessions (different objects, one
client each) on loopback: aggregate throughput and the CPU it took.
Profile 3 (disk): output on the work folder's real filesystem (not tmpfs), wdsmc against
`dd bs=1M conv=fsync` of the same bytes in the same run, and the time from the last block to
the end of the download (the final sync).
Profile 4 (veth pair, 1 Gbit/s netem, client side in a second namespace): wdsmc with 0 % and
5 % loss, and 1 vs N receivers.

Knobs (environment): SIZE (default 1G), BIG_SIZE (8G; 0 skips the large-object RSS run),
NET_SIZE (256M), RECEIVERS (20), NET_MTU (9000), BLOCK_SIZE (server default if unset),
SESSION_SIZE (512M per object in the sessions profile), DISK_SIZE (SIZE),
PROFILES (default "loopback,sessions,disk,netem"), WORK (scratch folder), TOOLS (default
"wdsmc,udpcast,uftp,ceiling,ceiling-gso,ceiling-write,rpc-checksum,rpc-hash,rpc-sign":
ceiling-write is the GSO+GRO blast whose receiver writes the file; the rpc-* rows are
wdsmc with authenticated initiation over RPC in each packet-security mode), SIGN_SIZE (size
for the rpc-sign row, default 64M: the server RSA-signs every packet), REPEAT (7: every
measurement is run this often and the median run is reported with the minimum and the
spread; fewer than 7 is a quick look, not a figure to quote), BASELINE (path to another
wdsmc binary, e.g. one built from the previous commit: its runs alternate with this build's
in the loopback and disk profiles and get their own rows, so a change is compared with what
it replaces under the same machine conditions).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WDSMC = os.path.join(ROOT, "target/release/wdsmc")
BASELINE = os.environ.get("BASELINE", "")
BLAST = os.path.join(ROOT, "target/release/examples/mcast_blast")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1e6
GB = 1e9
# Bytes a wdsmc DATA datagram carries besides the block: MS-WDSMT security and session
# headers (44) and the MS-WDSMA DATA header (13).
WDSMC_DATA_OVERHEAD = 57
DEFAULT_BLOCK = 8192


def parse_size(text):
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * mult)


SIZE = parse_size(os.environ.get("SIZE", "1G"))
BIG_SIZE = parse_size(os.environ.get("BIG_SIZE", "8G"))
NET_SIZE = parse_size(os.environ.get("NET_SIZE", "256M"))
SESSION_SIZE = parse_size(os.environ.get("SESSION_SIZE", "512M"))
DISK_SIZE = parse_size(os.environ.get("DISK_SIZE", str(SIZE)))
RECEIVERS = int(os.environ.get("RECEIVERS", "20"))
NET_MTU = int(os.environ.get("NET_MTU", "9000"))
BLOCK_SIZE = os.environ.get("BLOCK_SIZE", "")
PROFILES = os.environ.get("PROFILES", "loopback,sessions,disk,netem").split(",")
TOOLS = os.environ.get(
    "TOOLS",
    "wdsmc,udpcast,uftp,ceiling,ceiling-gso,ceiling-write,rpc-checksum,rpc-hash,rpc-sign",
).split(",")
SIGN_SIZE = parse_size(os.environ.get("SIGN_SIZE", "64M"))
# Authenticated runs log in as this account (the password goes through a file, never argv).
RPC_PORT = 5040
RPC_USER = "BENCH\\runner"
RPC_PASSWORD = "bench password"
REPEAT = max(1, int(os.environ.get("REPEAT", "7")))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def pick_work():
    if os.environ.get("WORK"):
        return os.environ["WORK"]
    # tmpfs keeps the disk out of a data-path comparison when there is room for it.
    # Source, output and the plain-write pair; four sources and outputs for the sessions.
    need = max(3 * SIZE, 8 * SESSION_SIZE, 2 * RECEIVERS * NET_SIZE) + (1 << 30)
    if os.path.isdir("/dev/shm") and free_bytes("/dev/shm") > need:
        return "/dev/shm/wdsmc-bench"
    return os.path.join(ROOT, "target/bench")


def make_file(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    log(f"creating {path} ({size} bytes of pseudo-random data)")
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            # Vary each MiB so no block repeats its neighbour.
            piece = (i.to_bytes(8, "little") + chunk[8:])[: min(left, len(chunk))]
            f.write(piece)
            left -= len(piece)
            i += 1


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def proc_cpu(pid):
    """utime+stime of a live process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm(pid):
    """Peak RSS of a live process, bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Child:
    """A started process; wait() collects its own rusage (CPU, peak RSS)."""

    def __init__(self, cmd, stdout=subprocess.DEVNULL, stderr=None, stdin=subprocess.DEVNULL,
                 watch_rss=True):
        self.cmd = cmd
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=stdin)
        self.pid = self.proc.pid
        self.ended = None
        self.cpu = None
        self.rss = None
        self.status = None
        self.hwm = 0
        # ru_maxrss of a child forked from this Python process counts Python's own pages
        # from before exec; VmHWM of the exec'd image is the honest peak. Not watched where
        # it is not reported (20 receivers' watchers would take CPU from the run itself).
        if watch_rss:
            self._watch = threading.Thread(target=self._watch_hwm, daemon=True)
            self._watch.start()

    def _watch_hwm(self):
        while self.status is None:
            try:
                self.hwm = max(self.hwm, proc_hwm(self.pid))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
            time.sleep(0.02)

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.ended = time.monotonic()
                self.status = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.status
                self.cpu = ru.ru_utime + ru.ru_stime
                self.rss = self.hwm
                return self.status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.cmd[0]} still running after {timeout} s")
            time.sleep(0.005)

    def stop(self):
        if self.status is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.wait(timeout=10)
            except (ProcessLookupError, TimeoutError):
                self.proc.kill()
                self.wait()


def holds_data(path):
    """Whether the file at `path` holds written data. SEEK_DATA, not the allocated block count:
    space a downloader reserves up front (fallocate) is allocated but reads as a hole."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.lseek(fd, 0, os.SEEK_DATA)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class FirstByte:
    """Polls a folder until any file in it holds written data (sparse- and fallocate-aware),
    from a thread."""

    def __init__(self, folder):
        self.folder = folder
        self.at = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop and self.at is None:
            try:
                for entry in os.scandir(self.folder):
                    if entry.is_file() and holds_data(entry.path):
                        self.at = time.monotonic()
                        break
            except FileNotFoundError:
                pass
            time.sleep(0.001)

    def done(self):
        self._stop = True
        self._thread.join()
        return self.at


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def plain_write(src, folder, fsync=False):
    """`dd bs=1M` of `src` into `folder`, the filesystem the paired run writes to, right before
    that run: how fast this machine writes those bytes there at that moment. Returns MB/s."""
    out = os.path.join(folder, "plain-write.bin")
    cmd = ["dd", f"if={src}", f"of={out}", "bs=1M", "status=none"]
    if fsync:
        cmd.append("conv=fsync")
    started = time.monotonic()
    subprocess.run(cmd, check=True)
    seconds = time.monotonic() - started
    size = os.path.getsize(out)
    os.unlink(out)
    return size / MB / seconds


def result_event(logfile):
    """The `result` event of a `wdsmc get --progress json` log, or None."""
    try:
        with open(logfile) as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "result":
            return event
    return None


class Result:
    def __init__(self, name):
        self.name = name
        self.mbps = None
        # Seconds the MB/s figure was measured over (first byte to receiver exit).
        self.span = None
        # MB/s of the plain write (dd) of the same bytes to the same filesystem just before.
        self.pair_mbps = None
        # wdsmc's own figure: seconds from the last block to the end (final sync, rename).
        self.finish = None
        # Every run behind a median row, for the steadiness table.
        self.runs = None
        self.wall = None
        self.recv_cpu_gb = None
        self.send_cpu_gb = None
        self.recv_rss = None
        self.send_rss = None
        self.ttfb = None
        self.sha = "-"
        self.note = ""


def finish(res, size, start, first, done, recv_cpu, send_cpu, out_path, want_sha):
    res.wall = done - start
    span = done - (first if first is not None else start)
    res.span = span if span > 0 else None
    res.mbps = size / MB / span if span > 0 else None
    res.recv_cpu_gb = recv_cpu / (size / GB)
    res.send_cpu_gb = send_cpu / (size / GB) if send_cpu is not None else None
    res.ttfb = (first - start) if first is not None else None
    if out_path is not None:
        if not os.path.exists(out_path):
            res.sha = "MISSING"
        else:
            res.sha = "ok" if sha256(out_path) == want_sha else "MISMATCH"
            os.unlink(out_path)


# --------------------------------------------------------------------------- loopback


def server_cmd(src_dir, listen, groups, msi_port=5041, binary=WDSMC):
    cmd = [binary, "serve", "--namespace", f"bench={src_dir}", "--listen", listen,
           "--msi-port", str(msi_port), "--group-range", groups]
    if BLOCK_SIZE:
        cmd += ["--block-size", BLOCK_SIZE]
    return cmd


def start_server(cmd, logfile, netns=None):
    """Start `wdsmc serve` and wait until it logs that it listens (on RPC too when asked to):
    a fixed pause was once shorter than making the signing key, and `get` was refused."""
    server = Child(cmd, stdout=open(logfile, "w"), stderr=subprocess.STDOUT)
    marker = "RPC listener on" if "--rpc-port" in cmd else "server listening on"
    deadline = time.monotonic() + 60
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"wdsmc serve exited early; see {logfile}")
        with open(logfile, errors="replace") as f:
            if marker in f.read():
                return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"wdsmc serve logged no {marker!r} within 60 s; see {logfile}")
        time.sleep(0.02)


def get_cmd(server, out, iface, netns=None, binary=WDSMC, obj="in.bin", progress="none"):
    cmd = [binary, "get", "--server", server, "--namespace", "bench", "--object", obj,
           "--interface", iface, "-o", out, "--force"]
    # JSON progress (about a line a second) carries the result's finish_ms; otherwise quiet.
    cmd += ["--progress", "json"] if progress == "json" else ["--progress", "none", "-q"]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    return cmd


def rpc_args(work, mode):
    """Extra `serve` and `get` arguments for authenticated initiation in packet mode `mode`."""
    accounts = os.path.join(work, "accounts.txt")
    password = os.path.join(work, "password.txt")
    with open(accounts, "w") as f:
        f.write(f"{RPC_USER}:{RPC_PASSWORD}\n")
    with open(password, "w") as f:
        f.write(RPC_PASSWORD + "\n")
    serve = ["--accounts", accounts, "--rpc-port", str(RPC_PORT), "--security-mode", mode]
    get = ["--user", RPC_USER, "--password-file", password, "--rpc-port", str(RPC_PORT)]
    return serve, get


def run_wdsmc(work, src, want_sha, size, label="wdsmc", binary=WDSMC, rpc_mode=None,
              fsync_pair=False):
    res = Result(label)
    out_dir = fresh_dir(os.path.join(work, "out-wdsmc"))
    res.pair_mbps = plain_write(src, work, fsync=fsync_pair)
    serve_extra, get_extra = rpc_args(work, rpc_mode) if rpc_mode else ([], [])
    server = start_server(server_cmd(os.path.dirname(src), "127.0.0.1", "239.255.80.0/24",
                                     binary=binary) + serve_extra,
                          os.path.join(work, "serve.log"))
    try:
        # A first, untimed transfer would warm the page cache like the other tools' runs.
        cpu0 = proc_cpu(server.pid)
        probe = FirstByte(out_dir)
        get_log = os.path.join(work, "get.log")
        get = Child(get_cmd("127.0.0.1", os.path.join(out_dir, "in.bin"), "127.0.0.1",
                            binary=binary, progress="json") + get_extra,
                    stderr=open(get_log, "w"))
        get.wait(timeout=600)
        first = probe.done()
        send_cpu = proc_cpu(server.pid) - cpu0
        res.send_rss = proc_hwm(server.pid)
        if get.status != 0:
            res.note = f"get exit {get.status}"
        event = result_event(get_log)
        if event and "finish_ms" in event:
            res.finish = event["finish_ms"] / 1000
        finish(res, size, get.started, first, get.ended, get.cpu, send_cpu,
               os.path.join(out_dir, "in.bin"), want_sha)
        res.recv_rss = get.rss
    finally:
        server.stop()
    return res


def run_udpcast(work, src, want_sha, size):
    res = Result("udpcast --full-duplex")
    out_dir = fresh_dir(os.path.join(work, "out-udpcast"))
    res.pair_mbps = plain_write(src, work)
    out = os.path.join(out_dir, "in.bin")
    errlog = open(os.path.join(work, "udpcast.log"), "w")
    recv = Child(["udp-receiver", "--interface", "lo", "--mcast-rdv-address", "239.255.78.1",
                  "--portbase", "9000", "--file", out, "--nokbd"], stderr=errlog)
    time.sleep(0.3)
    probe = FirstByte(out_dir)
    send = Child(["udp-sender", "--interface", "lo", "--mcast-rdv-address", "239.255.78.1",
                  "--mcast-data-address", "239.255.78.2", "--portbase", "9000", "--file", src,
                  "--nokbd", "--min-receivers", "1", "--no-progress", "--full-duplex",
                  "--nopointopoint"], stderr=errlog)
    send.wait(timeout=600)
    recv.wait(timeout=60)
    first = probe.done()
    if recv.status != 0 or send.status != 0:
        res.note = f"exit {recv.status}/{send.status}"
    finish(res, size, send.started, first, max(recv.ended, send.ended), recv.cpu, send.cpu,
           out, want_sha)
    res.recv_rss, res.send_rss = recv.rss, send.rss
    return res


def run_uftp(work, src, want_sha, size):
    res = Result("uftp -R -1")
    out_dir = fresh_dir(os.path.join(work, "out-uftp"))
    res.pair_mbps = plain_write(src, work)
    errlog = open(os.path.join(work, "uftp.log"), "w")
    daemon = Child(["uftpd", "-d", "-I", "lo", "-M", "239.255.79.1", "-D", out_dir],
                   stderr=errlog, stdout=errlog)
    time.sleep(0.5)
    try:
        cpu0 = proc_cpu(daemon.pid)
        probe = FirstByte(out_dir)
        send = Child(["uftp", "-I", "lo", "-M", "239.255.79.1", "-P", "239.255.79.2",
                      "-R", "-1", src], stderr=errlog, stdout=errlog)
        send.wait(timeout=600)
        first = probe.done()
        recv_cpu = proc_cpu(daemon.pid) - cpu0
        res.recv_rss = proc_hwm(daemon.pid)
        if send.status != 0:
            res.note = f"uftp exit {send.status}"
        finish(res, size, send.started, first, send.ended, recv_cpu, send.cpu,
               os.path.join(out_dir, os.path.basename(src)), want_sha)
        res.send_rss = send.rss
    finally:
        daemon.stop()
    return res


def ceiling_name(datagram, batched=False, write=False):
    return (f"raw multicast {datagram} B" + (", GSO+GRO" if batched else "")
            + (", writing the file" if write else ""))


def run_ceiling(work, size, datagram, batched=False, src=None):
    """Plain: one datagram per send and receive call. Batched: UDP GSO runs on send and GRO
    runs on receive, the kernel paths wdsmc itself uses (same datagrams on the wire). With
    `src`, the receiver also writes every payload to a file beside wdsmc's output, in wdsmc's
    write sizes, and syncs it (paired with a plain write of `src` like the tools)."""
    res = Result(ceiling_name(datagram, batched, src is not None))
    flag = ["gro"] if batched else []
    out = None
    if src is not None:
        out_dir = fresh_dir(os.path.join(work, "out-ceiling"))
        out = os.path.join(out_dir, "blast.bin")
        res.pair_mbps = plain_write(src, work)
        flag.append(f"write={out}:{datagram}")
    recv = Child([BLAST, "recv", "239.255.82.1:9100", "127.0.0.1"] + flag,
                 stdout=subprocess.PIPE)
    ready = recv.proc.stdout.readline().strip()
    if ready != b"ready":
        raise RuntimeError("mcast_blast receiver did not start")
    send = Child([BLAST, "send", "239.255.82.1:9100", "127.0.0.1", str(datagram), str(size)]
                 + (["gso"] if batched else []))
    send.wait(timeout=600)
    line = recv.proc.stdout.readline().split()
    recv.wait(timeout=30)
    got, seconds = int(line[0]), float(line[1])
    res.mbps = got / MB / seconds if seconds > 0 else None
    res.span = seconds if seconds > 0 else None
    if out is not None:
        os.unlink(out)
    res.wall = send.ended - send.started
    res.recv_cpu_gb = recv.cpu / (got / GB) if got else None
    res.send_cpu_gb = send.cpu / (size / GB)
    res.recv_rss, res.send_rss = recv.rss, send.rss
    res.sha = "n/a"
    payload = size if src is None else size * (datagram - WDSMC_DATA_OVERHEAD) // datagram
    res.note = f"{100.0 * got / payload:.1f}% delivered"
    return res


def median_run(runs):
    """The run with the median MB/s; a failed check in any run is carried into it."""
    ordered = sorted(runs, key=lambda r: r.mbps or 0.0)
    chosen = ordered[len(ordered) // 2]
    bad = [r.sha for r in runs if r.sha not in ("ok", "n/a")]
    if bad:
        chosen.sha = bad[0]
    if len(runs) > 1:
        speeds = [r.mbps or 0.0 for r in runs]
        spread = f"median of {len(runs)}, {min(speeds):.0f}-{max(speeds):.0f} MB/s"
        chosen.note = f"{chosen.note}; {spread}" if chosen.note else spread
    chosen.runs = runs
    return chosen


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


class Steadiness:
    """One row's runs against their plain-write pairs. Times are compared as ratios of MB/s
    (same bytes), so `slowest` is the slowest run's time over the median run's."""

    def __init__(self, row):
        runs = [r for r in row.runs or [] if r.mbps and r.pair_mbps]
        self.name = row.name
        self.count = len(runs)
        if not runs:
            return
        speeds = [r.mbps for r in runs]
        pairs = [r.pair_mbps for r in runs]
        self.median, self.min = median(speeds), min(speeds)
        self.pair_median, self.pair_min = median(pairs), min(pairs)
        self.slowest = self.median / self.min
        self.pair_slowest = self.pair_median / self.pair_min
        self.relative = median([r.pair_mbps / r.mbps for r in runs])
        finishes = [r.finish for r in runs if r.finish is not None]
        self.finish = median(finishes) if finishes else None

    def row(self):
        return (f"| {self.name} | {self.count} | {self.median:.0f} ({self.min:.0f}) | "
                f"{self.slowest:.2f} | {self.pair_median:.0f} ({self.pair_min:.0f}) | "
                f"{self.pair_slowest:.2f} | {self.slowest - self.pair_slowest:+.2f} | "
                f"{self.relative:.2f} | {fmt(self.finish and self.finish * 1000, '.0f')} |")


def steadiness_table(results, pair_label="dd bs=1M"):
    rows = [Steadiness(r) for r in results]
    rows = [r for r in rows if r.count]
    if not rows:
        return ""
    out = [f"| tool | runs | MB/s median (min) | slowest / median time | {pair_label} MB/s "
           f"median (min) | its slowest / median | difference | time / its pair's "
           f"(median) | last block to exit ms (median) |",
           "|---|---|---|---|---|---|---|---|---|"]
    out += [r.row() for r in rows]
    return "\n".join(out)


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(results):
    head = ("tool", "MB/s", "wall s", "recv CPU s/GB", "send CPU s/GB", "recv RSS MiB",
            "send RSS MiB", "TTFB s", "SHA-256", "note")
    rows = [head]
    for r in results:
        rows.append((r.name, fmt(r.mbps, ".0f"), fmt(r.wall, ".2f"), fmt(r.recv_cpu_gb, ".2f"),
                     fmt(r.send_cpu_gb, ".2f"),
                     fmt(r.recv_rss and r.recv_rss / 2**20, ".1f"),
                     fmt(r.send_rss and r.send_rss / 2**20, ".1f"), fmt(r.ttfb, ".3f"), r.sha,
                     r.note))
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows[1:]:
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def profile_loopback(work):
    src_dir = fresh_dir(os.path.join(work, "src"))
    src = os.path.join(src_dir, "in.bin")
    make_file(src, SIZE)
    want = sha256(src)
    sign_dir = fresh_dir(os.path.join(work, "src-sign"))
    sign_src = os.path.join(sign_dir, "in.bin")
    sign_size = min(SIGN_SIZE, SIZE)
    if "rpc-sign" in TOOLS:
        make_file(sign_src, sign_size)
    sign_want = sha256(sign_src) if "rpc-sign" in TOOLS else None
    # Warm the page cache for every tool alike.
    results = []
    block = int(parse_size(BLOCK_SIZE)) if BLOCK_SIZE else DEFAULT_BLOCK
    datagram = block + WDSMC_DATA_OVERHEAD
    runners = {
        "wdsmc": lambda: run_wdsmc(work, src, want, SIZE),
        "wdsmc-baseline": lambda: run_wdsmc(work, src, want, SIZE, label="wdsmc (baseline)",
                                            binary=BASELINE),
        "udpcast": lambda: run_udpcast(work, src, want, SIZE),
        "uftp": lambda: run_uftp(work, src, want, SIZE),
        "ceiling": lambda: run_ceiling(work, SIZE, datagram),
        "ceiling-gso": lambda: run_ceiling(work, SIZE, datagram, batched=True),
        "ceiling-write": lambda: run_ceiling(work, SIZE, datagram, batched=True, src=src),
        "rpc-checksum": lambda: run_wdsmc(work, src, want, SIZE, label="wdsmc rpc checksum",
                                          rpc_mode="checksum"),
        "rpc-hash": lambda: run_wdsmc(work, src, want, SIZE, label="wdsmc rpc hash",
                                      rpc_mode="hash"),
        "rpc-sign": lambda: run_wdsmc(work, sign_src, sign_want, sign_size,
                                      label=f"wdsmc rpc sign ({sign_size >> 20} MiB)",
                                      rpc_mode="sign"),
    }
    for tool in TOOLS:
        if tool not in runners:
            continue
        # The baseline's runs alternate with this build's, so both see the same machine.
        group = [tool, "wdsmc-baseline"] if tool == "wdsmc" and BASELINE else [tool]
        runs = {name: [] for name in group}
        for i in range(REPEAT):
            for name in group:
                log(f"--- {name} (run {i + 1} of {REPEAT})")
                runs[name].append(runners[name]())
                log(table(runs[name][-1:]))
        results.extend(median_run(runs[name]) for name in group)
    shutil.rmtree(src_dir, ignore_errors=True)
    shutil.rmtree(sign_dir, ignore_errors=True)
    return results, datagram


def profile_sessions(work):
    """One server, N concurrent sessions on N different objects, one client each."""
    src_dir = fresh_dir(os.path.join(work, "src-sessions"))
    objects = [f"obj{i}.bin" for i in range(4)]
    wants = {}
    for name in objects:
        make_file(os.path.join(src_dir, name), SESSION_SIZE)
        wants[name] = sha256(os.path.join(src_dir, name))
    server = start_server(server_cmd(src_dir, "127.0.0.1", "239.255.83.0/24"),
                          os.path.join(work, "serve-sessions.log"))
    rows = []
    try:
        for count in (1, 2, 4):
            runs = []
            for i in range(REPEAT):
                log(f"--- {count} concurrent session(s) (run {i + 1} of {REPEAT})")
                out_root = fresh_dir(os.path.join(work, "out-sessions"))
                cpu0 = proc_cpu(server.pid)
                probe = FirstByte(out_root)
                gets = [Child(get_cmd("127.0.0.1", os.path.join(out_root, name), "127.0.0.1",
                                      obj=name),
                              stderr=open(os.path.join(work, f"get-session{k}.log"), "w"),
                              watch_rss=False)
                        for k, name in enumerate(objects[:count])]
                for g in gets:
                    g.wait(timeout=600)
                send_cpu = proc_cpu(server.pid) - cpu0
                # From the first byte of any session to the last exit, like the MB/s above:
                # the initiation and the first query round (about 0.3 s) are not throughput.
                first = probe.done() or min(g.started for g in gets)
                wall = max(g.ended for g in gets) - first
                ok = all(g.status == 0 for g in gets) and all(
                    sha256(os.path.join(out_root, name)) == wants[name]
                    for name in objects[:count])
                total = count * SESSION_SIZE
                cpu = sum(g.cpu for g in gets) + send_cpu
                runs.append((total / MB / wall, cpu / (total / GB), cpu / wall, ok))
                log(f"{count} session(s): {total / MB / wall:.0f} MB/s aggregate, "
                    f"{cpu / (total / GB):.2f} s CPU per GB (both ends), "
                    f"{cpu / wall:.2f} CPUs busy, {'ok' if ok else 'FAILED'}")
                shutil.rmtree(out_root, ignore_errors=True)
            speeds = [r[0] for r in runs]
            rows.append((count, median(speeds), min(speeds), max(speeds),
                         median([r[1] for r in runs]), median([r[2] for r in runs]),
                         all(r[3] for r in runs)))
    finally:
        server.stop()
        shutil.rmtree(src_dir, ignore_errors=True)
    return rows


def profile_disk(work):
    """Output on the work folder's real filesystem: wdsmc against `dd conv=fsync`, each wdsmc
    run right after its pair, so both see the same disk and page cache."""
    src_dir = fresh_dir(os.path.join(work, "src-disk"))
    src = os.path.join(src_dir, "in.bin")
    make_file(src, DISK_SIZE)
    want = sha256(src)
    disk = fresh_dir(os.path.join(ROOT, "target/bench-disk"))
    names = ["wdsmc"] + (["wdsmc-baseline"] if BASELINE else [])
    runs = {name: [] for name in names}
    try:
        for i in range(REPEAT):
            for name in names:
                log(f"--- {name}, output on disk (run {i + 1} of {REPEAT})")
                label = "wdsmc, output on disk" + (" (baseline)" if name != "wdsmc" else "")
                binary = WDSMC if name == "wdsmc" else BASELINE
                runs[name].append(run_wdsmc(disk, src, want, DISK_SIZE, label=label,
                                            binary=binary, fsync_pair=True))
                log(table(runs[name][-1:]))
    finally:
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(src_dir, ignore_errors=True)
    return [median_run(runs[name]) for name in names], filesystem_of(ROOT)


def filesystem_of(path):
    """The filesystem type holding `path`, from /proc/mounts (longest matching mount)."""
    best = ("", "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                mount, kind = fields[1], fields[2]
                if (path == mount or path.startswith(mount.rstrip("/") + "/")) and \
                        len(mount) > len(best[0]):
                    best = (mount, kind)
    except OSError:
        pass
    return best[1]


def big_object_check():
    """wdsmc with a large object written to disk, for the flat-RSS check. Run last: the
    gigabytes of page cache it leaves for writeback would slow whatever ran after it."""
    extra = []
    if BIG_SIZE > 0 and "wdsmc" in TOOLS:
        log(f"--- wdsmc, large object ({BIG_SIZE} bytes, sparse source, output on disk)")
        big_work = fresh_dir(os.path.join(ROOT, "target/bench-big"))
        big_src_dir = fresh_dir(os.path.join(big_work, "src"))
        big_src = os.path.join(big_src_dir, "in.bin")
        with open(big_src, "wb") as f:
            f.truncate(BIG_SIZE)
        big_want = hashlib.sha256()
        zeros = bytes(1 << 22)
        for _ in range(BIG_SIZE // len(zeros)):
            big_want.update(zeros)
        big_want.update(bytes(BIG_SIZE % len(zeros)))
        r = run_wdsmc(big_work, big_src, big_want.hexdigest(), BIG_SIZE,
                      label=f"wdsmc {BIG_SIZE >> 30} GiB (disk)")
        extra.append(r)
        log(table([r]))
        shutil.rmtree(big_work, ignore_errors=True)
    return extra


# --------------------------------------------------------------------------- netem


def sh(*cmd):
    subprocess.run(cmd, check=True)


def netem_setup(loss):
    """veth wbs (this ns, 10.213.0.1) <-> wbc (ns wdsbc, 10.213.0.2), 1 Gbit/s netem on wbs."""
    netem_teardown()
    os.makedirs("/run/netns", exist_ok=True)
    if not os.path.ismount("/run/netns"):
        # Private mount namespace (run.sh): the bind mounts of `ip netns add` stay here.
        sh("mount", "-t", "tmpfs", "wdsmc-bench", "/run/netns")
    sh("ip", "netns", "add", "wdsbc")
    sh("ip", "link", "add", "wbs", "mtu", str(NET_MTU), "type", "veth", "peer", "name", "wbc",
       "mtu", str(NET_MTU))
    sh("ip", "link", "set", "wbc", "netns", "wdsbc")
    sh("ip", "addr", "add", "10.213.0.1/24", "dev", "wbs")
    sh("ip", "link", "set", "wbs", "up")
    sh("ip", "-n", "wdsbc", "link", "set", "lo", "up")
    sh("ip", "-n", "wdsbc", "addr", "add", "10.213.0.2/24", "dev", "wbc")
    sh("ip", "-n", "wdsbc", "link", "set", "wbc", "up")
    netem = ["tc", "qdisc", "add", "dev", "wbs", "root", "netem", "rate", "1gbit",
             "limit", "100000"]
    if loss:
        netem += ["loss", f"{loss}%"]
    if subprocess.run(netem, stderr=subprocess.DEVNULL).returncode == 0:
        return "netem rate 1gbit" + (f" loss {loss}%" if loss else "")
    # Kernels without sch_netem (no modules here): a token bucket for the rate, and random
    # drops of the session's multicast traffic on the client's input for the loss.
    sh("tc", "qdisc", "add", "dev", "wbs", "root", "tbf", "rate", "1gbit", "burst", "512kb",
       "latency", "50ms")
    how = "tbf rate 1gbit"
    if loss:
        sh("ip", "netns", "exec", "wdsbc", "nft", "add", "table", "ip", "wdsbench")
        sh("ip", "netns", "exec", "wdsbc", "nft", "add", "chain", "ip", "wdsbench", "in",
           "{ type filter hook prerouting priority 0; }")
        sh("ip", "netns", "exec", "wdsbc", "nft", "add", "rule", "ip", "wdsbench", "in", "ip",
           "daddr", "239.255.81.0/24", "numgen", "random", "mod", "100", "<", str(loss), "drop")
        how += f" + nft random drop {loss}% of multicast"
    return how


def server_summary(logfile):
    """Data rounds and repair counts from a wdsmc serve log, to explain a slow run."""
    try:
        with open(logfile) as f:
            lines = f.readlines()
    except OSError:
        return "no log"
    rounds = sum("data round started" in line for line in lines)
    ended = [line.split("): ", 1)[-1].strip() for line in lines if "session ended" in line]
    return f"{rounds} data round(s); " + ("; ".join(ended) or "no session end logged")


def netem_teardown():
    subprocess.run(["ip", "link", "del", "wbs"], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "del", "wdsbc"], stderr=subprocess.DEVNULL)


def netem_run(work, src_dir, receivers, label, rpc_mode=None):
    out_root = fresh_dir(os.path.join(work, "out-net"))
    serve_extra, get_extra = rpc_args(work, rpc_mode) if rpc_mode else ([], [])
    server = start_server(server_cmd(src_dir, "10.213.0.1", "239.255.81.0/24") + serve_extra,
                          os.path.join(work, "serve-net.log"))
    try:
        gets = []
        for i in range(receivers):
            out_dir = fresh_dir(os.path.join(out_root, f"r{i}"))
            gets.append(Child(get_cmd("10.213.0.1", os.path.join(out_dir, "in.bin"),
                                      "10.213.0.2", netns="wdsbc") + get_extra,
                              stderr=open(os.path.join(work, f"get-net{i}.log"), "w"),
                              watch_rss=False))
        for g in gets:
            g.wait(timeout=900)
        start = min(g.started for g in gets)
        end = max(g.ended for g in gets)
        failed = [g.status for g in gets if g.status != 0]
    finally:
        server.stop()
    ok = sum(os.path.exists(os.path.join(out_root, f"r{i}", "in.bin")) for i in range(receivers))
    shutil.rmtree(out_root, ignore_errors=True)
    spread = max(g.started for g in gets) - start
    log(f"{label}: {end - start:.2f} s, {ok}/{receivers} files, failures {failed}; last receiver "
        f"started after {spread:.2f} s; server: {server_summary(os.path.join(work, 'serve-net.log'))}")
    return end - start, ok == receivers and not failed


def profile_netem(work):
    src_dir = fresh_dir(os.path.join(work, "src-net"))
    make_file(os.path.join(src_dir, "in.bin"), NET_SIZE)
    rows = []

    def repeated(receivers, label, rpc_mode=None):
        runs = [netem_run(work, src_dir, receivers, f"{label} (run {i + 1} of {REPEAT})",
                          rpc_mode)
                for i in range(REPEAT)]
        times = [secs for secs, _ in runs]
        return (median(times), min(times), max(times)), all(ok for _, ok in runs)

    try:
        how0 = netem_setup(0)
        one, ok1 = repeated(1, "1 receiver, 0% loss")
        hashed, okh = repeated(1, "1 receiver, 0% loss, HASH over RPC", "hash")
        many, okn = repeated(RECEIVERS, f"{RECEIVERS} receivers, 0% loss")
        how5 = netem_setup(5)
        lossy, ok5 = repeated(1, "1 receiver, 5% loss")
    finally:
        netem_teardown()
        shutil.rmtree(src_dir, ignore_errors=True)
    rows.append(("1 receiver, 0 % loss", one, ok1))
    rows.append(("1 receiver, 0 % loss, HASH (authenticated over RPC)", hashed, okh))
    rows.append(("1 receiver, 5 % loss", lossy, ok5))
    rows.append((f"{RECEIVERS} receivers, 0 % loss", many, okn))
    return rows, lossy[0] / one[0], many[0] / one[0], (how0, how5)


def target(text, met):
    return f"{text}: {'met' if met else 'NOT met'}"


def main():
    if os.environ.get("WDSMC_BENCH_NETNS") != "1":
        sys.exit("bench.py: run it through tests/bench/run.sh (it needs a throwaway netns)")
    work = pick_work()
    os.makedirs(work, exist_ok=True)
    log(f"work folder: {work}; SIZE={SIZE} NET_SIZE={NET_SIZE} RECEIVERS={RECEIVERS} "
        f"REPEAT={REPEAT}")
    if REPEAT < 7:
        log(f"REPEAT={REPEAT}: a quick look; the figures to quote take at least 7 runs")
    report = []
    loopback = profile_loopback(work) if "loopback" in PROFILES else None
    sessions = profile_sessions(work) if "sessions" in PROFILES else None
    disk = profile_disk(work) if "disk" in PROFILES else None
    netem = None
    netem_error = None
    if "netem" in PROFILES:
        try:
            netem = profile_netem(work)
        except (subprocess.CalledProcessError, OSError, TimeoutError) as e:
            netem_error = e
    if loopback:
        results, datagram = loopback
        extra = big_object_check()
        by = {r.name: r for r in results}
        report.append(f"## Loopback multicast, {SIZE / 2**20:.0f} MiB file, {os.cpu_count()} CPUs"
                      f" (MB = 10^6 bytes; MB/s from first byte to receiver exit; median run"
                      f" of {REPEAT})\n")
        report.append(table(results + extra))
        w = by.get("wdsmc")
        u = by.get("udpcast --full-duplex")
        c = by.get(ceiling_name(datagram))
        g = by.get(ceiling_name(datagram, batched=True))
        cw = by.get(ceiling_name(datagram, batched=True, write=True))
        report.append("\nSteadiness: every run that writes a file was paired with `dd bs=1M` of"
                      " the same bytes to the same filesystem right before it. `slowest /"
                      " median` is the slowest run's time over the median run's; the"
                      " difference is the tool's minus its pairs'.\n")
        report.append(steadiness_table(results))
        report.append("")
        if w and w.mbps:
            if u and u.mbps:
                report.append(target(f"wdsmc / udpcast --full-duplex: {w.mbps / u.mbps:.2f}x"
                                     " (target >= 5x)", w.mbps / u.mbps >= 5))
            if c and c.mbps:
                report.append(f"wdsmc / raw ceiling at {datagram} B: {w.mbps / c.mbps:.2f}")
            if g and g.mbps:
                report.append(f"wdsmc / raw GSO+GRO ceiling at {datagram} B: {w.mbps / g.mbps:.2f}")
            if cw and cw.mbps:
                report.append(target(f"wdsmc / GSO+GRO ceiling that writes the file:"
                                     f" {w.mbps / cw.mbps:.2f} (target >= 0.70)",
                                     w.mbps / cw.mbps >= 0.70))
            if w.recv_cpu_gb is not None:
                report.append(target(f"wdsmc receiver CPU: {w.recv_cpu_gb:.2f} s per GB"
                                     " (target <= 0.7)", w.recv_cpu_gb <= 0.7))
            steady = Steadiness(w)
            if steady.count:
                gap = steady.slowest - steady.pair_slowest
                report.append(target(f"wdsmc slowest / median {steady.slowest:.2f} against its"
                                     f" pairs' {steady.pair_slowest:.2f} ({gap:+.2f}; target"
                                     " within 0.15)", gap <= 0.15))
        rc = by.get("wdsmc rpc checksum")
        rh = by.get("wdsmc rpc hash")
        if w and rc and w.ttfb is not None and rc.ttfb is not None:
            report.append(f"time to first byte, RPC initiation - UDP initiation: "
                          f"{(rc.ttfb - w.ttfb) * 1000:+.0f} ms")
        if rc and rh and rc.mbps and rh.mbps:
            report.append(f"HASH / CHECKSUM throughput (both over RPC): {rh.mbps / rc.mbps:.2f}")
    if sessions:
        report.append(f"\n## Concurrent sessions: one server, N objects of"
                      f" {SESSION_SIZE / 2**20:.0f} MiB, one client each, loopback,"
                      f" {os.cpu_count()} CPUs (median of {REPEAT})\n")
        report.append("| sessions | aggregate MB/s median (min-max) | CPU s per GB, both ends |"
                      " CPUs busy | all files ok |\n|---|---|---|---|---|")
        for count, med, low, high, cpu_gb, busy, ok in sessions:
            report.append(f"| {count} | {med:.0f} ({low:.0f}-{high:.0f}) | {cpu_gb:.2f} |"
                          f" {busy:.2f} | {'yes' if ok else 'NO'} |")
    if disk:
        rows, fs = disk
        report.append(f"\n## Output on disk ({fs}, the work folder's filesystem),"
                      f" {DISK_SIZE / 2**20:.0f} MiB, median of {REPEAT}\n")
        report.append(table(rows))
        report.append("")
        report.append(steadiness_table(rows, pair_label="dd bs=1M conv=fsync"))
        steady = Steadiness(rows[0])
        if steady.count:
            share = steady.median / steady.pair_median
            report.append("")
            report.append(target(f"wdsmc / dd conv=fsync (medians): {share:.2f}"
                                 " (target >= 0.90)", share >= 0.90))
            if steady.finish is not None:
                report.append(f"wdsmc, last block to exit (final sync and rename), median:"
                              f" {steady.finish * 1000:.0f} ms")
    if netem_error is not None:
        report.append(f"\nveth profile failed: {netem_error}")
        print("\n".join(report), flush=True)
        sys.exit(1)
    if netem:
        rows, loss_ratio, many_ratio, hows = netem
        report.append(f"\n## veth 1 Gbit/s ({hows[0]}; lossy run: {hows[1]}), MTU {NET_MTU},"
                      f" {NET_SIZE / 2**20:.0f} MiB, wdsmc, median of {REPEAT}\n")
        report.append("| case | completion s median (min-max) | all files ok |\n|---|---|---|")
        for name, (secs, low, high), ok in rows:
            report.append(f"| {name} | {secs:.2f} ({low:.2f}-{high:.2f}) |"
                          f" {'yes' if ok else 'NO'} |")
        report.append(f"\n5 % loss / lossless: {loss_ratio:.2f}x")
        report.append(f"{RECEIVERS} receivers / 1 receiver: {many_ratio:.2f}x")
    if work.startswith("/dev/shm/"):
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(report), flush=True)


if __name__ == "__main__":
    main()
