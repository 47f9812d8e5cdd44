"""bench/compare's own logic: the balancing spread, the processes a server
is made of, the TLS certificates and check, the configs porticod is given,
and what the tables show. Real processes and sockets on 127.0.0.1, no mocks.
Run by ctest (bench_compare_test), or: python3 -B -m unittest compare_test
from bench/tests."""

import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compare_lib.balance import fmt_max_min, fmt_shares, parse_served, spread  # noqa: E402
from compare_lib.common import DEFAULT_WORKLOADS, SERVER_SETS, TLS_WORKLOADS  # noqa: E402
from compare_lib.processes import descendants  # noqa: E402
from compare_lib.report import tables  # noqa: E402
from compare_lib.servers import Peers, has_backend  # noqa: E402
from compare_lib.tls import make_certificate, tls_check  # noqa: E402


class Spread(unittest.TestCase):
    def test_the_newest_report_counts(self):
        text = "ready\nserved: connections 3, bytes 2048\nserved: connections 7, bytes 10240\n"
        self.assertEqual(parse_served(text), (7, 10240))
        self.assertIsNone(parse_served("ready\n"))

    def test_shares_and_busiest_over_idlest(self):
        s = spread([(10, 100 * 1024), (10, 100 * 1024), (11, 120 * 1024), (9, 80 * 1024)], 1024)
        self.assertEqual(s["requests"], [100, 100, 120, 80])
        self.assertEqual(s["connections"], [10, 10, 11, 9])
        self.assertEqual(fmt_shares(s), "25.0/25.0/30.0/20.0")
        self.assertEqual(fmt_max_min(s), "1.50")

    def test_an_upstream_left_out(self):
        s = spread([(5, 4096), (0, 0)], 1024)
        self.assertEqual(fmt_shares(s), "100.0/0.0")
        self.assertEqual(fmt_max_min(s), "∞")
        self.assertIsNone(spread([(0, 0), (0, 0)], 1024))


class Descendants(unittest.TestCase):
    def test_children_and_grandchildren(self):
        # sh starts a sleep, and a sh that starts another sleep.
        proc = subprocess.Popen(["sh", "-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait"])
        try:
            deadline = time.monotonic() + 5
            while len(descendants(proc.pid)) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            found = descendants(proc.pid)
            names = sorted(Path(f"/proc/{pid}/comm").read_text().strip() for pid in found)
            self.assertEqual(names, ["sh", "sleep", "sleep"])
            self.assertNotIn(proc.pid, found)
        finally:
            for pid in descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.kill()
            proc.wait()
        self.assertEqual(descendants(proc.pid), [])


class TlsServer:
    """A TLS 1.3 (or, with tls=False, plain) server on a thread: one
    connection at a time, answering with `reply` after the first read."""

    def __init__(self, cert, key, reply, tls=True):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.reply, self.tls, self.stop = reply, tls, False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.listener.settimeout(0.1)
        while not self.stop:
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn.settimeout(5)
                if self.tls:
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                if conn.recv(100):
                    conn.sendall(self.reply)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.listener.close()


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
class Certificates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ec, reason = make_certificate(cls.tmp.name, "ec")
        assert reason is None, reason

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_what_each_server_is_given(self):
        rsa, reason = make_certificate(self.tmp.name, "rsa")
        self.assertIsNone(reason)
        for paths, algorithm in ((self.ec, "id-ecPublicKey"), (rsa, "rsaEncryption")):
            text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(paths["cert"])],
                                  capture_output=True, text=True, check=True).stdout
            self.assertIn(f"Public Key Algorithm: {algorithm}", text)
            self.assertIn("Subject: CN = localhost", text)
            self.assertIn("DNS:localhost, IP Address:127.0.0.1", text)
            # haproxy's and hitch's one file: the certificate, then its key.
            self.assertEqual(paths["pem"].read_text(), paths["cert"].read_text() + paths["key"].read_text())

    def test_a_server_with_the_certificate_passes(self):
        server = TlsServer(self.ec["cert"], self.ec["key"], b"Hello from server!\n")
        try:
            self.assertIsNone(tls_check(server.port, self.ec["cert"], "greeting", seconds=2))
        finally:
            server.close()

    def test_a_wrong_greeting_is_told(self):
        server = TlsServer(self.ec["cert"], self.ec["key"], b"Goodbye\n")
        try:
            self.assertEqual(tls_check(server.port, self.ec["cert"], "greeting", seconds=2),
                             "TLS check: got b'Goodbye\\n', expected b'Hello from server!\\n'")
        finally:
            server.close()

    def test_echo_is_checked(self):
        server = TlsServer(self.ec["cert"], self.ec["key"], b"ping\n")
        try:
            self.assertIsNone(tls_check(server.port, self.ec["cert"], "echo", seconds=2))
        finally:
            server.close()

    def test_a_server_without_tls_fails_the_check(self):
        server = TlsServer(self.ec["cert"], self.ec["key"], b"Hello from server!\n", tls=False)
        try:
            reason = tls_check(server.port, self.ec["cert"], "greeting", seconds=0.3)
            self.assertTrue(reason.startswith("TLS check failed: "), reason)
        finally:
            server.close()


