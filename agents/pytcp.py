#!/usr/bin/env python3
"""netconform agent for PyTCP (PyPI `pmd-pytcp` 0.3.8), netconform-agent/1.2.

One file, two roles:

* the **agent** (no arguments): speaks netconform-agent/1.2 on stdin/stdout
  (docs/agent-protocol.md). It makes a private directory, starts the PyTCP daemon
  (`pytcpd`, the second role) in a child process forked once PyTCP is imported (no second
  interpreter; the agent's process group, which the harness kills), waits until it has opened
  the tap and listens, answers `hello`, then hands every call, query and control to the
  daemon and relays its answer. It never waits on the daemon without a deadline: a daemon
  that died (a Python traceback), hangs, or answers something that is not JSON gives that
  request an `error` quoting the daemon's last log lines, and every later request the same.
  At EOF on stdin it stops the daemon and removes its directory.
* the **daemon** (forked by the agent; by hand: `--daemon PYTCPD-ARGS...` with
  `NCF_PYTCP_DRIVER=PATH`): pytcpd itself, `pmd_pytcp.daemon.run_daemon` with pytcpd's own
  argument parser (`--interface`, `--mac-address`, `--ip4-address`,
  `--ip6-address`/`--no-ip6`, `--ipc-socket`), plus a control socket of netconform's
  (`NCF_PYTCP_DRIVER`) on the daemon's event loop. Its echo replies wait for its due timers
  (`echo_waits_for_due_timers`): the barrier's exact signal.

Why not `pytcpd` as installed, and not its client API for the socket calls:

* pytcpd dispatches on the interface name's first three letters (`tap`/`tun`); the harness's
  tap is `ncf<k>tap`. The daemon role calls the same `run_daemon` with the interface
  resolved by the same `stack.initialize_interface__tap`, whatever its name.
* pytcpd's socket IPC (0.3.8) cannot express what the checks ask: `connect` and `accept`
  block without a timeout and cannot be abandoned without desynchronising the control
  stream, the data bridge hides ECONNRESET (a reset stream just stalls) and reports a send
  done once it is in a socketpair, and there is no socket table (`ss`) nor route lookup.
  So the socket calls and state reads are made inside the daemon with PyTCP's own
  Berkeley-socket API (the `TcpSocket`/`UdpSocket` objects pytcpd's IPC session would make),
  and its control APIs (`sysctl`, `neighbor`, `route`) are called there too.

Errors are mapped to Linux errno names. What PyTCP cannot do is answered `unsupported`
with the reason; settings a check pins (NETCONFORM_SETTINGS, Linux sysctl names) are
applied through PyTCP's sysctls where one has the same meaning, and a check that pins one
PyTCP has no knob for is unsupported at its first request. The ARP checks' neighbour
timers and probe counts (`NeighbourParams`) go to PyTCP's `neighbor.*` sysctls, which take
whole seconds only: the harness scales them (profiles/pytcp.toml, `[arp.tick_nud]`), and
anything else is refused before a value is set.
"""
import errno
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque

STACK = "pytcp"
WANT_VERSION = "0.3.8"
INSTALL = f"pip install pmd-pytcp=={WANT_VERSION}"
MAJOR, MINOR = 1, 2
# How long the daemon may take to open the tap and listen (pure Python: ~1 s idle, more
# under load). The harness waits `timeout_ms` of its configuration for the hello.
START_TIMEOUT = 8.0
# How long a request may take inside the daemon beyond the call's own timeout.
REQUEST_MARGIN = 3.0
LOG_TAIL = 12

# Linux sysctls the checks pin, and what PyTCP does with them: a PyTCP sysctl of the same
# meaning (key, value conversion), or None when PyTCP has no such knob.
SETTINGS = {
    # RACK-TLP is always on in PyTCP (protocols/tcp/state/tcp__state__rack_tlp.py).
    "net.ipv4.tcp_early_retrans": None,
    # PyTCP has one retransmission budget, `tcp.retransmit.max_count` (consecutive
    # timeouts before the attempt is given up: protocols/tcp/tcp__constants.py:330-336,
    # session/tcp__session__retransmit.py:126-141), for a SYN-ACK and data alike. A check
    # that pins the SYN-ACK's retries has no data in flight, so there the budget is exactly
    # the SYN-ACK's; the report's environment says which sysctl took it.
    "net.ipv4.tcp_synack_retries": ("tcp.retransmit.max_count", int),
}


