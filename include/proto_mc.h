/*
 * proto_mc: the memcached ASCII protocol, requests and responses. Pure and
 * incremental: the caller hands in the bytes it has; the parser says OK
 * (one whole request or response unit at the front, with offsets into the
 * buffer), AGAIN (need more bytes) or ERROR (with the reply the client must
 * get). Nothing here touches sockets or allocates; value bodies are located
 * by length, never scanned.
 */
#ifndef CMX_PROTO_MC_H
#define CMX_PROTO_MC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_MAX_KEY_LEN 250
/* Longest command line we wait for before calling it malformed. */
#define MC_MAX_LINE_LEN (1024 * 1024)
/* Longest response line (VALUE header, error text, ...) before the server
 * conn is declared broken. */
#define MC_MAX_RSP_LINE_LEN 8192

enum mc_kind {
    MC_KIND_RETRIEVAL, /* get gets: keys... */
    MC_KIND_GAT,       /* gat gats: exptime keys... */
    MC_KIND_STORAGE,   /* set add replace append prepend: key flags exptime bytes [noreply] */
    MC_KIND_CAS,       /* cas key flags exptime bytes cas [noreply] */
    MC_KIND_DELETE,    /* delete key [noreply] (memcached also takes a 0 time) */
    MC_KIND_ARITH,     /* incr decr: key value [noreply] */
    MC_KIND_TOUCH,     /* touch key exptime [noreply] */
    MC_KIND_VERSION,   /* version (extra arguments ignored) */
    MC_KIND_QUIT,      /* quit */
    MC_KIND_STATS,     /* stats: answered by the proxy (with an argument: an error) */
    MC_KIND_FLUSH,     /* flush_all [delay] [noreply]: sent to every server */
    MC_KIND_VERBOSITY, /* verbosity level [noreply]: answered OK by the proxy */
};

/* X-macro: enum, wire name, kind. */
#define MC_CMD_LIST(X)                          \
    X(MC_GET, "get", MC_KIND_RETRIEVAL)         \
    X(MC_GETS, "gets", MC_KIND_RETRIEVAL)       \
    X(MC_GAT, "gat", MC_KIND_GAT)               \
    X(MC_GATS, "gats", MC_KIND_GAT)             \
    X(MC_SET, "set", MC_KIND_STORAGE)           \
    X(MC_ADD, "add", MC_KIND_STORAGE)           \
    X(MC_REPLACE, "replace", MC_KIND_STORAGE)   \
    X(MC_APPEND, "append", MC_KIND_STORAGE)     \
    X(MC_PREPEND, "prepend", MC_KIND_STORAGE)   \
    X(MC_CAS, "cas", MC_KIND_CAS)               \
    X(MC_DELETE, "delete", MC_KIND_DELETE)      \
    X(MC_INCR, "incr", MC_KIND_ARITH)           \
    X(MC_DECR, "decr", MC_KIND_ARITH)           \
    X(MC_TOUCH, "touch", MC_KIND_TOUCH)         \
    X(MC_VERSION, "version", MC_KIND_VERSION)   \
    X(MC_QUIT, "quit", MC_KIND_QUIT)            \
    X(MC_STATS, "stats", MC_KIND_STATS)         \
    X(MC_FLUSH_ALL, "flush_all", MC_KIND_FLUSH) \
    X(MC_VERBOSITY, "verbosity", MC_KIND_VERBOSITY)

#define MC_CMD_ENUM(e, s, k) e,
enum mc_cmd { MC_CMD_LIST(MC_CMD_ENUM) MC_CMD_COUNT };
#undef MC_CMD_ENUM

enum mc_parse { MC_PARSE_OK, MC_PARSE_AGAIN, MC_PARSE_ERROR };

/* What went wrong with a request; each maps to one reply (mc_error_reply). */
enum mc_req_error {
    MC_ERR_NONE,
    MC_ERR_UNKNOWN_CMD,  /* "ERROR", connection stays open */
    MC_ERR_ARITY,        /* "ERROR", connection stays open */
    MC_ERR_KEY_TOO_LONG, /* "CLIENT_ERROR bad command line format", then close */
    MC_ERR_BAD_FORMAT,   /* "CLIENT_ERROR bad command line format", then close */
    MC_ERR_BAD_CHUNK,    /* "CLIENT_ERROR bad data chunk", then close */
    MC_ERR_TOO_LARGE,    /* "SERVER_ERROR object too large for cache", then close */
};

struct mc_req {
    enum mc_cmd cmd;       /* MC_CMD_COUNT when the command is unknown */
    enum mc_req_error err; /* set when the result is MC_PARSE_ERROR */
    size_t line_len;       /* command line including its "\r\n" or "\n" */
    size_t total_len;      /* line + data block + its "\r\n" (== line_len without data) */
    size_t keys_off;       /* first key token */
    size_t keys_end;       /* end of the last key token */
    uint32_t nkeys;
    size_t noreply_off; /* the " noreply" token with its leading space */
    size_t noreply_len; /* 0 when absent */
    size_t data_off;    /* value bytes of a storage command */
    size_t data_len;
};

