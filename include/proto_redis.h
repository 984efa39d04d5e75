/*
 * proto_redis: RESP2, requests (multibulk and inline) and replies (every
 * type, nested to any depth). Pure and incremental like proto_mc, and
 * resumable: a parse that needs more bytes keeps its position in the state
 * struct, so a large request arriving in many reads is scanned once, and
 * value bodies are skipped by length, never scanned.
 *
 * The command table is data: one row per command with its arity, where its
 * keys are and how the proxy treats it (forward, split, answer locally).
 */
#ifndef CMX_PROTO_REDIS_H
#define CMX_PROTO_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_MAX_MULTIBULK 1048576           /* elements in one request */
#define REDIS_MAX_BULK (512ULL * 1024 * 1024) /* bytes in one bulk string */
#define REDIS_MAX_INLINE (64 * 1024)          /* Redis's inline limit (PROTO_INLINE_MAX_SIZE) */
/* Redis refuses an inline request once more than REDIS_MAX_INLINE bytes
   without a '\n' are buffered, and reads 16 KiB at a time: the longest line
   it accepts has its '\n' within the read that crosses the limit. We search
   that far, so we accept what Redis accepts, whatever the read sizes. */
#define REDIS_INLINE_SEARCH (REDIS_MAX_INLINE + 16 * 1024)
#define REDIS_MAX_RSP_LINE (1024 * 1024) /* bytes of a +status or -error reply line */
#define REDIS_ERR_REPLY_MAX 256          /* longest redis_error_reply() output */

enum redis_parse {
    REDIS_PARSE_OK,
    REDIS_PARSE_AGAIN, /* need more bytes */
    REDIS_PARSE_ERROR,
    REDIS_PARSE_ARGS, /* give r->args room for r->argc arguments, then call again */
};

/* How the proxy treats a command. */
enum redis_route {
    REDIS_ROUTE_KEY,         /* forward to the server of its key (or of "placeholder") */
    REDIS_ROUTE_SPLIT,       /* split its keys over servers, merge the replies */
    REDIS_ROUTE_LOCAL,       /* answered by the proxy */
    REDIS_ROUTE_UNSUPPORTED, /* known to Redis but not proxied (e.g. MOVE) */
    REDIS_ROUTE_FANOUT,      /* sent to every server of the pool, replies merged */
};

/* The proxy's own answers (REDIS_ROUTE_LOCAL rows). */
enum redis_local {
    REDIS_LOCAL_NONE,
    REDIS_LOCAL_PING,
    REDIS_LOCAL_QUIT,
    REDIS_LOCAL_ECHO,
    REDIS_LOCAL_SELECT,
    REDIS_LOCAL_AUTH,
    REDIS_LOCAL_HELLO,
    REDIS_LOCAL_CLIENT,
};

#define REDIS_CMD_NOAUTH 0x1  /* allowed before AUTH on a redis_auth pool */
#define REDIS_CMD_CLOSES 0x2  /* the conn closes once its reply is written */
#define REDIS_CMD_STREAMS 0x4 /* the key follows a STREAMS token; BLOCK is refused */

/* Room for a command's name in the table: zero-padded, so names compare
   a word at a time (the longest, georadiusbymember, has 17 letters). */
#define REDIS_CMD_ROW_NAME 24
/* The longest name the table can hold: a longer one is unknown at a glance. */
#define REDIS_CMD_NAME_MAX (REDIS_CMD_ROW_NAME - 1)

struct redis_cmd {
    char name[REDIS_CMD_ROW_NAME]; /* lower case, zero-padded */
    int min_args;                  /* arguments after the name */
    int max_args;                  /* -1: no limit */
    enum redis_route route;
    uint8_t first_key;   /* argument of the (first) key; 0: none ("placeholder") */
    uint8_t key_step;    /* SPLIT: keys every key_step arguments (2: key value pairs) */
    uint8_t numkeys_arg; /* EVAL: argument holding the key count; keys follow it */
    uint8_t merge;       /* SPLIT: enum msg_merge */
    uint8_t local;       /* LOCAL: enum redis_local */
    uint8_t flags;       /* REDIS_CMD_* */
};

/* The table row for name[0..len) (case-insensitive), or NULL. Never allocates. */
const struct redis_cmd *redis_cmd_lookup(const uint8_t *name, size_t len);

/*
 * Whether argument arg (>= 1) of command cmd may be read around the buffer
 * (chain.h): not a key it is routed or split by, not an argument the proxy
 * answers from. An unknown command (NULL) is only skipped: any may.
 */
bool redis_cmd_streams(const struct redis_cmd *cmd, uint32_t arg);

/*
 * SCRIPT's subcommands: the merge of the fan-out for sub[0..len)
 * (case-insensitive) with its argument count bounds, or MSG_MERGE_NONE
 * for a subcommand the proxy does not fan out (KILL, DEBUG, ...).
 */
int redis_script_sub(const uint8_t *sub, size_t len, int *min_args, int *max_args);