def log(msg):
    print(f"pytcp agent: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# The agent (supervisor) role.
# ------------------------------------------------------------------------------------------


class DaemonLog:
    """Reads the daemon's stdout and stderr (merged) on a thread: keeps the last lines,
    copies every line to our stderr, and notes the ready line."""

    def __init__(self, stream):
        self.tail = deque(maxlen=LOG_TAIL)
        self.ready = threading.Event()
        self.closed = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        # NCF_PYTCP_LOG=FILE: a copy of the daemon's whole log (with NCF_PYTCP_DEBUG=1, PyTCP's
        # own log channels too), for debugging an agent.
        copy = open(os.environ["NCF_PYTCP_LOG"], "a") if os.environ.get("NCF_PYTCP_LOG") else None
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if copy:
                copy.write(f"{os.getpid()} {line}\n")
                copy.flush()
            with self.lock:
                self.tail.append(line)
            print(f"pytcpd: {line}", file=sys.stderr, flush=True)
            if line.startswith("netconform driver ready"):
                self.ready.set()
        self.closed.set()

    def text(self):
        # The reader finishes when the daemon's output closes; give it a moment.
        self.closed.wait(0.3)
        with self.lock:
            lines = [l for l in self.tail if l.strip()]
        return " | ".join(lines[-LOG_TAIL:]) if lines else "(nothing logged)"

    def last_error(self):
        """The last line of a traceback (`ValueError: ...`), else the last line."""
        self.closed.wait(0.3)
        with self.lock:
            lines = [l for l in self.tail if l.strip()]
        for l in reversed(lines):
            if not l.startswith(" ") and ("Error" in l or "Exception" in l) and ":" in l:
                return l
        return lines[-1] if lines else "(nothing logged)"


class Supervisor:
    def __init__(self):
        self.env = os.environ
        self.dir = None
        self.daemon = None
        self.log = None
        self.driver = None
        self.rfile = None
        self.broken = None  # set once the daemon failed: every later request gets it
        self.version = "?"

    # -- start-up --------------------------------------------------------------------------

    def start(self):
        """Starts the daemon; None when it is up, else why not."""
        try:
            from importlib.metadata import version, PackageNotFoundError
            try:
                self.version = version("pmd-pytcp")
            except PackageNotFoundError:
                return f"pmd-pytcp is not installed for {sys.executable}: {INSTALL}"
        except ImportError:
            pass
        if self.version != WANT_VERSION:
            log(f"pmd-pytcp {self.version} installed; this agent was written for {WANT_VERSION}")
        if self.env.get("NETCONFORM_INTERFACE_KIND") != "tap":
            return "the PyTCP agent needs `kind = \"tap\"` (PyTCP opens a TAP device)"
        ipv4 = self.env.get("NETCONFORM_IPV4")
        if not ipv4:
            return "the PyTCP agent needs an IPv4 address (NETCONFORM_IPV4)"
        sweep_dead_dirs()
        self.dir = tempfile.mkdtemp(prefix=f"ncf-pytcp-{os.getpid()}-")
        ipc = os.path.join(self.dir, "pytcpd.sock")
        driver = os.path.join(self.dir, "driver.sock")
        argv = ["--interface", self.env["NETCONFORM_IFNAME"],
                "--mac-address", self.env["NETCONFORM_MAC"],
                "--ip4-address", ipv4,
                "--ipc-socket", ipc]
        ipv6 = self.env.get("NETCONFORM_IPV6")
        argv += ["--ip6-address", ipv6] if ipv6 else ["--no-ip6"]
        # Same process group as the agent (the harness kills the group); and dead with us.
        try:
            self.daemon = ForkedDaemon(argv, driver, self.dir)
        except ImportError as e:
            return f"cannot import PyTCP ({e}): {INSTALL}"
        self.log = DaemonLog(self.daemon.stdout)
        until = time.monotonic() + START_TIMEOUT
        while not self.log.ready.wait(0.02):
            if self.daemon.poll() is not None:
                return f"pytcpd exited ({self.status()}) while starting: {self.log.last_error()}; its log ends: {self.log.text()}"
            if time.monotonic() > until:
                return f"pytcpd did not open {self.env['NETCONFORM_IFNAME']} and listen within {START_TIMEOUT:.0f} s; its log ends: {self.log.text()}"
        self.driver = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.driver.connect(driver)
        except OSError as e:
            return f"cannot reach pytcpd's driver socket {driver}: {e}"
        self.rfile = self.driver.makefile("rb")
        return None

    def status(self):
        rc = self.daemon.poll() if self.daemon else None
        if rc is None:
            return "running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exit status {rc}"

    def stop(self):
        # Quick: the harness kills our process group 300 ms after it closed our stdin. The
        # directory first (its socket files are only names), then the daemon, which has
        # nothing to save.
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.driver is not None:
            try:
                self.driver.close()
            except OSError:
                pass
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()

    # -- requests --------------------------------------------------------------------------

    def fail(self, what):
        """The daemon failed during `what`: the error for this and every later request."""
        time.sleep(0.05)
        if self.daemon.poll() is None:
            # A hang or garbage: stop it so its state cannot leak into later requests.
            why = what
            self.daemon.kill()
            self.daemon.wait()
            self.broken = f"pytcpd {why}; its log ends: {self.log.text()}"
        else:
            self.broken = (f"pytcpd died ({self.status()}) during {what}: {self.log.last_error()}; "
                           f"its log ends: {self.log.text()}")
        return {"reply": "error", "message": self.broken}

    def forward(self, request, what):
        if self.broken:
            return {"reply": "error", "message": self.broken}
        wait = REQUEST_MARGIN + _own_wait(request)
        try:
            self.driver.sendall((json.dumps(request) + "\n").encode())
        except OSError:
            return self.fail(what)
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.fail(f"did not answer {what} within {wait:.1f} s")
            r, _, _ = select.select([self.driver], [], [], left)
            if r:
                break
        line = self.rfile.readline()
        if not line:
            return self.fail(what)
        try:
            reply = json.loads(line)
            if not isinstance(reply, dict) or reply.get("reply") not in (
                    "outcome", "answer", "ok", "unsupported", "error"):
                raise ValueError("not a reply")
        except ValueError:
            return self.fail(f"answered {what} with `{line[:80].decode(errors='replace')}`, which is not a driver reply")
        return reply

    def hello(self, request):
        if request.get("protocol") != "netconform-agent" or request.get("major") != MAJOR:
            return {"reply": "error", "message": f"this agent speaks netconform-agent/{MAJOR}"}
        why = self.start()
        if why:
            # The harness reports the refusal as the check's ERROR.
            return {"reply": "error", "message": why}
        environment = [
            f"pmd-pytcp = {self.version}",
            f"python = {sys.version.split()[0]}",
            f"tap = {self.env.get('NETCONFORM_IFNAME')}, MAC {self.env.get('NETCONFORM_MAC')} (pytcpd --mac-address)",
        ]
        reply = self.forward({"op": "environment"}, "environment")
        if reply.get("reply") == "answer":
            environment += reply["answer"]
        elif reply.get("reply") == "error":
            return reply
        return {"reply": "hello", "protocol": "netconform-agent", "major": MAJOR, "minor": MINOR,
                "stack": STACK, "version": self.version, "environment": environment}

    def serve(self):
        try:
            for line in sys.stdin:
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                    rid = request["id"]
                    op = request["op"]
                except (ValueError, KeyError, TypeError) as e:
                    log(f"unreadable request {line.strip()[:80]!r}: {e}")
                    return 2
                if op == "hello":
                    reply = self.hello(request)
                elif self.driver is None:
                    reply = {"reply": "error", "message": "no hello yet, or pytcpd did not start"}
                elif op in ("call", "query", "control"):
                    body = {k: v for k, v in request.items() if k != "id"}
                    reply = self.forward(body, _describe(request))
                else:
                    reply = {"reply": "unsupported", "what": f"op {op}: unknown to this agent"}
                reply["id"] = rid
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()
            return 0
        finally:
            self.stop()


class ForkedDaemon:
    """pytcpd in a child process forked from the agent once PyTCP is imported: the daemon
    starts without a second interpreter and a second import of PyTCP (together about as
    long as the rest of a check's set-up), and stays a process of its own, so a crash or a
    hang of it is still seen and stopped by the agent. Its stdout and stderr (merged) are
    `stdout`; `poll`, `kill` and `wait` are `subprocess.Popen`'s."""

    def __init__(self, argv, driver, cwd):
        import_daemon_modules()
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the daemon
            code = 1
            try:
                os.close(r)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(w, 1)
                os.dup2(w, 2)
                os.close(w)
                sys.stdout = open(1, "w", buffering=1, closefd=False)
                sys.stderr = open(2, "w", buffering=1, closefd=False)
                os.chdir(cwd)
                _die_with_parent()
                os.environ["NCF_PYTCP_DRIVER"] = driver
                daemon_main(argv)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported on its log, as a daemon would
                import traceback
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        os.close(w)
        self.pid = pid
        self.returncode = None
        self.stdout = open(r, "rb")

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self):
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self):
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def import_daemon_modules():
    """What the daemon runs, imported in the agent before it forks (module doc)."""
    import asyncio  # noqa: F401
    import logging  # noqa: F401
    import pmd_net_addr  # noqa: F401
    import pmd_pytcp.socket  # noqa: F401
    from pmd_pytcp import stack  # noqa: F401
    from pmd_pytcp.daemon.__main__ import build_parser  # noqa: F401
    from pmd_pytcp.ipc.ipc__server import IpcServer  # noqa: F401
    from pmd_pytcp.runtime.fib import Route  # noqa: F401
    from pmd_pytcp.runtime.packet_handler.packet_handler__icmp4__rx import Icmp4RxHandler  # noqa: F401
    from pmd_pytcp.runtime.packet_handler.packet_handler__icmp6__rx import Icmp6RxHandler  # noqa: F401
    from pmd_pytcp.socket.tcp__info import TCP_INFO__STRUCT  # noqa: F401
    from pmd_pytcp.socket.tcp__socket import TcpSocket  # noqa: F401


