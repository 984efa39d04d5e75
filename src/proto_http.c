/*
 * proto_http: HTTP/1.x request heads, parsed in place (see proto_http.h).
 *
 * The head is taken a line at a time. r->scan is where the search for the
 * next '\n' resumes, so bytes that arrived in an earlier read are never
 * searched again; a line is examined once, when its '\n' has arrived, and
 * then r->line_start moves past it. Each byte is therefore touched at most
 * twice (memchr, then the line's checks) however the head is split:
 *
 *   buf:  GET /metrics HTTP/1.1\r\nHost: x\r\nAcc
 *         |                          |        |  ^ len
 *         0                          |        line_start (line not complete)
 *                                    |           scan == len
 *                                    a finished line, never looked at again
 *
 * The search never goes past HTTP_MAX_HEAD bytes: when that many bytes hold
 * no blank line, the head is too large (431) whatever follows, so a caller
 * buffers at most HTTP_MAX_HEAD bytes per connection.
 *
 * A decision is made only on complete lines, so parsing a head whole, byte
 * by byte or at any split points yields the same result (the unit tests
 * check this). Line rules follow RFC 9112: a line ends in CRLF or a bare LF;
 * empty lines before the request line are skipped; the request line is
 * method SP target SP HTTP/d.d; a field is token ":" OWS value OWS, with no
 * space before the colon and no obsolete line folding; control characters
 * (a bare CR among them) anywhere but a value's HTAB are a 400. The parser
 * is strict where leniency has been used for request smuggling (spaces
 * before the colon, folding, odd Content-Length) and simply closes after
 * any request with a body: the server this serves reads heads only.
 *
 * Only three fields mean anything here: Connection (close, keep-alive),
 * Content-Length and Transfer-Encoding (a body follows). Host is not
 * required even for HTTP/1.1: a hand-typed probe without one keeps working.
 */
#include "proto_http.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"

static const struct {
    const char *name;
    size_t len;
} http_methods[] = {
#define HTTP_METHOD_ROW(e, s) { s, sizeof(s) - 1 },
    HTTP_METHOD_LIST(HTTP_METHOD_ROW)
#undef HTTP_METHOD_ROW
};

static const struct {
    int status;
    const char *reason;
} http_reasons[] = {
    { 200, "OK" },
    { 400, "Bad Request" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 408, "Request Timeout" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 503, "Service Unavailable" },
    { 505, "HTTP Version Not Supported" },
};

/* RFC 9110 5.6.2 tchar. */
static bool
http_is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible characters and obs-text: what a target may hold. */
static bool
http_is_vchar(uint8_t c)
{
    return c > 0x20 && c != 0x7f;
}

static bool
http_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool
http_is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

void
http_req_init(struct http_req *r)
{
    memset(r, 0, sizeof(*r));
    r->done = HTTP_PARSE_AGAIN;
}

const char *
http_reason(int status)
{
    for (size_t i = 0; i < ARRAY_SIZE(http_reasons); i++) {
        if (http_reasons[i].status == status) {
            return http_reasons[i].reason;
        }
    }
    return "Unknown";
}

const char *
http_method_name(enum http_method m)
{
    return m < HTTP_METHOD_OTHER ? http_methods[m].name : "OTHER";
}

static enum http_method
http_method_lookup(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(http_methods); i++) {
        if (http_methods[i].len == len && memcmp(http_methods[i].name, p, len) == 0) {
            return (enum http_method)i;
        }
    }
    return HTTP_METHOD_OTHER;
}

/* The path of the target b[s..e): origin-form "/p?q" or absolute-form
   "http://host/p?q" (which a server must accept, RFC 9112 3.2.2). */
static int
http_target(struct http_req *r, const uint8_t *b, size_t s, size_t e)
{
    size_t p = s;

    if (b[s] != '/') {
        size_t scheme = 0;
        if (e - s >= 7 && util_strieq((const char *)b + s, 7, "http://")) {
            scheme = 7;
        } else if (e - s >= 8 && util_strieq((const char *)b + s, 8, "https://")) {
            scheme = 8;
        } else {
            return 400; /* "*" (OPTIONS only) or authority-form (CONNECT only) */
        }
        p = s + scheme;
        while (p < e && b[p] != '/' && b[p] != '?') {
            p++;
        }
        if (p == s + scheme) {
            return 400; /* no host */
        }
    }
    size_t q = p;
    while (q < e && b[q] != '?') {
        q++;
    }
    r->path_off = p;
    r->path_len = q - p;
    return 0;
}

/* Request line b[s..e) (terminator stripped). Returns 0 or a status. */
static int
http_request_line(struct http_req *r, const uint8_t *b, size_t s, size_t e)
{
    size_t p = s;

    while (p < e && http_is_tchar(b[p])) {
        p++;
    }
    if (p == s || p == e || b[p] != ' ') {
        return 400;
    }
    r->method = http_method_lookup(b + s, p - s);
    r->method_off = s;
    r->method_len = p - s;

    size_t t = ++p;
    while (p < e && http_is_vchar(b[p])) {
        p++;
    }
    if (p == t || p == e || b[p] != ' ') {
        return 400;
    }
    int st = http_target(r, b, t, p);
    if (st != 0) {
        return st;
    }

    p++;
    if (e - p != 8 || memcmp(b + p, "HTTP/", 5) != 0 || !http_is_digit(b[p + 5]) ||
        b[p + 6] != '.' || !http_is_digit(b[p + 7])) {
        return 400;
    }
    if (b[p + 5] != '1') {
        return 505;
    }
    r->version_minor = b[p + 7] == '0' ? 0 : 1;
    r->have_request_line = true;
    return 0;
}