/* The whole table, sorted by name, *n rows (for tests and listings). */
const struct redis_cmd *redis_cmd_table(size_t *n);

/* A row's index in the table (what a msg records), and back. */
uint16_t redis_cmd_index(const struct redis_cmd *cmd);
const struct redis_cmd *redis_cmd_at(uint16_t index);

enum redis_req_error {
    REDIS_ERR_NONE,
    REDIS_ERR_UNSUPPORTED,       /* -ERR unsupported command 'name' (keep open) */
    REDIS_ERR_ARITY,             /* -ERR wrong number of arguments for 'name' command (keep open) */
    REDIS_ERR_MULTIBULK_LEN,     /* -ERR Protocol error: invalid multibulk length (close) */
    REDIS_ERR_BULK_LEN,          /* -ERR Protocol error: invalid bulk length (close) */
    REDIS_ERR_EXPECTED_DOLLAR,   /* -ERR Protocol error: expected '$', got 'X' (close) */
    REDIS_ERR_TOO_LARGE,         /* -ERR Protocol error: request too large (close) */
    REDIS_ERR_INLINE_TOO_LONG,   /* -ERR Protocol error: too big inline request (close) */
    REDIS_ERR_UNBALANCED_QUOTES, /* -ERR Protocol error: unbalanced quotes in request (close) */
    REDIS_ERR_EMPTY, /* an empty inline line or *0 / *-1: skipped silently, as Redis does */
};

/* One argument of a parsed multibulk request: buf[off..off+len). */
struct redis_arg {
    size_t off;
    size_t len;
};

/* Parse state and result of one request. Zero it (redis_req_init) before
   each new request; keep it across AGAIN results. */
struct redis_req {
    /* result */
    const struct redis_cmd *cmd; /* NULL when unknown */
    enum redis_req_error err;
    bool is_inline;
    uint32_t argc;             /* including the command name */
    size_t total_len;          /* bytes of the whole request (OK, or error to skip);
                                       0 after an error that closes */
    size_t name_off, name_len; /* the command name */
    char err_detail;           /* REDIS_ERR_EXPECTED_DOLLAR: the byte found */
    /*
     * The caller's array of arguments, recorded as the parse passes them
     * (multibulk only), so routing never scans an argument again. Room for
     * args_cap; when a request has more, the parse returns
     * REDIS_PARSE_ARGS and the caller gives it room for argc.
     */
    struct redis_arg *args;
    uint32_t args_cap;
    uint64_t skipped; /* body bytes read around the buffer (redis_req_skip) */
    /* resumable state (private) */
    size_t pos;
    uint32_t args_left;
    uint32_t state;
    uint64_t bulk_len;
};

/* Zero r for a new request recording its arguments in args[0..args_cap)
   (args may be NULL when args_cap is 0). */
void redis_req_init(struct redis_req *r, struct redis_arg *args, uint32_t args_cap);

/* Zero r for the next request, keeping its args array. */
void redis_req_reset(struct redis_req *r);

/*
 * Continue parsing the request at buf[0..len) (the same bytes as before,
 * possibly more of them). max_request_size bounds the declared size, checked
 * before the bodies arrive. On REDIS_PARSE_ERROR, r->err says what to reply:
 * redis_error_closes() tells whether the conn is closed after it; if not,
 * r->total_len bytes are to be skipped.
 */
enum redis_parse redis_parse_req(struct redis_req *r, const uint8_t *buf, size_t len,
                                 uint64_t max_request_size);

/*
 * Bodies read around the buffer. Offsets and total_len count the buffer's
 * bytes only: a body of which n bytes were read elsewhere (at the end of
 * the bytes buffered when it was cut) takes n bytes less of the buffer, and
 * its argument records its declared length.
 *
 * While the parse wants more bytes in the body of argument *arg (the
 * command name is argument 0): how many of its bytes are still to come
 * after buf[0..len). 0 when not in a body, or the body is all there.
 */
uint64_t redis_req_body_left(const struct redis_req *r, size_t len, uint32_t *arg);
/* The next n bytes of that body were read elsewhere (n <= what is left). */
void redis_req_skip(struct redis_req *r, uint64_t n);

/*
 * Write the error reply (with "\r\n", no NUL) for r into out; buf is the
 * request the parse ran on (the command name is quoted from it, cut to 128
 * bytes with CR and LF turned to spaces, as Redis does). Returns its length:
 * 0 for REDIS_ERR_NONE and REDIS_ERR_EMPTY, or when outlen is too small
 * (REDIS_ERR_REPLY_MAX always suffices).
 */
size_t redis_error_reply(const struct redis_req *r, const uint8_t *buf, char *out, size_t outlen);

/* True for the framing errors, after which the conn is closed. */
bool redis_error_closes(enum redis_req_error err);

