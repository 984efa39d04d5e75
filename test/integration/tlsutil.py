"""TLS for the integration tests and bench/: a throwaway PKI made with the
openssl CLI, and memcached / redis-server backends that speak TLS.

make_pki(dir) writes, each as NAME.pem + NAME.key:
  ca          the test CA
  server      signed by ca, for 127.0.0.1 and localhost (IP and DNS SANs)
  server2     the same names, a new key and serial (a renewed certificate)
  client      a client certificate signed by ca
  other_ca    another CA, and other_client signed by it
  expired     a client certificate signed by ca that expired in 2021
and returns {name: (pem, key)} plus "dir". Certificates of one run are made
once per process (RSA 2048: about a second in all).

RedisTLS listens on a plaintext port (readiness, direct checks) and a TLS
port, which its server line names. MemcachedTLS likewise (memcached -Z, its
plaintext listener marked notls:).
"""

import os
import ssl
import subprocess

import harness as h

_PKI = None


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def _ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
             "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + cn, cwd=d)


def _leaf(d, name, ca, cn, san=None, serial=None):
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
             name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write("subjectAltName=%s\n" % san)
    args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-out", name + ".pem", "-days", "30", "-extfile", ext]
    args += ["-set_serial", str(serial)] if serial else ["-CAcreateserial"]
    _openssl(*args, cwd=d)


def _expired(d, name, ca):
    """A certificate valid from 2020-01-01 to 2021-01-01 (openssl ca can
    set both dates; openssl x509 -req cannot before 3.4)."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
             name + ".csr", "-subj", "/CN=expired client", cwd=d)
    db = os.path.join(d, "cadb")
    os.makedirs(db, exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = test\n[test]\ndir = %s\ndatabase = $dir/index.txt\n"
                "serial = $dir/serial\nnew_certs_dir = $dir\ndefault_md = sha256\n"
                "policy = any\n[any]\ncommonName = supplied\n" % db)
    _openssl("ca", "-batch", "-config", cnf, "-cert", ca + ".pem", "-keyfile", ca + ".key",
             "-in", name + ".csr", "-out", name + ".pem", "-startdate", "20200101000000Z",
             "-enddate", "20210101000000Z", "-notext", cwd=d)


def make_pki(d=None):
    global _PKI
    if _PKI is not None:
        return _PKI
    d = d or h.tmp_dir("pki")
    _ca(d, "ca", "cachemux test CA")
    _leaf(d, "server", "ca", "localhost", "IP:127.0.0.1,DNS:localhost", serial=0x1001)
    _leaf(d, "server2", "ca", "localhost", "IP:127.0.0.1,DNS:localhost", serial=0x2002)
    _leaf(d, "client", "ca", "test client", serial=0x3003)
    _ca(d, "other_ca", "another CA")
    _leaf(d, "other_client", "other_ca", "stranger", serial=0x4004)
    _expired(d, "expired", "ca")
    _PKI = {n: (os.path.join(d, n + ".pem"), os.path.join(d, n + ".key"))
            for n in ("ca", "server", "server2", "client", "other_ca", "other_client", "expired")}
    _PKI["dir"] = d
    return _PKI


def client_context(pki, cert=None, verify=True):
    """An SSLContext trusting the test CA (checking 127.0.0.1 against the
    IP SAN), presenting cert (a make_pki name) when given."""
    ctx = ssl.create_default_context(cafile=pki["ca"][0])
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*pki[cert])
    return ctx


class RedisTLS(h.Redis):
    """redis-server with a plaintext port (self.port: readiness and direct
    checks) and a TLS port (self.tls_port, in the server line)."""
    kind = "redis-tls"

    def __init__(self, pki, name=None, weight=1, extra=(), cert="server"):
        h.Redis.__init__(self, None, name, weight, extra)
        self.pki = pki
        self.cert = cert
        self.tls_port = None

    def _argv(self):
        self.tls_port = h.free_port()
        pem, key = self.pki[self.cert]
        return h.Redis._argv(self) + [
            "--tls-port", str(self.tls_port), "--tls-cert-file", pem, "--tls-key-file", key,
            "--tls-ca-cert-file", self.pki["ca"][0], "--tls-auth-clients", "no"]

    def server_line(self):
        s = "%s:%d:%d" % (h.HOST, self.tls_port, self.weight)
        return s + (" " + self.name if self.name else "")


class MemcachedTLS(h.Memcached):
    """memcached -Z: self.port plaintext (notls:), self.tls_port TLS."""
    kind = "memcached-tls"

    def __init__(self, pki, name=None, weight=1, max_item="8m", memory=128):
        h.Memcached.__init__(self, None, name, weight, max_item, memory)
        self.pki = pki
        self.tls_port = None

    def _argv(self):
        self.tls_port = h.free_port()
        pem, key = self.pki["server"]
        argv = h.Memcached._argv(self)
        i = argv.index("-l")
        argv[i + 1] = "notls:%s:%d,%s:%d" % (h.HOST, self.port, h.HOST, self.tls_port)
        return argv + ["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (pem, key)]

    def server_line(self):
        s = "%s:%d:%d" % (h.HOST, self.tls_port, self.weight)
        return s + (" " + self.name if self.name else "")