/*
 * Parse one request at buf[0..len). max_request_size bounds the declared
 * total size (checked before the body arrives). On MC_PARSE_OK, req
 * describes a whole request of req->total_len bytes. On MC_PARSE_ERROR,
 * req->err says which reply to send; for errors that keep the connection
 * open (mc_error_closes() false) req->line_len bytes are to be skipped.
 * On MC_PARSE_AGAIN after a complete, valid storage line, total_len already
 * holds the size of the whole request (0 while the line is incomplete), so
 * the caller can size its buffer once.
 *
 * skipped: bytes of the data block that were read elsewhere (a large
 * value read around the buffer, cut where the buffered bytes ended).
 * data_len stays the declared length; total_len and the place of the
 * block's "\r\n" count the buffer's bytes only.
 */
enum mc_parse mc_parse_req_skip(const uint8_t *buf, size_t len, uint64_t max_request_size,
                                uint64_t skipped, struct mc_req *req);

/* The common case: nothing read elsewhere. */
static inline enum mc_parse
mc_parse_req(const uint8_t *buf, size_t len, uint64_t max_request_size, struct mc_req *req)
{
    return mc_parse_req_skip(buf, len, max_request_size, 0, req);
}

/* The reply line (with "\r\n") for an error, and whether it closes the conn. */
const char *mc_error_reply(enum mc_req_error err);
bool mc_error_closes(enum mc_req_error err);

/* cmd must be a known command (not MC_CMD_COUNT). Inline: the reply path
   asks it for every unit of every reply. */
static inline enum mc_kind
mc_cmd_kind(enum mc_cmd cmd)
{
    switch (cmd) {
#define MC_CMD_KIND(e, s, k) \
    case e:                  \
        return k;
        MC_CMD_LIST(MC_CMD_KIND)
#undef MC_CMD_KIND
    default:
        return MC_KIND_QUIT;
    }
}

/* A get, gets, gat or gats: its reply is VALUE blocks and END. */
static inline bool
mc_cmd_is_retrieval(enum mc_cmd cmd)
{
    enum mc_kind k = mc_cmd_kind(cmd);

    return k == MC_KIND_RETRIEVAL || k == MC_KIND_GAT;
}
/* "unknown" for MC_CMD_COUNT. */
const char *mc_cmd_name(enum mc_cmd cmd);

/* True when the command can carry noreply. */
bool mc_cmd_has_noreply(enum mc_cmd cmd);

/*
 * Iterate the space-separated key tokens in line[*pos..end): on true, the
 * next key is line[*koff..*koff+*klen) and *pos moves past it. Start with
 * *pos = req->keys_off and end = req->keys_end.
 */
bool mc_next_key(const uint8_t *line, size_t end, size_t *pos, size_t *koff, size_t *klen);

enum mc_rsp_type {
    MC_RSP_VALUE, /* "VALUE key flags bytes [cas]\r\n" data "\r\n" */
    MC_RSP_END,   /* "END\r\n" */
    MC_RSP_LINE,  /* any other single line: STORED, NOT_FOUND, 42, VERSION x, ... */
    MC_RSP_ERROR, /* ERROR, CLIENT_ERROR ..., SERVER_ERROR ... */
};

struct mc_rsp {
    enum mc_rsp_type type;
    size_t len;     /* bytes of this unit, terminators included */
    size_t key_off; /* VALUE: the key */
    size_t key_len;
};

/*
 * Parse one response unit at buf[0..len). MC_PARSE_ERROR means the bytes are
 * not a memcached response (the server conn is to be failed): a line longer
 * than MC_MAX_RSP_LINE_LEN, an empty line, a malformed VALUE header or a
 * value not followed by "\r\n". On MC_PARSE_AGAIN after a complete VALUE
 * header, rsp->len already holds the size of the whole unit (else 0).
 * skipped: bytes of a VALUE block read elsewhere, as for requests; len
 * then counts the buffer's bytes of the unit only.
 */
enum mc_parse mc_parse_rsp_skip(const uint8_t *buf, size_t len, uint64_t skipped,
                                struct mc_rsp *rsp);

/* The common case: nothing read elsewhere. */
static inline enum mc_parse
mc_parse_rsp(const uint8_t *buf, size_t len, struct mc_rsp *rsp)
{
    return mc_parse_rsp_skip(buf, len, 0, rsp);
}

/*
 * Whether the unit rsp at buf is a reply memcached sends to cmd (a VALUE
 * is judged by its header, so its block need not be in buf yet): an
 * error line for anything; VALUE and END for retrievals; STORED, NOT_STORED,
 * EXISTS, NOT_FOUND, DELETED, TOUCHED, a number or VERSION where each
 * belongs. Anything else means the server is not answering this request
 * (it is not memcached, or replies have shifted), so the conn is failed
 * rather than the line handed to a client.
 */
bool mc_rsp_fits(enum mc_cmd cmd, const uint8_t *buf, const struct mc_rsp *rsp);

#endif
