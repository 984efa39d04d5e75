/*
 * conf_scan: conf's own reading of the config text, line by line, done
 * before inih runs (see conf_scan.h for why inih cannot be trusted with the
 * raw text). The scan decides what every line is and takes every value;
 * inih then only confirms the cleaned structure (headers and key names),
 * and conf checks that each handler call matches the scan's entry for it.
 *
 * The scan owns everything in struct conf_scan; conf_scan_free releases it.
 * One caller at a time per struct (the supervisor's thread at load and
 * reload); there is no shared state.
 *
 * Invariants that keep inih and the scan in agreement:
 *   - the cleaned text has exactly one line per input line, every line
 *     short ("[I]" or "KEY =" with KEY at most CONF_MAX_KEY bytes), none
 *     indented, no CR, no BOM and no comment, so none of inih's run-time
 *     knobs (ini_allow_multiline and friends) nor its 199-byte line buffer
 *     changes how it is read;
 *   - every header, good or bad, becomes "[I]", so inih's current section is
 *     always the scan's, even after a malformed header;
 *   - a key line is emitted only if its first '=' comes before any ':' and
 *     any comment, which is exactly where inih splits it.
 * White space means what C-locale isspace() means, as inih uses isspace().
 * Leading white space is skipped on every line: an indented line is an
 * ordinary key, header or comment (operators indent pools' keys).
 */
#include "conf_scan.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXCERPT_MAX 48 /* bytes of a bad line quoted in its message */

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

struct scan_state {
    struct conf_scan *out;
    struct sbuf clean;
    int section; /* current section index, -1 before any header */
    bool oom;
};

static bool
conf_scan_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int
conf_scan_sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Grow *arr (of elem-sized items, *cap of them) to hold n + 1. */
static int
conf_scan_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL) {
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

static char *
conf_scan_dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void
conf_scan_printable(char *dst, size_t dstlen, const char *p, size_t n, size_t max)
{
    size_t i;

    if (max > dstlen - 4) {
        max = dstlen - 4;
    }
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < n) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

static void
conf_scan_excerpt(char *dst, size_t dstlen, const char *p, size_t n)
{
    conf_scan_printable(dst, dstlen, p, n, EXCERPT_MAX);
}

static int
conf_scan_vissue(struct conf_scan *out, int line, const char *fmt, va_list ap)
{
    char msg[256];
    char *m;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (conf_scan_grow((void **)&out->issues, &out->issues_cap, out->nissues,
                       sizeof(*out->issues)) < 0 ||
        (m = strdup(msg)) == NULL) {
        return -1;
    }
    out->issues[out->nissues].line = line;
    out->issues[out->nissues].msg = m;
    out->nissues++;
    return 0;
}

int
conf_scan_add_issue(struct conf_scan *out, int line, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = conf_scan_vissue(out, line, fmt, ap);
    va_end(ap);
    return rc;
}

static void conf_scan_issue(struct scan_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conf_scan_issue(struct scan_state *st, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (conf_scan_vissue(st->out, line, fmt, ap) < 0) {
        st->oom = true;
    }
    va_end(ap);
}

static int
conf_scan_section_n(struct conf_scan *out, const char *name, size_t n, int line, bool bad)
{
    char *copy;

    if (conf_scan_grow((void **)&out->sections, &out->sections_cap, out->nsections,
                       sizeof(*out->sections)) < 0 ||
        (copy = conf_scan_dup_n(name, n)) == NULL) {
        return -1;
    }
    out->sections[out->nsections] = (struct conf_scan_section){
        .name = copy,
        .line = line,
        .bad = bad,
    };
    out->nsections++;
    return 0;
}

int
conf_scan_add_section(struct conf_scan *out, const char *name, int line)
{
    return conf_scan_section_n(out, name, strlen(name), line, false);
}

static int
conf_scan_entry_n(struct conf_scan *out, int section, const char *key, size_t klen,
                  const char *value, size_t vlen, int line)
{
    struct conf_scan_entry *e;
    unsigned occ = 0;

    if (conf_scan_grow((void **)&out->entries, &out->entries_cap, out->nentries,
                       sizeof(*out->entries)) < 0) {
        return -1;
    }
    e = &out->entries[out->nentries];
    *e = (struct conf_scan_entry){ .section = section, .line = line };
    if ((e->key = conf_scan_dup_n(key, klen)) == NULL ||
        (e->value = conf_scan_dup_n(value, vlen)) == NULL) {
        free(e->key);
        return -1;
    }
    /* Entries are grouped by section, so look back only within this one;
     * the nearest match already knows how many came before it. */
    for (size_t i = out->nentries; i-- > 0;) {
        if (out->entries[i].section != section) {
            break;
        }
        if (strcmp(out->entries[i].key, e->key) == 0) {
            occ = out->entries[i].occurrence + 1;
            break;
        }
    }
    e->occurrence = occ;
    out->nentries++;
    return 0;
}

int
conf_scan_add_entry(struct conf_scan *out, int section, const char *key, const char *value,
                    int line)
{
    return conf_scan_entry_n(out, section, key, strlen(key), value, strlen(value), line);
}

enum conf_scan_form
conf_scan_value_form(const char *v)
{
    size_t n = strlen(v);

    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\n' || v[i] == '\r') {
            return CONF_SCAN_NO_BREAK;
        }
        if (v[i] == ';' && i > 0 && conf_scan_is_ws(v[i - 1])) {
            return CONF_SCAN_NO_COMMENT;
        }
    }
    /* what conf_scan_value would strip, and a ';' that " = " would put after white space */
    if (n == 0 || conf_scan_is_ws(v[0]) || conf_scan_is_ws(v[n - 1]) || v[0] == ';' ||
        (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])) {
        return CONF_SCAN_QUOTED;
    }
    return CONF_SCAN_PLAIN;
}