def sweep_dead_dirs():
    """Removes the private directories of agents that were killed (SIGKILL leaves no time
    to remove one): `ncf-pytcp-<pid>-*` whose pid is gone."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        parts = name.split("-")
        if len(parts) < 4 or parts[:2] != ["ncf", "pytcp"] or not parts[2].isdigit():
            continue
        if not os.path.exists(f"/proc/{parts[2]}"):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _own_wait(request):
    call = request.get("call")
    if isinstance(call, dict):
        for body in call.values():
            if isinstance(body, dict) and "timeout_ms" in body:
                return body["timeout_ms"] / 1000.0
    return 0.0


def _describe(request):
    body = request.get(request["op"])
    name = body if isinstance(body, str) else next(iter(body), "?") if isinstance(body, dict) else "?"
    return f"{request['op']} {name}"


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ------------------------------------------------------------------------------------------
# The daemon role: pytcpd, plus the driver.
# ------------------------------------------------------------------------------------------


def daemon_main(argv):
    """pytcpd: `pmd_pytcp.daemon.run_daemon`'s steps with its own argument parser, the
    address installed as `ip addr add` would (see below), and the driver on its loop."""
    # Not from the package's directory: `pmd_pytcp.socket` would shadow `socket`.
    import asyncio
    import logging
    from pmd_net_addr import Ip4Address, Ip6Address, MacAddress
    from pmd_pytcp import stack
    from pmd_pytcp.daemon.__main__ import build_parser
    from pmd_pytcp.ipc.ipc__server import IpcServer

    if os.environ.get("NCF_PYTCP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(message)s")
    args = build_parser().parse_args(argv)
    driver_path = os.environ["NCF_PYTCP_DRIVER"]

    async def run():
        stack.init()
        # pytcpd's `_resolve_interface` without its test that the name starts with `tap`.
        interface = stack.initialize_interface__tap(
            interface_name=args.interface, mac_address=args.mac_address)
        # The addresses are installed with the Address API (`ip addr add`), not as
        # pytcpd's boot candidates: PyTCP runs RFC 5227 conflict detection on a boot
        # candidate (probes and announcements, 3-9 s before the address works, on the wire
        # of every check), which Linux does not do for a static address either. No DHCP,
        # no SLAAC: the harness gives the addresses.
        ifindex = stack.add_interface(
            **interface,
            ip4_support=args.ip4_support,
            ip4_host=None,
            ip4_dhcp=False,
            ip6_support=args.ip6_support,
            ip6_host=None,
            ip6_gua_autoconfig=False,
        )
        api = stack.address.interface(ifindex)
        if args.ip4_address is not None:
            api.add(ifaddr=args.ip4_address)
        if args.ip6_address is not None:
            api.add(ifaddr=args.ip6_address)
        await stack.start()
        if os.environ.get("NCF_PYTCP_ECHO_WAITS", "1") != "0":
            echo_waits_for_due_timers(stack)
        server = IpcServer(socket_path=args.ipc_socket)
        await server.start()
        print(f"PyTCP daemon listening on {args.ipc_socket}", flush=True)
        if os.environ.get("NETCONFORM_PEER_PRERESOLVED") == "1":
            mac = MacAddress(os.environ["NETCONFORM_PEER_MAC"])
            neighbours = stack.neighbor.interface(ifindex)
            if os.environ.get("NETCONFORM_PEER_IPV4"):
                neighbours.add(ip=Ip4Address(os.environ["NETCONFORM_PEER_IPV4"]), mac=mac)
            if os.environ.get("NETCONFORM_PEER_IPV6"):
                neighbours.add(ip=Ip6Address(os.environ["NETCONFORM_PEER_IPV6"]), mac=mac)
        driver = Driver(args, ifindex)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(driver_path)
        listener.listen(1)
        listener.setblocking(False)
        await asyncio.start_unix_server(driver.serve, sock=listener)
        print(f"netconform driver ready on {driver_path}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.stop()
        await server.wait_stopped()
        await stack.stop()

    asyncio.run(run())


# The barrier's exact signal. PyTCP answers an echo request at once, in its receive path,
# but sends a TCP session's output from the session's timer, at least 1 ms after the segment
# or call that caused it (protocols/tcp/session/tcp__session__timers.py:193-204: "Floor at
# 1 ms, never 0"), and an answer may take more than one turn of it: after a CLOSE call the
# first turn moves ESTABLISHED to FIN-WAIT-1 and re-arms the timer (tcp__session.py:763-789,
# `_pump_tail`: re-armed at 1 ms after every stimulus, state change or pending work), the
# second sends the FIN. So the echo reply would overtake the answer the barrier is meant to
# prove. Instead of a fixed lag on the harness's side, the echo reply waits while the stack
# is still answering: while a timer of the stack is due within ECHO_WINDOW, and the last
# turn of its timers sent a frame or changed a TCP state. A turn that sends nothing and
# changes nothing (a session with unacknowledged data re-arms its timer every millisecond,
# for ever) ends the wait: what came before the probe has been answered, exactly as with a
# stack that answers in its receive path.
ECHO_WINDOW = 0.002
# A bound against a bug of ours (a timer that never fires): the reply goes out anyway, and
# an answer after it is a late answer the check reports.
ECHO_MAX_WAIT = 0.25


def echo_waits_for_due_timers(stack):
    """Makes PyTCP's ICMPv4 and ICMPv6 echo replies wait for its answers (above)."""
    import asyncio
    from pmd_pytcp.runtime.packet_handler.packet_handler__icmp4__rx import Icmp4RxHandler
    from pmd_pytcp.runtime.packet_handler.packet_handler__icmp6__rx import Icmp6RxHandler
    from pmd_pytcp.runtime.tx_ring import TxRing

    loop = asyncio.get_running_loop()
    timer = stack.timer
    sent = [0]

    def counting(method):
        def wrapper(self, *args, **kwargs):
            sent[0] += 1
            return method(self, *args, **kwargs)
        return wrapper

    # Every frame the stack sends is queued on its TX ring (runtime/tx_ring.py:425, 451).
    TxRing.enqueue = counting(TxRing.enqueue)
    TxRing.enqueue_raw_frame = counting(TxRing.enqueue_raw_frame)

    def progress():
        """What the stack has done so far: frames queued, and each TCP session's state."""
        states = tuple(sorted((id(s), str(s._tcp_session._state))
                              for s in list(stack.sockets.values())
                              if getattr(s, "_tcp_session", None) is not None))
        return sent[0], states

    def pending_until(limit):
        """The latest deadline of a pending timer due by `limit`, or None."""
        latest = None
        for h in list(timer._handles):
            lh = h._loop_handle
            if h.cancelled or lh is None or lh.cancelled():
                continue
            when = lh.when()
            if when <= limit and (latest is None or when > latest):
                latest = when
        return latest

    def wrap(cls, name):
        original = getattr(cls, name)

        def echo_request(self, packet_rx, _arrived=None, _before=None):
            now = loop.time()
            arrived = now if _arrived is None else _arrived
            done = progress()
            if _before is None or done != _before:
                latest = pending_until(now + ECHO_WINDOW)
                if os.environ.get("NCF_PYTCP_ECHO_TRACE"):
                    print(f"echo: +{now - arrived:.4f} s, progress {_before != done}, "
                          f"due {None if latest is None else round(latest - arrived, 4)}",
                          file=sys.stderr, flush=True)
                if latest is not None and now - arrived < ECHO_MAX_WAIT:
                    # Behind that timer in the loop's heap (a strictly later deadline).
                    loop.call_at(latest + 1e-6, echo_request, self, packet_rx, arrived, done)
                    return
            original(self, packet_rx)

        setattr(cls, name, echo_request)

    wrap(Icmp4RxHandler, "_Icmp4RxHandler__phrx_icmp4__echo_request")
    wrap(Icmp6RxHandler, "_Icmp6RxHandler__phrx_icmp6__echo_request")


