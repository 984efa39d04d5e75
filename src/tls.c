/*
 * tls: contexts per pool and generation, and TLS sockets (see tls.h).
 *
 * Threads. Contexts are built on the supervisor's thread and then only read
 * by workers (SSL_new takes its own reference, so a context outlives its
 * generation while a connection uses it). A tls_sock belongs to the worker
 * that owns its connection. OpenSSL's error queue is per thread; it is
 * emptied after every failure so the next call's SSL_get_error is sound.
 *
 * The write side of every socket is a BIO of our own that appends to the
 * socket's out buffer:
 *
 *   plaintext iovecs --SSL_write--> [out: records ...] --write()--> fd
 *
 * Small pieces (replies of a pipeline) are first copied into a staging
 * buffer of one record, so thirty replies make one record, not thirty.
 * The read side is a plain socket BIO with read-ahead.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"

/* Plaintext one tls_writev encrypts at most: the out buffer stays bounded
   by about this much beyond what the socket took. */
#define TLS_WRITE_MAX (256u * 1024)
/* One TLS record's worth of plaintext; smaller pieces are gathered. */
#define TLS_STAGE 16384
#define TLS_TEXT_MAX 200

struct tls_sock {
    SSL *ssl;
    struct buf out;           /* ciphertext not yet written */
    bool hs_want_write;       /* a socket BIO (kTLS) could not write */
    bool eof;                 /* the peer's end of stream was read */
    bool more;                /* whole records may wait in OpenSSL's buffer */
    bool gather;              /* small pieces share records (tls_set_gather) */
    bool ktls;                /* the kernel does the record layer, both ways */
    bool ktls_tx;             /* the kernel encrypts what we write */
    uint64_t deadline_ms;     /* the handshake's, for the caller's timer */
    enum stats_tls_fail fail; /* why the handshake failed */
    char text[TLS_TEXT_MAX];  /* and in words */
};

/* 1: gather pieces smaller than half a record into one (the default);
   0: one SSL_write per piece, for measuring what gathering saves
   (bench/README.md). */
#ifndef CMX_TLS_GATHER
#define CMX_TLS_GATHER 1
#endif

static BIO_METHOD *tls_out_method;
static bool tls_kernel_ktls;
static _Thread_local uint8_t tls_stage[TLS_STAGE];
/* An emptied out buffer kept by the worker for the next socket that
   writes: an idle TLS connection holds no buffer, and a busy worker does
   not malloc one per write. */
static _Thread_local struct buf tls_spare;

/* ---- the out BIO ---- */

static int
tls_bio_write(BIO *b, const char *data, int len)
{
    struct tls_sock *t = BIO_get_data(b);

    if (len <= 0) {
        return 0;
    }
    if (t->out.data == NULL && tls_spare.data != NULL) {
        t->out = tls_spare;
        tls_spare = (struct buf){ 0 };
    }
    if (buf_append(&t->out, data, (size_t)len) != 0) {
        return -1;
    }
    return len;
}

static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Everything written is as good as sent: the caller writes it. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