/* Record a header (bad ones too) and emit "[I]" for it. */
static void
conf_scan_open_section(struct scan_state *st, int line, const char *name, size_t n, bool bad)
{
    char hdr[32];

    if (conf_scan_section_n(st->out, name, n, line, bad) < 0) {
        st->oom = true;
        return;
    }
    st->section = (int)st->out->nsections - 1;
    int hn = snprintf(hdr, sizeof(hdr), "[%d]", st->section);
    if (conf_scan_sbuf_add(&st->clean, hdr, (size_t)hn) < 0) {
        st->oom = true;
    }
}

/*
 * The value of a key line: v[0..n) is what follows the '=' with the
 * comment and trailing white space already cut. Leading white space goes,
 * then one pair of matching quotes, as twemproxy's YAML reader does, so that
 * "hash_tag = \"{}\"" means what "hash_tag: \"{}\"" means to nutcracker.
 */
static void
conf_scan_value(const char **v, size_t *n)
{
    while (*n > 0 && conf_scan_is_ws(**v)) {
        (*v)++;
        (*n)--;
    }
    if (*n >= 2 && ((*v)[0] == '"' || (*v)[0] == '\'') && (*v)[*n - 1] == (*v)[0]) {
        (*v)++;
        *n -= 2;
    }
}

/* A header line p[0..n) (comment already cut, n > 0, p[0] == '['). */
static void
conf_scan_header_line(struct scan_state *st, int line, const char *p, size_t n)
{
    char ex[EXCERPT_MAX + 8];
    const char *close = memchr(p, ']', n);

    conf_scan_excerpt(ex, sizeof(ex), p, n);
    if (close == NULL) {
        conf_scan_issue(st, line, "malformed section header '%s' (no closing ']')", ex);
        conf_scan_open_section(st, line, p + 1, n - 1, true);
        return;
    }
    for (const char *q = close + 1; q < p + n; q++) {
        if (!conf_scan_is_ws(*q)) {
            conf_scan_issue(st, line, "unexpected text after section header '%s'", ex);
            conf_scan_open_section(st, line, p + 1, (size_t)(close - p - 1), true);
            return;
        }
    }
    conf_scan_open_section(st, line, p + 1, (size_t)(close - p - 1), false);
}

/* A key line p[0..n) (comment already cut, no leading white space): the
 * entry gets the value, inih gets "KEY =". */
static void
conf_scan_key_line(struct scan_state *st, int line, const char *p, size_t n)
{
    char ex[EXCERPT_MAX + 8];
    const char *eq = memchr(p, '=', n);
    const char *colon = memchr(p, ':', n);
    size_t klen;

    conf_scan_excerpt(ex, sizeof(ex), p, n);
    if (eq == NULL) {
        size_t word = 0;
        while (word < n && !conf_scan_is_ws(p[word]) && p[word] != ':') {
            word++;
        }
        if (colon != NULL && p + word == colon) { /* "key: value", YAML style */
            conf_scan_issue(st, line,
                            "expected 'key = value', found '%s' "
                            "(':' is not a delimiter)",
                            ex);
        } else {
            conf_scan_issue(st, line, "expected 'key = value' or a [section] header, found '%s'",
                            ex);
        }
        return;
    }
    if (colon != NULL && colon < eq) {
        conf_scan_issue(st, line, "':' in key of '%s' (write 'key = value')", ex);
        return;
    }
    klen = (size_t)(eq - p);
    while (klen > 0 && conf_scan_is_ws(p[klen - 1])) {
        klen--;
    }
    if (klen == 0) {
        conf_scan_issue(st, line, "missing key before '=' in '%s'", ex);
        return;
    }
    /* Keys are ASCII words. This also keeps a second BOM on line 1 away from
     * inih, which would strip it where the scan does not. */
    for (size_t i = 0; i < klen; i++) {
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f) {
            conf_scan_issue(st, line, "invalid character in key of '%s'", ex);
            return;
        }
    }
    if (klen > CONF_MAX_KEY) {
        conf_scan_excerpt(ex, sizeof(ex), p, klen);
        conf_scan_issue(st, line, "unknown key '%s' (%zu bytes; no key is longer than %d)", ex,
                        klen, CONF_MAX_KEY);
        return;
    }
    const char *v = eq + 1;
    size_t vlen = (size_t)(p + n - v);
    conf_scan_value(&v, &vlen);
    if (conf_scan_entry_n(st->out, st->section, p, klen, v, vlen, line) < 0 ||
        conf_scan_sbuf_add(&st->clean, p, klen) < 0 ||
        conf_scan_sbuf_add(&st->clean, " =", 2) < 0) {
        st->oom = true;
    }
}