class Unsupported(Exception):
    pass


class AgentError(Exception):
    pass


LINUX_STATE = {
    "CLOSED": "Closed", "LISTEN": "Listen", "SYN_SENT": "SynSent", "SYN_RCVD": "SynReceived",
    "ESTABLISHED": "Established", "FIN_WAIT_1": "FinWait1", "FIN_WAIT_2": "FinWait2",
    "CLOSE_WAIT": "CloseWait", "CLOSING": "Closing", "LAST_ACK": "LastAck",
    "TIME_WAIT": "TimeWait",
}
# Linux tcpi_state numbers (include/net/tcp_states.h).
TCPI_STATE = {1: "Established", 2: "SynSent", 3: "SynReceived", 4: "FinWait1", 5: "FinWait2",
              6: "TimeWait", 7: "Closed", 8: "CloseWait", 9: "LastAck", 10: "Listen",
              11: "Closing", 12: "SynReceived"}
NUD_STATE = {"INCOMPLETE": "Incomplete", "REACHABLE": "Reachable", "STALE": "Stale",
             "DELAY": "Delay", "PROBE": "Probe", "FAILED": "Failed", "NOARP": "Noarp",
             "PERMANENT": "Permanent"}


def errno_outcome(e):
    """An OSError as the protocol's Linux errno outcome."""
    code = e.errno if isinstance(e.errno, int) and e.errno > 0 else None
    if code is None:
        by_type = {ConnectionRefusedError: errno.ECONNREFUSED,
                   ConnectionResetError: errno.ECONNRESET,
                   ConnectionAbortedError: errno.ECONNABORTED,
                   BrokenPipeError: errno.EPIPE, TimeoutError: errno.ETIMEDOUT}
        code = next((c for t, c in by_type.items() if isinstance(e, t)), None)
    if code is None:
        raise AgentError(f"PyTCP raised {type(e).__name__}: {e} (no errno)")
    return {"Errno": {"code": code, "name": errno.errorcode.get(code, f"E{code}")}}


