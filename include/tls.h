/*
 * tls: TLS through OpenSSL 3 on cachemux's own non-blocking sockets.
 *
 * Two halves. Contexts (SSL_CTX) are built by the supervisor when it loads
 * or reloads a configuration, one per pool and side, and are shared
 * read-only by every worker; a reload builds new ones, so new connections
 * use new certificates while established ones keep theirs (each SSL holds
 * a reference to its context). Sockets (struct tls_sock) are one per TLS
 * connection and belong to the worker that owns the connection.
 *
 * Bytes. A tls_sock reads straight from its socket (read-ahead on, so one
 * read() usually brings every record that arrived) and encrypts into a
 * memory buffer that it then writes with one write(): records of many
 * replies leave in one syscall, and OpenSSL never sees a full socket, so
 * its "retry with the same buffer" rule never binds the caller's queues.
 * Ciphertext that did not fit in the socket waits in that buffer
 * (tls_out_pending); decrypted bytes OpenSSL holds beyond what the caller's
 * buffers took wait in OpenSSL (tls_in_pending), and the socket may never
 * become readable for them, so callers must look.
 */
#ifndef CMX_TLS_H
#define CMX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stats.h"
#include "util.h"

struct conf_pool;
struct conf_errors;
struct iovec;
struct ssl_ctx_st;
struct ssl_session_st;
struct tls_sock;

/* A pool's contexts and what the metrics say about its certificate. */
struct tls_ctxs {
    struct ssl_ctx_st *accept;     /* clients -> cachemux (tls = true), or NULL */
    struct ssl_ctx_st *connect;    /* cachemux -> servers (server_tls = true), or NULL */
    int64_t cert_not_after;        /* tls_cert_file's expiry, seconds since the epoch */
    int64_t server_cert_not_after; /* server_tls_cert_file's, likewise */
};

/*
 * Once per process, before any other call: makes the memory BIO method
 * and looks whether the kernel offers kTLS. Returns 0 or -1.
 */
int tls_init(void) MUSTCHECK;

/* A worker thread is about to exit: free what the thread keeps. */
void tls_worker_done(void);

/* Whether the kernel offers the "tls" TCP ULP (kTLS). */
bool tls_kernel_has_ktls(void);

/*
 * Build cp's contexts into out (zeroed first): read its certificate, key
 * and CA files, check that key and certificate match and that the
 * certificate has not expired. Supervisor only (file I/O). Returns 0, or
 * -1 with "FILE:LINE: message" problems added to errs, naming the key that
 * named the file, and nothing left in out.
 */
int tls_pool_ctxs(const struct conf_pool *cp, struct tls_ctxs *out, struct conf_errors *errs);

/* Drop the reference a tls_ctxs holds (NULL members are fine). */
void tls_ctxs_free(struct tls_ctxs *c);

/*
 * A TLS socket on fd for a connection being accepted (accept = true) or
 * made. For a connection made: name is the server's name (SNI and the
 * name verified) or NULL, name_is_ip says it is an IP address (no SNI;
 * verified against the certificate's IP SANs), and resume is a session to
 * offer (NULL: none; the socket takes its own reference). Returns NULL when
 * out of memory.
 */
struct tls_sock *tls_sock_new(struct ssl_ctx_st *ctx, int fd, bool accept, const char *name,
                              bool name_is_ip, struct ssl_session_st *resume);

/* Free t: a close_notify is queued and written if the socket takes it at
   once (notify), never waited for. fd is not closed. */
void tls_sock_free(struct tls_sock *t, int fd, bool notify);

/*
 * Drive t's handshake one step (after readiness). Returns 1 when it is
 * done, 0 when it waits for the socket (readability, and writability too
 * when tls_out_pending), or -1 when it failed: tls_fail_reason and
 * tls_fail_text say why.
 */
int tls_handshake(struct tls_sock *t, int fd) MUSTCHECK;
/* Why it failed: the reason label of the failure counters (stats.h). */
enum stats_tls_fail tls_fail_reason(const struct tls_sock *t);
const char *tls_fail_text(const struct tls_sock *t);

/* Read decrypted bytes into iov[0..n), filling one after another. Returns
   bytes read, 0 at the peer's end of stream, -EAGAIN, or -errno (-EPROTO
   for a TLS error, its text in tls_fail_text). */
ssize_t tls_readv(struct tls_sock *t, const struct iovec *iov, int n);

/*
 * Write: first the ciphertext still waiting; when all of it left, encrypt
 * (a bounded amount of) iov[0..n) and write that. *consumed gets the
 * plaintext bytes taken, which are the caller's to forget even if some of
 * their ciphertext still waits (tls_out_pending). Returns 0 or -errno.
 */
int tls_writev(struct tls_sock *t, int fd, const struct iovec *iov, int n,
               size_t *consumed) MUSTCHECK;

/* on (the default): pieces smaller than half a record written together
   share records. off: every piece is a record (or more) of its own, for
   a peer that must find each request's end at a record's end. */
void tls_set_gather(struct tls_sock *t, bool on);

/* The handshake's deadline (monotonic ms), kept for the caller's timer. */
void tls_set_deadline(struct tls_sock *t, uint64_t ms);
uint64_t tls_deadline(const struct tls_sock *t);

/* Ciphertext waits for the socket to take it. */
bool tls_out_pending(const struct tls_sock *t);
/* Bytes wait in OpenSSL that the socket will not announce: the last read
   filled the caller's buffers with more left, or the handshake read
   records ahead. (Part of a record is not counted: the socket announces
   the rest.) */
bool tls_in_pending(const struct tls_sock *t);

/* After the handshake: "TLSv1.2" / "TLSv1.3" as 12 / 13, whether the
   session was resumed, and whether the kernel does the record layer
   (kTLS on both directions). */
int tls_version(const struct tls_sock *t);
bool tls_resumed(const struct tls_sock *t);
bool tls_ktls(const struct tls_sock *t);

/* The session to resume with on a next connection (a reference the caller
   frees with tls_session_free), or NULL when it is not resumable. */
struct ssl_session_st *tls_session_get(const struct tls_sock *t);
void tls_session_free(struct ssl_session_st *s);

/* The serial number of the certificate a peer presented, in hex (for
   logs and tests), into buf; "" when none. */
const char *tls_peer_serial(const struct tls_sock *t, char *buf, size_t len);

#endif