static void
conf_scan_classify(struct scan_state *st, int line, const char *p, size_t n)
{
    size_t lead = 0, len;

    while (lead < n && conf_scan_is_ws(p[lead])) {
        lead++;
    }
    if (memchr(p, '\0', n) != NULL) {
        conf_scan_issue(st, line, "line contains a NUL byte");
        return;
    }
    if (n > CONF_MAX_LINE) {
        conf_scan_issue(st, line, "line is %zu bytes long (the limit is %d)", n, CONF_MAX_LINE);
        /* A header we cannot read still ends the previous section, so its
         * keys are not blamed on the wrong pool. */
        if (lead < n && p[lead] == '[') {
            conf_scan_open_section(st, line, "", 0, true);
        }
        return;
    }
    if (lead == n || p[lead] == ';' || p[lead] == '#') {
        return; /* blank, or a comment */
    }
    /* Indentation means nothing: the line is read as if it started here. */
    p += lead;
    n -= lead;
    len = n;
    /* An inline comment is ';' after white space, as inih has it. */
    for (size_t i = 1; i < n; i++) {
        if (p[i] == ';' && conf_scan_is_ws(p[i - 1])) {
            len = i;
            break;
        }
    }
    while (len > 0 && conf_scan_is_ws(p[len - 1])) {
        len--;
    }
    if (p[0] == '[') {
        conf_scan_header_line(st, line, p, len);
    } else {
        conf_scan_key_line(st, line, p, len);
    }
}

int
conf_scan_text(const char *text, size_t len, struct conf_scan *out)
{
    struct scan_state st = { .out = out, .section = -1 };
    size_t pos = 0;
    int line = 0;

    memset(out, 0, sizeof(*out));
    if (conf_scan_sbuf_add(&st.clean, "", 0) < 0) {
        return -1;
    }
    while (pos < len && !st.oom) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - p) : len - pos;

        pos += n + (nl != NULL);
        line++;
        if (n > 0 && p[n - 1] == '\r') {
            n--; /* CRLF files read like LF files */
        }
        if (line == 1 && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
            p += 3; /* a UTF-8 BOM, which inih would skip too */
            n -= 3;
        }
        conf_scan_classify(&st, line, p, n);
        if (conf_scan_sbuf_add(&st.clean, "\n", 1) < 0) {
            st.oom = true;
        }
    }
    out->clean = st.clean.p;
    out->nlines = line;
    return st.oom ? -1 : 0;
}

void
conf_scan_free(struct conf_scan *s)
{
    for (size_t i = 0; i < s->nsections; i++) {
        free(s->sections[i].name);
    }
    for (size_t i = 0; i < s->nentries; i++) {
        free(s->entries[i].key);
        free(s->entries[i].value);
    }
    for (size_t i = 0; i < s->nissues; i++) {
        free(s->issues[i].msg);
    }
    free(s->sections);
    free(s->entries);
    free(s->issues);
    free(s->clean);
    memset(s, 0, sizeof(*s));
}

int
conf_scan_line(const struct conf_scan *s, int section, const char *key, unsigned occurrence)
{
    for (size_t i = 0; i < s->nentries; i++) {
        const struct conf_scan_entry *e = &s->entries[i];
        if (e->section == section && e->occurrence == occurrence && strcmp(e->key, key) == 0) {
            return e->line;
        }
    }
    return 0;
}

int
conf_scan_section_index(const struct conf_scan *s, const char *inih_section)
{
    size_t n = strlen(inih_section);
    uint64_t idx;

    if (n == 0) {
        return -1;
    }
    if (util_parse_u64(inih_section, n, s->nsections, &idx) < 0 || idx >= s->nsections) {
        return -2;
    }
    return (int)idx;
}