class Configs(unittest.TestCase):
    """What porticod and the peers are given, byte for byte where it matters."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.peers = Peers(self.tmp.name, "/nonexistent/porticod", Path(self.tmp.name) / "log")
        self.peers.certs["ec"] = {"cert": Path("/c/cert.pem"), "key": Path("/c/key.pem"), "pem": Path("/c/cert+key.pem")}

    def tearDown(self):
        self.tmp.cleanup()

    def porticod_config(self, workload, upstreams=()):
        argv, _ = self.peers.command("porticod", 7000, workload, upstreams)
        return Path(argv[2]).read_text()

    def test_porticod_tls_listener(self):
        root = "allow_root = true\n" if os.geteuid() == 0 else ""
        self.assertEqual(self.porticod_config("tls-echo"),
                         f'[daemon]\n{root}\n[[listener]]\naddress = "127.0.0.1:7000"\nhandler = "echo"\n'
                         'tls_certificate = "/c/cert.pem"\ntls_key = "/c/key.pem"\ntls_min_version = "1.3"\n')
        self.assertIn('handler = "greeting"\ntls_certificate', self.porticod_config("tls-resume"))

    def test_porticod_balancing_proxy(self):
        text = self.porticod_config("proxy-balance-lc", [1001, 1002, 1003, 1004])
        self.assertTrue(text.endswith('handler = "proxy"\nupstream = ["127.0.0.1:1001", "127.0.0.1:1002", '
                                      '"127.0.0.1:1003", "127.0.0.1:1004"]\nbalance = "least_conn"\n'), text)
        self.assertIn('balance = "round_robin"\n', self.porticod_config("proxy-balance-rr", [1, 2, 3, 4]))

    def test_porticod_variants_add_one_feature_each(self):
        plain = self.porticod_config("greeting")
        argv, _ = self.peers.command("porticod-accesslog", 7000, "greeting")
        logged = Path(argv[2]).read_text()
        self.assertEqual(logged, plain.replace("\n\n[[listener]]", f'\naccess_log = "{self.tmp.name}/access-7000.log"\n'
                                               '\n[[listener]]'))
        argv, _ = self.peers.command("porticod-metrics", 7000, "greeting")
        metrics = Path(argv[2]).read_text()
        self.assertTrue(metrics.startswith(plain), metrics)
        self.assertEqual(metrics[len(plain):], f'\n[[listener]]\nname = "metrics"\naddress = "127.0.0.1:'
                         f'{self.peers.metrics_port}"\nhandler = "metrics"\n')
        self.assertEqual(SERVER_SETS["greeting"][:3], ("porticod", "porticod-accesslog", "porticod-metrics"))

    def test_haproxy_balances_over_every_upstream(self):
        argv, _ = self.peers.command("haproxy", 7000, "proxy-balance-rr", [1001, 1002, 1003, 1004])
        text = Path(argv[-1]).read_text()
        self.assertIn("\tbalance roundrobin\n\tserver up1 127.0.0.1:1001\n\tserver up2 127.0.0.1:1002\n"
                      "\tserver up3 127.0.0.1:1003\n\tserver up4 127.0.0.1:1004\n", text)
        self.assertNotIn("@", text)

    def test_tls_peers_get_the_certificate_and_the_floor(self):
        for name in ("haproxy", "stunnel", "hitch", "nginx"):
            argv, _ = self.peers.command(name, 7000, "tls-echo", backend=7100)
            text = Path(argv[argv.index("-c") + 1] if name == "nginx" else argv[-1]).read_text()
            with self.subTest(name=name):
                self.assertNotIn("@", text)  # every placeholder filled
                self.assertIn("7100", text)
                self.assertIn("/c/", text)
        argv, _ = self.peers.command("nginx", 7000, "tls-handshake")
        self.assertIn('return "Hello from server!\\n";', Path(argv[argv.index("-c") + 1]).read_text())

    def test_who_relays_to_the_floor(self):
        self.assertFalse(has_backend("nginx", "tls-handshake"))  # `return` answers itself
        self.assertTrue(has_backend("nginx", "tls-echo"))
        self.assertTrue(has_backend("hitch", "tls-handshake"))
        self.assertFalse(has_backend("porticod", "tls-echo"))
        self.assertFalse(has_backend("haproxy", "proxy-echo"))


class Tables(unittest.TestCase):
    args = argparse.Namespace(connections=50, size=1024, idle_connections=10000, tls_idle_connections=5000,
                              stream_size=65536, duration="5s", balance_round_trips=100)

    @staticmethod
    def data(ops, **extra):
        d = {"ops": ops, "ops_per_sec": ops / 5, "latency_us": {"p50": 900, "p99": 2500}, "server_cpu_us_per_op": 300.0,
             "client_cpu_us_per_op": 400.0, "client_cpu_s": 1.0, "duration_s": 5.0, "server_rss_kb": 20000,
             "errors": {}}
        d.update(extra)
        return d

    def test_tls_handshakes_show_how_many_resumed_and_what_adds_up(self):
        tls = {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "group": "x25519", "server_key": "EC-256"}
        results = [
            {"server": "porticod", "workload": "tls-resume", "status": "skipped", "reason": "porticod rejected"},
            {"server": "nginx", "workload": "tls-resume", "status": "ok",
             "data": self.data(5000, tls=dict(tls, handshakes=4000, resumed=3990))},
            {"server": "haproxy", "workload": "tls-resume", "status": "ok", "processes": ["haproxy", "C floor"],
             "data": self.data(4000, tls=dict(tls, handshakes=4000, resumed=4000),
                               server_processes=[{"pid": 1, "cpu_s": 1.0, "rss_kb": 20000},
                                                 {"pid": 2, "cpu_s": 0.2, "rss_kb": 1300}])},
        ]
        text = tables(results, ["tls-resume"], self.args)
        self.assertIn("| server | conn/s | resumed | p50 |", text)
        self.assertIn("| nginx | 1,000 | 99.8% | 900 µs |", text)
        self.assertIn("| haproxy | 800 | 100.0% |", text)
        self.assertIn("- haproxy: server CPU and RSS are the sum of 2 processes: haproxy 250.0 + C floor 50.0 µs/op; "
                      "19.5 MiB + 1300 KiB", text)
        self.assertIn("- negotiated (every server): TLSv1.3 TLS_AES_128_GCM_SHA256 x25519, server key EC-256", text)
        self.assertIn("- porticod: skipped: porticod rejected", text)

    def test_balancing_shows_the_spread(self):
        s = spread([(10, 100 * 1024), (10, 100 * 1024), (11, 120 * 1024), (9, 80 * 1024)], 1024)
        results = [{"server": "haproxy", "workload": "proxy-balance-lc", "status": "ok", "spread": s,
                    "upstream_cpu_share": 0.1, "data": self.data(100000)}]
        text = tables(results, ["proxy-balance-lc"], self.args)
        self.assertIn("| errors | upstream shares % | max/min |", text)
        self.assertIn("| 0 | 25.0/25.0/30.0/20.0 | 1.50 |", text)
        self.assertIn("connections per upstream (over the warm-up and the window; the shares count 1024-byte "
                      "requests the same way): haproxy 10/10/11/9", text)

    def test_a_feature_is_set_beside_plain_porticod_round_by_round(self):
        results = [
            {"server": "porticod", "workload": "greeting", "status": "ok", "data": self.data(100000),
             "rounds": [20000, 21000, 19000], "round_cpu": [20.0, 25.0, 22.0]},
            {"server": "porticod-accesslog", "workload": "greeting", "status": "ok", "data": self.data(100000),
             "rounds": [20000, 20000, 18000], "round_cpu": [21.0, 26.0, None]},
            {"server": "porticod-metrics", "workload": "greeting", "status": "ok", "data": self.data(100000),
             "rounds": [20000, 20000, 18000], "round_cpu": [20.8, 25.0, 22.66]},
        ]
        text = tables(results, ["greeting"], self.args)
        # A failed round has no ratio; the median of two is the lower.
        self.assertIn("- porticod-accesslog: server CPU per op against porticod's, round by round: 1.05×, 1.04×; "
                      "median 1.04×, within its budget of 1.10×", text)
        self.assertIn("- porticod-metrics: server CPU per op against porticod's, round by round: 1.04×, 1.00×, 1.03×; "
                      "median 1.03×, over its budget of 1.02×", text)


class Sets(unittest.TestCase):
    def test_the_new_workloads_run_only_when_asked(self):
        # CI's --quick --gate runs the default set; TLS and balancing stay out of it.
        self.assertEqual(DEFAULT_WORKLOADS, ("greeting", "echo", "idle"))
        for w in TLS_WORKLOADS:
            self.assertEqual(SERVER_SETS[w], ("porticod", "nginx", "haproxy", "stunnel", "hitch"))


if __name__ == "__main__":
    unittest.main()