/* The comma-separated tokens of a Connection value b[s..e). */
static void
http_connection(struct http_req *r, const uint8_t *b, size_t s, size_t e)
{
    size_t p = s;

    while (p < e) {
        while (p < e && (b[p] == ',' || http_is_ows(b[p]))) {
            p++;
        }
        size_t t = p;
        while (p < e && b[p] != ',' && !http_is_ows(b[p])) {
            p++;
        }
        if (util_strieq((const char *)b + t, p - t, "close")) {
            r->conn_close = true;
        } else if (util_strieq((const char *)b + t, p - t, "keep-alive")) {
            r->conn_keep_alive = true;
        }
    }
}

/* Field line b[s..e) (terminator stripped, not empty). Returns 0 or a status. */
static int
http_field(struct http_req *r, const uint8_t *b, size_t s, size_t e)
{
    size_t p = s;

    while (p < e && http_is_tchar(b[p])) {
        p++;
    }
    /* Also rejects obs-fold (a line starting with SP/HTAB) and "name :". */
    if (p == s || p == e || b[p] != ':') {
        return 400;
    }
    size_t name_len = p - s;
    size_t v = p + 1;
    for (size_t i = v; i < e; i++) {
        if ((b[i] < 0x20 && b[i] != '\t') || b[i] == 0x7f) {
            return 400;
        }
    }
    while (v < e && http_is_ows(b[v])) {
        v++;
    }
    size_t ve = e;
    while (ve > v && http_is_ows(b[ve - 1])) {
        ve--;
    }

    const char *name = (const char *)b + s;
    if (util_strieq(name, name_len, "connection")) {
        http_connection(r, b, v, ve);
    } else if (util_strieq(name, name_len, "content-length")) {
        uint64_t n;
        if (util_parse_u64((const char *)b + v, ve - v, UINT64_MAX, &n) != 0) {
            return 400; /* also "5, 5": one length, or none */
        }
        if (n > 0) {
            r->has_body = true;
        }
    } else if (util_strieq(name, name_len, "transfer-encoding")) {
        r->has_body = true;
    }
    return 0;
}

enum http_parse
http_parse_req(struct http_req *r, const uint8_t *buf, size_t len)
{
    size_t lim = MIN(len, (size_t)HTTP_MAX_HEAD);

    if (r->done != HTTP_PARSE_AGAIN) {
        return r->done;
    }
    while (r->scan < lim) {
        const uint8_t *nl = memchr(buf + r->scan, '\n', lim - r->scan);
        if (nl == NULL) {
            r->scan = lim;
            break;
        }
        size_t s = r->line_start, end = (size_t)(nl - buf), e = end;
        r->scan = r->line_start = end + 1;
        if (e > s && buf[e - 1] == '\r') {
            e--;
        }
        if (e == s) {
            if (!r->have_request_line) {
                continue; /* RFC 9112 2.2: ignore empty lines before the request */
            }
            r->head_len = end + 1;
            r->keep_alive = !r->has_body && !r->conn_close &&
                            (r->version_minor >= 1 || r->conn_keep_alive);
            return r->done = HTTP_PARSE_OK;
        }
        int st = r->have_request_line ? http_field(r, buf, s, e) : http_request_line(r, buf, s, e);
        if (st != 0) {
            r->status = st;
            return r->done = HTTP_PARSE_ERROR;
        }
    }
    if (len >= HTTP_MAX_HEAD) {
        /* HTTP_MAX_HEAD bytes and no blank line among them. */
        r->status = 431;
        return r->done = HTTP_PARSE_ERROR;
    }
    return HTTP_PARSE_AGAIN;
}

int
http_format_head(struct buf *out, const struct http_rsp_head *h)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    char date[64] = "";
    /* The fixed part is short; extra is copied separately, so any length fits. */
    char line[512];

    if (h->date >= 0) {
        time_t t = (time_t)h->date;
        struct tm tm;
        /* IMF-fixdate by hand: strftime's %a and %b follow the locale. */
        if (gmtime_r(&t, &tm) != NULL) {
            snprintf(date, sizeof(date), "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                     days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        }
    }
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n%s%s%s%sContent-Length: %zu\r\n%s",
                     h->status, http_reason(h->status), date,
                     h->content_type != NULL ? "Content-Type: " : "",
                     h->content_type != NULL ? h->content_type : "",
                     h->content_type != NULL ? "\r\n" : "", h->content_length,
                     !h->keep_alive ? "Connection: close\r\n"
                     : h->http10    ? "Connection: keep-alive\r\n"
                                    : "");
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return -1; /* only with an absurd content type */
    }
    if (buf_append(out, line, (size_t)n) != 0) {
        return -1;
    }
    if (h->extra != NULL && buf_append(out, h->extra, strlen(h->extra)) != 0) {
        return -1;
    }
    return buf_append(out, "\r\n", 2);
}