/*
 * Redis's inline argument splitting (sdssplitargs) over line[0..len), the
 * line without its "\r\n": arguments are separated by whitespace; "double
 * quotes" take \n \r \t \b \a \xHH and \<any> escapes, 'single quotes'
 * take \' only, and a closing quote must end its argument. A NUL ends the
 * line, as in Redis. Decodes the next argument into out (NULL: only count;
 * else room for len bytes always suffices) and sets *outlen. Returns 1, 0
 * at the end of the line, or -1 for unbalanced quotes. Start with
 * *cursor = 0.
 */
int redis_inline_next_arg(const uint8_t *line, size_t len, size_t *cursor, uint8_t *out,
                          size_t *outlen);

/* Whether argument i of r (parsed at buf) is the lower-case word lit,
   compared case-insensitively. */
bool redis_arg_is(const struct redis_req *r, const uint8_t *buf, uint32_t i, const char *lit);

/* The most bytes redis_inline_encode() writes for the whole inline r. */
size_t redis_inline_encoded_max(const struct redis_req *r);

/* Write the whole inline request r (parsed at buf) as the equivalent
   multibulk request into out. Returns the bytes written. */
size_t redis_inline_encode(const struct redis_req *r, const uint8_t *buf, uint8_t *out);

enum redis_rsp_type {
    REDIS_RSP_STATUS,  /* +... */
    REDIS_RSP_ERROR,   /* -... */
    REDIS_RSP_INTEGER, /* :n */
    REDIS_RSP_BULK,    /* $n (or $-1 nil) */
    REDIS_RSP_ARRAY,   /* *n (or *-1 nil), elements of any type, any depth */
    /* RESP3 only (redis_rsp_init3) */
    REDIS_RSP_NULL,       /* _ */
    REDIS_RSP_BOOLEAN,    /* #t or #f (integer 1 or 0) */
    REDIS_RSP_DOUBLE,     /* ,1.5 */
    REDIS_RSP_BIG_NUMBER, /* (3492890328409238509324850943850943825024385 */
    REDIS_RSP_BLOB_ERROR, /* !n */
    REDIS_RSP_VERBATIM,   /* =n, the body starting "txt:" or another 3-byte format */
    REDIS_RSP_MAP,        /* %n: n key-value pairs */
    REDIS_RSP_SET,        /* ~n */
    REDIS_RSP_PUSH,       /* >n */
};

struct redis_rsp {
    /* result */
    enum redis_rsp_type type;
    size_t total_len; /* bytes of the whole reply */
    int64_t integer;  /* INTEGER: value; ARRAY/BULK: element count / length, -1 nil */
    /* resumable state (private) */
    size_t pos;
    uint64_t remaining; /* elements still to read, at any depth */
    uint32_t state;
    uint64_t bulk_len;
    size_t scan;  /* where the search for the current line's '\n' resumes */
    bool in_body; /* reading a bulk's body of bulk_len bytes at pos */
    bool resp3;   /* the RESP3 types are allowed */
    bool typed;   /* the reply's own type is known (attributes come first) */
};

/* A parser of RESP2 replies; redis_rsp_init3 also takes RESP3's types,
   with attributes (|n) kept in the reply ahead of the value they describe
   (type and integer are the value's). Streamed strings and aggregates
   ($?, *? ...) are an error: Redis sends them to no command. */
void redis_rsp_init(struct redis_rsp *r);
void redis_rsp_init3(struct redis_rsp *r);

/*
 * Continue parsing one reply at buf[0..len) (the same bytes as before,
 * possibly more of them). ERROR: not RESP2 or RESP3 as initialized (an unknown type byte, a bad
 * number, a bulk over REDIS_MAX_BULK, a status line over REDIS_MAX_RSP_LINE,
 * a body not followed by "\r\n").
 */
enum redis_parse redis_parse_rsp(struct redis_rsp *r, const uint8_t *buf, size_t len);

/*
 * The fewest bytes the reply being parsed by r can take in all, from what
 * is known so far (bytes read, a bulk's declared length, values still owed
 * at three bytes each), saturating at UINT64_MAX. A caller bounding reply
 * size refuses a reply as soon as this passes the bound, before buffering it.
 * It never decreases as a parse advances, and after an ERROR it is what the
 * bytes before the bad one declared, so the bound decides the same whether
 * the bytes came whole or in pieces.
 */
uint64_t redis_rsp_min_len(const struct redis_rsp *r);

/* Bodies read around the buffer, as for requests: the bytes of the bulk
   being read still to come after buf[0..len) (0 when not in one), and
   that n of them were read elsewhere. */
uint64_t redis_rsp_body_left(const struct redis_rsp *r, size_t len);
void redis_rsp_skip(struct redis_rsp *r, uint64_t n);

/*
 * Iterate the top-level elements of a parsed ARRAY reply at buf, len being
 * its total_len: on true, the next element's bytes (a whole reply, nested
 * arrays included) are buf[*off..*off+*elen). Start with *cursor = 0.
 */
bool redis_next_elem(const uint8_t *buf, size_t len, size_t *cursor, size_t *off, size_t *elen);

#endif