class Held:
    """A socket the harness holds."""

    def __init__(self, sock, udp=False):
        self.sock = sock
        self.udp = udp
        self.connecting = None  # the connect() task


class Driver:
    """The netconform requests, made with PyTCP's own API inside the daemon."""

    def __init__(self, args, ifindex):
        import pmd_pytcp.socket as psock
        from pmd_pytcp import stack
        self.psock = psock
        self.stack = stack
        self.args = args
        self.ifindex = ifindex
        self.held = {}
        self.next_accepted = 65536
        self.unsupported_settings = []
        self.applied = []
        for line in os.environ.get("NETCONFORM_SETTINGS", "").splitlines():
            if "=" not in line:
                continue
            name, value = line.split("=", 1)
            mapped = SETTINGS.get(name.strip(), None)
            if mapped is None:
                self.unsupported_settings.append(f"{name.strip()}={value.strip()}")
            else:
                key, convert = mapped
                stack.sysctl.set(key, convert(value.strip()))
                self.applied.append(f"{name.strip()}={value.strip()} as PyTCP sysctl {key}")

    async def serve(self, reader, writer):
        import asyncio
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                request = json.loads(line)
                reply = await self.handle(request)
            except Unsupported as e:
                reply = {"reply": "unsupported", "what": str(e)}
            except Garbage:
                writer.write(b"Traceback? no: garbage from a broken daemon\n")
                await writer.drain()
                continue
            except AgentError as e:
                reply = {"reply": "error", "message": str(e)}
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug of PyTCP's or ours: an error, not a crash
                import traceback
                traceback.print_exc()
                reply = {"reply": "error", "message": f"{type(e).__name__}: {e}"}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        writer.close()

    async def handle(self, request):
        op = request["op"]
        if op != "environment" and fault(request) == "ignore":
            # Test hook (below): a setting taken and not applied.
            return {"reply": "ok"}
        if op == "environment":
            env = [f"pytcpd interface = {self.args.interface}"]
            env += [f"setting {s}" for s in self.applied]
            env += [f"setting {s}: no PyTCP equivalent" for s in self.unsupported_settings]
            return {"reply": "answer", "answer": env}
        body = request.get(op)
        what = body if isinstance(body, str) else next(iter(body))
        if self.unsupported_settings:
            raise Unsupported(
                f"the check pins {', '.join(self.unsupported_settings)}: PyTCP 0.3.8 has no such "
                "setting (RACK-TLP is always on: protocols/tcp/tcp__rack.py:375-430, a tail loss "
                "probe 2 SRTT + 25 ms after a lone segment)")
        args = None if isinstance(body, str) else body[what]
        if op == "call":
            return {"reply": "outcome", "outcome": await self.call(what, args)}
        if op == "query":
            return {"reply": "answer", "answer": await self.query(what, args)}
        if op == "control":
            await self.control(what, args)
            return {"reply": "ok"}
        raise Unsupported(f"op {op}")

    # -- sockets ---------------------------------------------------------------------------

    def get(self, sid):
        held = self.held.get(sid)
        if held is None:
            raise AgentError(f"no socket s{sid}")
        return held

    def family(self, name):
        return self.psock.AddressFamily.INET6 if name == "Ipv6" else self.psock.AddressFamily.INET4

    def make(self, sid, family):
        if sid not in self.held:
            s = self.psock.socket(family=self.family(family), type=self.psock.SocketType.STREAM)
            if family == "Ipv6":
                try:
                    s.setsockopt(self.psock.IPPROTO_IPV6, self.psock.IPV6_V6ONLY, 1)
                except (OSError, AttributeError):
                    pass
            self.held[sid] = Held(s)
        return self.held[sid]

    async def call(self, what, a):
        import asyncio
        P = self.psock
        try:
            if what == "Socket":
                self.make(a["sock"], a["family"])
                return "Ok"
            if what == "Bind":
                fam = "Ipv6" if ":" in a["addr"] else "Ipv4"
                self.make(a["sock"], fam).sock.bind((a["addr"], a["port"]))
                return "Ok"
            if what == "Listen":
                h = self.make(a["sock"], a["family"])
                h.sock.setsockopt(P.SOL_SOCKET, P.SO_REUSEADDR, 1)
                if h.sock._local_port == 0:
                    any_addr = "::" if a["family"] == "Ipv6" else "0.0.0.0"
                    h.sock.bind((a["addr"] or any_addr, a["port"]))
                h.sock.listen(backlog=max(1, a["backlog"]))
                return "Ok"
            if what == "Accept":
                h = self.get(a["listener"])
                try:
                    child, _peer = await h.sock.accept(timeout=a["timeout_ms"] / 1000.0)
                except TimeoutError as e:
                    if e.errno:
                        return errno_outcome(e)
                    return "TimedOut"
                sid = self.next_accepted
                self.next_accepted += 1
                self.held[sid] = Held(child)
                return {"NewSocket": sid}
            if what == "Connect":
                h = self.make(a["sock"], a["family"])
                h.connecting = asyncio.get_running_loop().create_task(
                    h.sock.connect((a["addr"], a["port"])))
                h.connecting.add_done_callback(_quiet)
                # Let it run up to its first wait (the SYN is sent, or it failed at once).
                for _ in range(3):
                    await asyncio.sleep(0)
                if h.connecting.done() and h.connecting.exception() is not None:
                    e = h.connecting.exception()
                    if isinstance(e, OSError):
                        return errno_outcome(e)
                    raise e
                return "Ok"
            if what == "WaitConnected":
                h = self.get(a["sock"])
                if h.connecting is None:
                    raise AgentError(f"wait_connected(s{a['sock']}): no connect was started")
                try:
                    await asyncio.wait_for(asyncio.shield(h.connecting), a["timeout_ms"] / 1000.0)
                except asyncio.TimeoutError:
                    if h.connecting.done() and isinstance(h.connecting.exception(), OSError):
                        return errno_outcome(h.connecting.exception())
                    return "TimedOut"
                return "Ok"
            if what == "Send":
                h = self.get(a["sock"])
                if h.udp:
                    raise Unsupported("send on a UDP socket: the checks use send_to")
                n = await h.sock.send(bytes(a["data"]))
                return {"Sent": n}
            if what == "Recv":
                h = self.get(a["sock"])
                try:
                    data = await h.sock.recv(a["max"], timeout=a["timeout_ms"] / 1000.0)
                except TimeoutError as e:
                    if e.errno:
                        return errno_outcome(e)
                    return "TimedOut"
                return {"Data": list(data)} if data else "Eof"
            if what == "Shutdown":
                h = self.get(a["sock"])
                how = {"Read": 0, "Write": 1, "Both": 2}[a["how"]]
                h.sock.shutdown(how)
                return "Ok"
            if what == "Close":
                h = self.held.pop(a["sock"], None)
                if h is None:
                    raise AgentError(f"no socket s{a['sock']}")
                h.sock.close()
                return "Ok"
            if what == "SetOption":
                return {"OptionValue": self.set_option(self.get(a["sock"]), a["option"])}
            if what == "UdpBind":
                sid = a["sock"]
                if sid in self.held:
                    raise AgentError(f"udp_bind: s{sid} is in use")
                fam = P.AddressFamily.INET6 if ":" in a["addr"] else P.AddressFamily.INET4
                s = P.socket(family=fam, type=P.SocketType.DGRAM)
                try:
                    s.bind((a["addr"], a["port"]))
                except OSError:
                    s.close()
                    raise
                self.held[sid] = Held(s, udp=True)
                return "Ok"
            if what == "SendTo":
                h = self.get(a["sock"])
                n = await h.sock.sendto(bytes(a["data"]), (a["addr"], a["port"]))
                return {"Sent": n}
            if what == "RecvFrom":
                h = self.get(a["sock"])
                try:
                    data, (host, port) = await h.sock.recvfrom(None, timeout=a["timeout_ms"] / 1000.0)
                except TimeoutError as e:
                    if e.errno:
                        return errno_outcome(e)
                    return "TimedOut"
                peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                return {"Datagram": {"from": peer, "data": list(data[: a["max"]])}}
        except OSError as e:
            if e.errno == errno.ENOPROTOOPT:
                raise Unsupported(f"{what}: PyTCP: {e}") from e
            return errno_outcome(e)
        raise Unsupported(f"call {what}: unknown to this agent")

    def set_option(self, h, option):
        import struct
        P = self.psock
        (name, value), = option.items()
        s = h.sock
        if name == "KeepAlive":
            s.setsockopt(P.SOL_SOCKET, P.SO_KEEPALIVE, int(bool(value)))
            return {name: bool(s.getsockopt(P.SOL_SOCKET, P.SO_KEEPALIVE))}
        # PyTCP keeps keep-alive times in ms where Linux takes seconds.
        if name in ("KeepIdle", "KeepInterval"):
            opt = P.TCP_KEEPIDLE if name == "KeepIdle" else P.TCP_KEEPINTVL
            s.setsockopt(P.IPPROTO_TCP, opt, int(value) * 1000)
            return {name: s.getsockopt(P.IPPROTO_TCP, opt) // 1000}
        simple = {"KeepCount": getattr(P, "TCP_KEEPCNT", None),
                  "MaxSegment": getattr(P, "TCP_MAXSEG", None),
                  "UserTimeout": getattr(P, "TCP_USER_TIMEOUT", None),
                  "SynCount": getattr(P, "TCP_SYNCNT", None),
                  "QuickAck": getattr(P, "TCP_QUICKACK", None)}
        if name == "NoDelay":
            s.setsockopt(P.IPPROTO_TCP, P.TCP_NODELAY, int(bool(value)))
            return {name: bool(s.getsockopt(P.IPPROTO_TCP, P.TCP_NODELAY))}
        if name in simple:
            opt = simple[name]
            if opt is None:
                raise Unsupported(f"set_option {name}: PyTCP 0.3.8 has no such socket option")
            s.setsockopt(P.IPPROTO_TCP, opt, int(value))
            got = s.getsockopt(P.IPPROTO_TCP, opt)
            return {name: bool(got) if name == "QuickAck" else got}
        if name == "Linger":
            on, secs = (0, 0) if value is None else (1, int(value))
            s.setsockopt(P.SOL_SOCKET, P.SO_LINGER, struct.pack("@ii", on, secs))
            on, secs = struct.unpack("@ii", s.getsockopt(P.SOL_SOCKET, P.SO_LINGER))
            return {name: secs if on else None}
        if name == "RecvBuffer":
            s.setsockopt(P.SOL_SOCKET, P.SO_RCVBUF, int(value))
            return {name: s.getsockopt(P.SOL_SOCKET, P.SO_RCVBUF)}
        raise Unsupported(f"set_option {name}: unknown to this agent")

    # -- state -----------------------------------------------------------------------------

    async def query(self, what, a):
        P = self.psock
        if what == "TcpSockets":
            return {"TcpSockets": self.tcp_sockets()}
        if what == "TcpInfo":
            h = self.get(a)
            import struct
            from pmd_pytcp.socket.tcp__info import TCP_INFO__STRUCT
            raw = h.sock.getsockopt(P.IPPROTO_TCP, P.TCP_INFO)
            f = struct.unpack(TCP_INFO__STRUCT.replace(" ", ""), raw)
            return {"TcpInfo": {
                "state": TCPI_STATE.get(f[0]), "timestamps": bool(f[5] & 1), "sack": bool(f[5] & 2),
                "window_scaling": bool(f[5] & 4), "ecn": bool(f[5] & 8),
                "snd_wscale": f[6] & 0x0F, "rcv_wscale": f[6] >> 4, "retransmits": f[2],
                "probes": f[3], "backoff": f[4], "rto_us": f[8], "ato_us": f[9],
                "snd_mss": f[10], "rcv_mss": f[11], "unacked": f[12], "lost": f[14],
                "retrans": f[15], "rtt_us": f[23], "rttvar_us": f[24], "snd_ssthresh": f[25],
                "snd_cwnd": f[26], "advmss": f[27], "total_retrans": f[31]}}
        if what == "Neighbours":
            out = []
            for n in self.stack.neighbor.interface(self.ifindex).list_neighbors():
                out.append({"ifindex": self.ifindex, "dst": str(n.address),
                            "lladdr": str(n.mac_address).lower() if n.mac_address else None,
                            "state": NUD_STATE.get(n.state.name, n.state.name.title()),
                            "probes": None, "cacheinfo": None})
            return {"Neighbours": out}
        raise Unsupported(f"query {what}: PyTCP has no such state to read through this agent")

    def tcp_sockets(self):
        from pmd_pytcp.socket.tcp__socket import TcpSocket
        by_object = {id(h.sock): sid for sid, h in self.held.items()}
        out = []
        for s in self.stack.sockets.values():
            if not isinstance(s, TcpSocket) or s._tcp_session is None:
                continue
            session = s._tcp_session
            state = LINUX_STATE.get(session.state.name)
            if state is None or state == "Closed":
                continue

            def addr(ip, port):
                return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"

            listening = state == "Listen"
            local_ip = session._local_ip_address
            remote = addr(session._remote_ip_address, session._remote_port)
            if listening:
                remote = "[::]:0" if ":" in str(local_ip) else "0.0.0.0:0"
            out.append({
                "state": state,
                "local": addr(local_ip, session._local_port),
                "remote": remote,
                "sock": by_object.get(id(s)),
                "recv_queue": len(s._tcp_accept) if listening else len(session._rx_buffer),
                "send_queue": s._backlog if listening else len(session._tx.buffer),
            })
        return out

    async def control(self, what, a):
        from pmd_pytcp.socket import AddressFamily
        if what == "FlushNeighbours":
            for family in (AddressFamily.INET4, AddressFamily.INET6):
                try:
                    self.stack.neighbor.interface(self.ifindex).flush(family=family)
                except Exception as e:  # noqa: BLE001 - a family the stack runs without
                    if family is AddressFamily.INET4:
                        raise AgentError(f"neighbor.flush: {e}") from e
            return
        if what == "NeighbourParams":
            return self.neighbour_params(a)
        if what == "Route":
            # `ip route add DST/LEN via GW`: a static route through PyTCP's Route API
            # (stack/route.py:154, RouteApi.add_route; runtime/fib.py:80, Route). Its FIB
            # holds unicast routes only (a gateway or on-link, with a metric), and looks
            # them up in its send path, not through an API; profiles/pytcp.toml declares
            # that, and route.lookup.fixed-table observes the lookup on the wire.
            from pmd_net_addr import Ip4Address, Ip4Network
            from pmd_pytcp.runtime.fib import Route, RouteProtocol
            self.stack.route.add_route(route=Route(
                destination=Ip4Network(f"{a['dst']}/{a['prefix_len']}"),
                gateway=Ip4Address(a["via"]), protocol=RouteProtocol.STATIC))
            return
        raise Unsupported(f"control {what}: PyTCP has no such setting through this agent")

    # The neighbour timers and probe counts PyTCP takes, as its `neighbor.*` sysctls
    # (lib/neighbor__constants.py:71-91, 136-180: positive whole seconds and counts, read by
    # the cache's maintenance loop on every 100 ms pass, lib/neighbor.py:441-446). Set for the
    # tap and as the default. A time that is not whole seconds, and a Linux field PyTCP has
    # no sysctl for (locktime, gc_stale per entry, app and mcast re-probes), is refused
    # before anything is set: the harness then knows the setting was not taken.
    NEIGHBOUR_SYSCTLS = (
        ("base_reachable_ms", "reachable_time", 1000),
        ("retrans_ms", "retrans_timer", 1000),
        ("delay_probe_ms", "delay_first_probe_time", 1000),
        ("ucast_probes", "max_unicast_solicit", 1),
        ("mcast_probes", "max_multicast_solicit", 1),
    )

    def neighbour_params(self, a):
        a = a or {}
        for field in ("locktime_ms", "gc_stale_ms", "app_probes", "mcast_reprobes"):
            if a.get(field) is not None:
                raise Unsupported(f"NeighbourParams {field}: PyTCP 0.3.8 has no such neighbour setting")
        values = []
        for field, name, unit in self.NEIGHBOUR_SYSCTLS:
            v = a.get(field)
            if v is None:
                continue
            if not isinstance(v, int) or v <= 0 or v % unit:
                raise Unsupported(
                    f"NeighbourParams {field}={v}: PyTCP's neighbor.{name} takes positive whole "
                    + ("seconds" if unit == 1000 else "counts"))
            values.append((name, v // unit))
        if os.environ.get("NCF_PYTCP_NEIGHBOUR_PARAMS") == "ignore":
            # Test hook (tests/pytcp_target.rs): a PyTCP that answers ok and keeps its own
            # timers (30 s reachable, 1 s retransmit, 5 s delay) shows it on the wire.
            return
        for name, v in values:
            for slot in ("default", self.args.interface):
                try:
                    self.stack.sysctl.set(f"neighbor.{slot}.{name}", v)
                except (KeyError, ValueError) as e:
                    raise AgentError(f"sysctl neighbor.{slot}.{name}={v}: {e}") from e


def fault(request):
    """Test hook for tests/pytcp_target.rs (NCF_PYTCP_FAULT=KIND:OP, OP the first key of a
    call, query or control): at that request the daemon dies with a traceback (`crash`), stops
    answering with its loop blocked (`hang`), or answers a line that is not JSON
    (`garbage`), as a broken pytcpd would; or, from the second such control on, answers
    `ok` without applying it (`ignore`: a PyTCP that keeps only its first route)."""
    spec = os.environ.get("NCF_PYTCP_FAULT", "")
    kind, _, at = spec.partition(":")
    body = request.get(request.get("op"))
    name = body if isinstance(body, str) else next(iter(body), "") if isinstance(body, dict) else ""
    if not spec or at not in (name, "*"):
        return
    if kind == "crash":
        import traceback
        try:
            raise RuntimeError(f"fault injected at {at} (NCF_PYTCP_FAULT)")
        except RuntimeError:
            traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    if kind == "hang":
        time.sleep(3600)
    if kind == "garbage":
        raise Garbage()
    if kind == "ignore" and request.get("op") == "control":
        _IGNORED[0] += 1
        return "ignore" if _IGNORED[0] > 1 else None
    return None


_IGNORED = [0]


class Garbage(Exception):
    pass


def _quiet(task):
    # A connect that failed is reported by wait_connected; do not log it as unretrieved.
    if not task.cancelled():
        task.exception()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--daemon":
        # Run from the private directory, not the package's.
        daemon_main(sys.argv[2:])
        return 0
    return Supervisor().serve()


if __name__ == "__main__":
    sys.exit(main())