int
tls_init(void)
{
    char ulp[256] = "";
    int fd;

    tls_out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cachemux out");
    if (tls_out_method == NULL || !BIO_meth_set_write(tls_out_method, tls_bio_write) ||
        !BIO_meth_set_ctrl(tls_out_method, tls_bio_ctrl) ||
        !BIO_meth_set_create(tls_out_method, tls_bio_create)) {
        return -1;
    }
    /* kTLS needs the kernel's "tls" upper layer protocol. */
    if ((fd = open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC)) >= 0) {
        ssize_t n = read(fd, ulp, sizeof(ulp) - 1);
        ulp[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    for (char *w = strtok(ulp, " \n"); w != NULL; w = strtok(NULL, " \n")) {
        tls_kernel_ktls = tls_kernel_ktls || strcmp(w, "tls") == 0;
    }
    return 0;
}

bool
tls_kernel_has_ktls(void)
{
    return tls_kernel_ktls;
}

/* ---- contexts ---- */

/* OpenSSL's reason for the last failure, and an emptied error queue. */
static const char *
tls_ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    snprintf(buf, len, "%s", r != NULL ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

static void tls_conf_err(struct conf_errors *errs, const struct conf_pool *cp, int line,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
tls_conf_err(struct conf_errors *errs, const struct conf_pool *cp, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conf_errors_add(errs, cp->file, line > 0 ? line : cp->line, "pool %s: %s", cp->name, msg);
}

/* A file named by key k can be read at all (OpenSSL's own message for a
   missing file is less plain). */
static bool
tls_readable(struct conf_errors *errs, const struct conf_pool *cp, const char *k,
             const struct conf_path *f)
{
    char ebuf[128];

    if (access(f->path, R_OK) == 0) {
        return true;
    }
    tls_conf_err(errs, cp, f->line, "%s '%s': cannot read it: %s", k, f->path,
                 util_strerror(errno, ebuf, sizeof(ebuf)));
    return false;
}

/* Load a certificate chain and its key into ctx, check they match and
   that the certificate is valid now; its expiry into *not_after. */
static bool
tls_load_pair(SSL_CTX *ctx, struct conf_errors *errs, const struct conf_pool *cp,
              const char *cert_key, const struct conf_path *cert, const char *key_key,
              const struct conf_path *key, int64_t *not_after)
{
    char why[TLS_TEXT_MAX];
    struct tm tm;

    if (!tls_readable(errs, cp, cert_key, cert) || !tls_readable(errs, cp, key_key, key)) {
        return false;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert->path) != 1) {
        tls_conf_err(errs, cp, cert->line, "%s '%s': not a PEM certificate chain: %s", cert_key,
                     cert->path, tls_ossl_reason(why, sizeof(why)));
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key->path, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        tls_conf_err(errs, cp, key->line, "%s '%s' does not match %s '%s'", key_key, key->path,
                     cert_key, cert->path);
        return false;
    }
    if (SSL_CTX_get0_privatekey(ctx) == NULL) {
        tls_conf_err(errs, cp, key->line, "%s '%s': not a PEM private key: %s", key_key, key->path,
                     tls_ossl_reason(why, sizeof(why)));
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_conf_err(errs, cp, key->line, "%s '%s' does not match %s '%s': %s", key_key, key->path,
                     cert_key, cert->path, tls_ossl_reason(why, sizeof(why)));
        return false;
    }
    X509 *x = SSL_CTX_get0_certificate(ctx);
    const ASN1_TIME *na = x != NULL ? X509_get0_notAfter(x) : NULL;
    if (na == NULL || ASN1_TIME_to_tm(na, &tm) != 1) {
        tls_conf_err(errs, cp, cert->line, "%s '%s': no expiry date", cert_key, cert->path);
        return false;
    }
    *not_after = (int64_t)timegm(&tm);
    if (X509_cmp_current_time(na) <= 0) {
        char when[64];
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        tls_conf_err(errs, cp, cert->line, "%s '%s': the certificate expired on %s", cert_key,
                     cert->path, when);
        return false;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        tls_conf_err(errs, cp, cert->line, "%s '%s': the certificate is not valid yet", cert_key,
                     cert->path);
        return false;
    }
    return true;
}

/* Settings both sides share: modes and versions. */
static void
tls_ctx_common(SSL_CTX *ctx)
{
    /* Partial writes: never needed with the out BIO, harmless; moving
       buffers: the staging buffer is reused; release buffers: an idle TLS
       connection holds no record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* A peer that closes without close_notify has ended its stream: the
       protocols on top frame their own messages. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(ctx, 1);
}

static SSL_CTX *
tls_accept_ctx(const struct conf_pool *cp, int64_t *not_after, struct conf_errors *errs)
{
    const struct conf_tls *t = &cp->tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char why[TLS_TEXT_MAX];
    unsigned char sid[SSL_MAX_SID_CTX_LENGTH];

    if (ctx == NULL) {
        tls_conf_err(errs, cp, t->line, "tls: %s", tls_ossl_reason(why, sizeof(why)));
        return NULL;
    }
    tls_ctx_common(ctx);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(ctx,
                                  (t->protocols & CONF_TLS_V12) ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx,
                                  (t->protocols & CONF_TLS_V13) ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (t->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1) {
        tls_conf_err(errs, cp, t->ciphers_line, "tls_ciphers '%s': %s", t->ciphers,
                     tls_ossl_reason(why, sizeof(why)));
        goto fail;
    }
    if (t->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
        tls_conf_err(errs, cp, t->ciphersuites_line, "tls_ciphersuites '%s': %s", t->ciphersuites,
                     tls_ossl_reason(why, sizeof(why)));
        goto fail;
    }
    if (!tls_load_pair(ctx, errs, cp, "tls_cert_file", &t->cert_file, "tls_key_file", &t->key_file,
                       not_after)) {
        goto fail;
    }
    if (t->ca_file.path != NULL) {
        if (!tls_readable(errs, cp, "tls_ca_file", &t->ca_file)) {
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file.path);
        if (SSL_CTX_load_verify_locations(ctx, t->ca_file.path, NULL) != 1 || names == NULL) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            tls_conf_err(errs, cp, t->ca_file.line, "tls_ca_file '%s': no PEM certificates: %s",
                         t->ca_file.path, tls_ossl_reason(why, sizeof(why)));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (t->verify_client) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    /* Resumed sessions are only accepted by the pool that made them. */
    int n = snprintf((char *)sid, sizeof(sid), "cachemux %s", cp->name);
    SSL_CTX_set_session_id_context(ctx, sid, (unsigned)MIN((size_t)n, sizeof(sid) - 1));
    if (t->session_cache) {
        /* Tickets (stateless, no lock shared by the workers) and a session
           cache for TLS 1.2 clients that resume by id. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (t->ktls && tls_kernel_ktls) {
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    }
    ERR_clear_error();
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static SSL_CTX *
tls_connect_ctx(const struct conf_pool *cp, int64_t *not_after, struct conf_errors *errs)
{
    const struct conf_server_tls *t = &cp->server_tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char why[TLS_TEXT_MAX];

    if (ctx == NULL) {
        tls_conf_err(errs, cp, t->line, "server_tls: %s", tls_ossl_reason(why, sizeof(why)));
        return NULL;
    }
    tls_ctx_common(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Sessions are kept per server conn by the caller (tls_session_get). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    if (t->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (t->ca_file.path != NULL) {
            if (!tls_readable(errs, cp, "server_tls_ca_file", &t->ca_file)) {
                goto fail;
            }
            if (SSL_CTX_load_verify_locations(ctx, t->ca_file.path, NULL) != 1) {
                tls_conf_err(errs, cp, t->ca_file.line,
                             "server_tls_ca_file '%s': no PEM certificates: %s", t->ca_file.path,
                             tls_ossl_reason(why, sizeof(why)));
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            tls_conf_err(errs, cp, t->line, "server_tls: the system's CA store: %s",
                         tls_ossl_reason(why, sizeof(why)));
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (t->cert_file.path != NULL &&
        !tls_load_pair(ctx, errs, cp, "server_tls_cert_file", &t->cert_file, "server_tls_key_file",
                       &t->key_file, not_after)) {
        goto fail;
    }
    ERR_clear_error();
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

int
tls_pool_ctxs(const struct conf_pool *cp, struct tls_ctxs *out, struct conf_errors *errs)
{
    memset(out, 0, sizeof(*out));
    if (cp->tls.on && (out->accept = tls_accept_ctx(cp, &out->cert_not_after, errs)) == NULL) {
        return -1;
    }
    if (cp->server_tls.on &&
        (out->connect = tls_connect_ctx(cp, &out->server_cert_not_after, errs)) == NULL) {
        tls_ctxs_free(out);
        return -1;
    }
    if (cp->server_tls.on && !cp->server_tls.verify) {
        log_warn("pool %s: server_tls_verify = false: the servers' certificates are not "
                 "verified",
                 cp->name);
    }
    if (cp->tls.on && cp->tls.ktls && !tls_kernel_ktls) {
        log_warn("pool %s: tls_ktls = true but the kernel offers no kTLS (no \"tls\" in "
                 "/proc/sys/net/ipv4/tcp_available_ulp): OpenSSL does the record layer",
                 cp->name);
    }
    return 0;
}

void
tls_ctxs_free(struct tls_ctxs *c)
{
    SSL_CTX_free(c->accept);
    SSL_CTX_free(c->connect);
    memset(c, 0, sizeof(*c));
}

/* ---- sockets ---- */

struct tls_sock *
tls_sock_new(SSL_CTX *ctx, int fd, bool accept, const char *name, bool name_is_ip,
             SSL_SESSION *resume)
{
    struct tls_sock *t = calloc(1, sizeof(*t));
    BIO *rbio = NULL, *wbio = NULL;
    bool ktls = (SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS) != 0;

    if (t == NULL || (t->ssl = SSL_new(ctx)) == NULL) {
        goto fail;
    }
    if ((rbio = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL) {
        goto fail;
    }
    /* kTLS is set up on a socket BIO; the out BIO takes over after the
       handshake when the kernel declined. */
    wbio = ktls ? BIO_new_socket(fd, BIO_NOCLOSE) : BIO_new(tls_out_method);
    if (wbio == NULL) {
        goto fail;
    }
    if (!ktls) {
        BIO_set_data(wbio, t);
    }
    SSL_set_bio(t->ssl, rbio, wbio);
    if (ktls) {
        SSL_set_read_ahead(t->ssl, 0); /* records read ahead would stay in OpenSSL */
    }
    rbio = wbio = NULL;
    t->gather = true;
    if (accept) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (name != NULL && name_is_ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1) {
                goto fail;
            }
        } else if (name != NULL) {
            if (SSL_set_tlsext_host_name(t->ssl, name) != 1 || SSL_set1_host(t->ssl, name) != 1) {
                goto fail;
            }
        }
        if (resume != NULL) {
            (void)SSL_set_session(t->ssl, resume);
        }
    }
    ERR_clear_error();
    return t;
fail:
    BIO_free(rbio);
    BIO_free(wbio);
    if (t != NULL) {
        SSL_free(t->ssl);
        free(t);
    }
    ERR_clear_error();
    return NULL;
}

/* Write what waits in t->out. Returns 0 (some may still wait) or -errno. */
static int
tls_flush(struct tls_sock *t, int fd)
{
    while (buf_len(&t->out) > 0) {
        ssize_t w = write(fd, buf_head(&t->out), buf_len(&t->out));
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        buf_consume(&t->out, (size_t)w);
        if (buf_len(&t->out) > 0) {
            return 0; /* short: the socket is full */
        }
    }
    /* Emptied: the worker keeps one buffer (not a burst's large one). */
    if (t->out.data != NULL) {
        if (tls_spare.data == NULL && t->out.cap <= 2 * TLS_WRITE_MAX) {
            buf_reset(&t->out);
            tls_spare = t->out;
            t->out = (struct buf){ 0 };
        } else {
            buf_free(&t->out);
        }
    }
    return 0;
}

void
tls_worker_done(void)
{
    buf_free(&tls_spare);
}

void
tls_sock_free(struct tls_sock *t, int fd, bool notify)
{
    if (t == NULL) {
        return;
    }
    if (notify && fd >= 0 && t->ssl != NULL && SSL_is_init_finished(t->ssl) && !t->ktls) {
        (void)SSL_shutdown(t->ssl); /* queues close_notify in t->out */
        (void)tls_flush(t, fd);
    }
    SSL_free(t->ssl);
    buf_free(&t->out);
    ERR_clear_error();
    free(t);
}

/* Classify a failure of SSL_do_handshake/SSL_read (err: SSL_get_error). */
static void
tls_set_fail(struct tls_sock *t, int err, int saved_errno)
{
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_REASON(e);
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    char ebuf[128];

    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && e == 0 && saved_errno == 0)) {
        t->fail = STATS_TLS_FAIL_peer_closed;
        snprintf(t->text, sizeof(t->text), "the peer closed the connection");
    } else if (err == SSL_ERROR_SYSCALL && e == 0) {
        t->fail = saved_errno == ECONNRESET ? STATS_TLS_FAIL_peer_closed : STATS_TLS_FAIL_error;
        snprintf(t->text, sizeof(t->text), "%s", util_strerror(saved_errno, ebuf, sizeof(ebuf)));
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        t->fail = STATS_TLS_FAIL_bad_certificate;
        snprintf(t->text, sizeof(t->text), "certificate verify failed: %s",
                 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        t->fail = STATS_TLS_FAIL_no_certificate;
        snprintf(t->text, sizeof(t->text), "%s", r != NULL ? r : "no certificate");
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET) {
        t->fail = STATS_TLS_FAIL_alert;
        snprintf(t->text, sizeof(t->text), "the peer sent an alert: %s", r != NULL ? r : "?");
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
        t->fail = STATS_TLS_FAIL_protocol;
        snprintf(t->text, sizeof(t->text), "%s", r != NULL ? r : "protocol error");
    } else {
        t->fail = STATS_TLS_FAIL_error;
        snprintf(t->text, sizeof(t->text), "%s", r != NULL ? r : "error");
    }
    ERR_clear_error();
}

/* A socket error while writing the handshake. Returns -1. */
static int
tls_write_failed(struct tls_sock *t, int err)
{
    char ebuf[128];

    t->fail = err == EPIPE || err == ECONNRESET ? STATS_TLS_FAIL_peer_closed : STATS_TLS_FAIL_error;
    snprintf(t->text, sizeof(t->text), "%s", util_strerror(err, ebuf, sizeof(ebuf)));
    return -1;
}

int
tls_handshake(struct tls_sock *t, int fd)
{
    int rc, err, saved;

    /* The previous flight first: a peer waits for it. */
    if ((rc = tls_flush(t, fd)) < 0) {
        return tls_write_failed(t, -rc);
    }
    t->hs_want_write = false;
    errno = 0;
    rc = SSL_do_handshake(t->ssl);
    saved = errno;
    if (rc == 1) {
        if ((rc = tls_flush(t, fd)) < 0) {
            return tls_write_failed(t, -rc);
        }
        /* Requests sent right behind the Finished message were read ahead. */
        t->more = SSL_has_pending(t->ssl);
        if (SSL_CTX_get_options(SSL_get_SSL_CTX(t->ssl)) & SSL_OP_ENABLE_KTLS) {
            t->ktls_tx = BIO_get_ktls_send(SSL_get_wbio(t->ssl));
            t->ktls = t->ktls_tx && BIO_get_ktls_recv(SSL_get_rbio(t->ssl));
            if (!t->ktls_tx) {
                /* Declined (a cipher the kernel lacks): our own writes after
                   all. (Sending only: plaintext goes to the socket as is.) */
                BIO *wbio = BIO_new(tls_out_method);
                if (wbio == NULL) {
                    t->fail = STATS_TLS_FAIL_error;
                    snprintf(t->text, sizeof(t->text), "out of memory");
                    return -1;
                }
                BIO_set_data(wbio, t);
                SSL_set0_wbio(t->ssl, wbio);
            }
        }
        return 1;
    }
    err = SSL_get_error(t->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        t->hs_want_write = err == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        if ((rc = tls_flush(t, fd)) < 0) {
            return tls_write_failed(t, -rc);
        }
        return 0;
    }
    tls_set_fail(t, err, saved);
    /* An alert we queued tells the peer why; it goes if the socket takes it. */
    (void)tls_flush(t, fd);
    return -1;
}

enum stats_tls_fail
tls_fail_reason(const struct tls_sock *t)
{
    return t->fail;
}

const char *
tls_fail_text(const struct tls_sock *t)
{
    return t->text;
}

ssize_t
tls_readv(struct tls_sock *t, const struct iovec *iov, int n)
{
    size_t total = 0;

    if (t->eof) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        while (off < iov[i].iov_len) {
            size_t got = 0;
            int saved;
            errno = 0;
            if (SSL_read_ex(t->ssl, (uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off, &got) ==
                1) {
                off += got;
                total += got;
                /* Another read of the socket would most likely find nothing. */
                if (!SSL_has_pending(t->ssl)) {
                    t->more = false;
                    return (ssize_t)total;
                }
                continue;
            }
            /* What is left is part of a record: the socket will say. */
            t->more = false;
            saved = errno;
            int err = SSL_get_error(t->ssl, 0);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return total > 0 ? (ssize_t)total : -EAGAIN;
            }
            if (err == SSL_ERROR_ZERO_RETURN ||
                (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && saved == 0)) {
                ERR_clear_error();
                t->eof = true;
                return (ssize_t)total;
            }
            tls_set_fail(t, err, saved);
            if (total > 0) {
                return (ssize_t)total; /* the error shows again on the next read */
            }
            return err == SSL_ERROR_SYSCALL && saved != 0 ? -saved : -EPROTO;
        }
    }
    /* The buffers are full and OpenSSL holds more. */
    t->more = SSL_has_pending(t->ssl);
    return (ssize_t)total;
}

/* Encrypt len bytes into t->out. Returns 0 or -ENOMEM. */
static int
tls_encrypt(struct tls_sock *t, const void *p, size_t len)
{
    const uint8_t *q = p;
    size_t w;

    /* With partial writes on, each call may stop after a record. */
    while (len > 0) {
        if (SSL_write_ex(t->ssl, q, len, &w) != 1) {
            ERR_clear_error();
            return -ENOMEM; /* the out BIO only fails when memory does */
        }
        q += w;
        len -= w;
    }
    return 0;
}

int
tls_writev(struct tls_sock *t, int fd, const struct iovec *iov, int n, size_t *consumed)
{
    size_t staged = 0, taken = 0;
    int rc;

    *consumed = 0;
    if (t->ktls_tx) {
        /* The kernel makes the records. */
        ssize_t w = n > 0 ? writev(fd, iov, n) : 0;
        if (w < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
        }
        *consumed = (size_t)w;
        return 0;
    }
    if ((rc = tls_flush(t, fd)) < 0) {
        return rc;
    }
    if (buf_len(&t->out) > 0) {
        return 0; /* the socket is still full */
    }
    for (int i = 0; i < n && taken < TLS_WRITE_MAX; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = MIN(iov[i].iov_len, TLS_WRITE_MAX - taken);
        if (!CMX_TLS_GATHER || !t->gather || len >= TLS_STAGE / 2) {
            /* A large piece (a body chunk) is a record or more on its own. */
            if ((rc = tls_encrypt(t, tls_stage, staged)) < 0 || (rc = tls_encrypt(t, p, len)) < 0) {
                return rc;
            }
            staged = 0;
        } else {
            if (staged + len > TLS_STAGE) {
                if ((rc = tls_encrypt(t, tls_stage, staged)) < 0) {
                    return rc;
                }
                staged = 0;
            }
            memcpy(tls_stage + staged, p, len);
            staged += len;
        }
        taken += len;
    }
    if ((rc = tls_encrypt(t, tls_stage, staged)) < 0) {
        return rc;
    }
    *consumed = taken;
    return tls_flush(t, fd);
}

void
tls_set_gather(struct tls_sock *t, bool on)
{
    t->gather = on;
}

void
tls_set_deadline(struct tls_sock *t, uint64_t ms)
{
    t->deadline_ms = ms;
}

uint64_t
tls_deadline(const struct tls_sock *t)
{
    return t->deadline_ms;
}

bool
tls_out_pending(const struct tls_sock *t)
{
    return buf_len(&t->out) > 0 || t->hs_want_write;
}

bool
tls_in_pending(const struct tls_sock *t)
{
    return t->more && !t->eof;
}

int
tls_version(const struct tls_sock *t)
{
    return SSL_version(t->ssl) == TLS1_3_VERSION ? 13 : 12;
}

bool
tls_resumed(const struct tls_sock *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

bool
tls_ktls(const struct tls_sock *t)
{
    return t->ktls;
}

SSL_SESSION *
tls_session_get(const struct tls_sock *t)
{
    SSL_SESSION *s = SSL_get1_session(t->ssl);

    if (s != NULL && !SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

void
tls_session_free(SSL_SESSION *s)
{
    SSL_SESSION_free(s);
}

const char *
tls_peer_serial(const struct tls_sock *t, char *buf, size_t len)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    BIGNUM *bn = x != NULL ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

    snprintf(buf, len, "%s", hex != NULL ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    return buf;
}
