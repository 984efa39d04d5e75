/*
 * conf_yaml: reads nutcracker's YAML with libyaml's event parser and turns
 * it into a struct conf_scan (see conf_yaml.h), the same form conf_scan
 * gives an INI file, so every value goes through conf's one key table and
 * one set of rules whichever format it came in. This module only decides
 * the shape: which scalar is a pool name, which is a key, which is a value
 * or a server; whether a value is valid is conf's business.
 *
 * The walk follows the event stream with one event in hand at a time:
 *
 *   STREAM-START  DOCUMENT-START (implicit)
 *     MAPPING-START                          top level: pools
 *       SCALAR name  MAPPING-START           one pool -> section "pool NAME"
 *         SCALAR key  SCALAR value           -> entry (key, value, line of key)
 *         SCALAR servers  SEQUENCE-START
 *           SCALAR item ...                  -> entry ("server", item, its line)
 *         SEQUENCE-END
 *       MAPPING-END
 *     MAPPING-END
 *   DOCUMENT-END  STREAM-END
 *
 * Anything else is reported where it is and skipped whole (conf_yaml_skip),
 * so one run reports every structural problem; a YAML syntax error stops
 * libyaml, so it is the last thing reported. Anchors, aliases, tags and
 * flow style are reported (nutcracker refuses them too) but their values
 * are still read, so one refused anchor does not also cause "missing
 * 'listen'". Line numbers are libyaml's marks plus one.
 *
 * Ownership: the scan belongs to the caller; the parser and the current
 * event live for one conf_yaml_parse call. No globals, no I/O.
 */
#include "conf_yaml.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CONF_YAML_SHOW 48 /* bytes of a value quoted in a message */

struct conf_yaml {
    yaml_parser_t parser;
    yaml_event_t ev; /* the event in hand, when have_ev */
    bool have_ev;
    bool stopped; /* libyaml reported an error: no more events */
    bool oom;
    const char *text;
    size_t len;
    struct conf_scan *out;
    int section; /* the pool being read, -1 outside one */
};

static void conf_yaml_issue(struct conf_yaml *y, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conf_yaml_issue(struct conf_yaml *y, int line, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (conf_scan_add_issue(y->out, line, "%s", msg) < 0) {
        y->oom = true;
    }
    if (y->section >= 0) {
        y->out->sections[y->section].partial = true;
    }
}

static int
conf_yaml_line(const yaml_event_t *ev)
{
    return ev->start_mark.line < (size_t)0x7fffffff ? (int)ev->start_mark.line + 1 : 0;
}

/* Line (1-based) holding byte offset off. */
static int
conf_yaml_offset_line(const struct conf_yaml *y, size_t off)
{
    int line = 1;

    for (size_t i = 0; i < off && i < y->len; i++) {
        line += y->text[i] == '\n';
    }
    return line;
}

/* Whether line (1-based) of the text holds a tab: YAML's most common trap. */
static bool
conf_yaml_line_has_tab(const struct conf_yaml *y, int line)
{
    const char *p = y->text, *end = y->text + y->len;

    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl != NULL ? nl + 1 : end;
    }
    for (; p < end && *p != '\n'; p++) {
        if (*p == '\t') {
            return true;
        }
    }
    return false;
}

static void
conf_yaml_syntax_error(struct conf_yaml *y)
{
    const yaml_parser_t *ps = &y->parser;
    const char *problem = ps->problem != NULL ? ps->problem : "unknown error";
    char context[96] = "";
    int line;

    if (ps->error == YAML_MEMORY_ERROR) {
        y->oom = true;
        return;
    }
    if (ps->error == YAML_READER_ERROR) {
        line = conf_yaml_offset_line(y, ps->problem_offset);
    } else {
        line = (int)ps->problem_mark.line + 1;
        if (ps->context != NULL) {
            snprintf(context, sizeof(context), " (%s at line %d)", ps->context,
                     (int)ps->context_mark.line + 1);
        }
    }
    conf_yaml_issue(y, line, "invalid YAML: %s%s%s", problem, context,
                    conf_yaml_line_has_tab(y, line)
                        ? "; this line holds a tab, and YAML indents with spaces only"
                        : "");
}

/* Release the event in hand and take the next. False at the end of what can be
 * read: a YAML error (reported) or no memory. */
static bool
conf_yaml_next(struct conf_yaml *y)
{
    if (y->have_ev) {
        yaml_event_delete(&y->ev);
        y->have_ev = false;
    }
    if (y->stopped || y->oom) {
        return false;
    }
    if (!yaml_parser_parse(&y->parser, &y->ev)) {
        conf_yaml_syntax_error(y);
        y->stopped = true;
        return false;
    }
    y->have_ev = true;
    return true;
}

static const char *
conf_yaml_what(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "a value";
    }
}

/*
 * Report what nutcracker refuses on the node in hand: an anchor, an alias,
 * an explicit tag, flow style ("[...]", "{...}").
 */
static void
conf_yaml_check_node(struct conf_yaml *y)
{
    const yaml_event_t *ev = &y->ev;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    bool flow = false;
    int line = conf_yaml_line(ev);

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        flow = ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        flow = ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
        break;
    case YAML_ALIAS_EVENT:
        conf_yaml_issue(y, line,
                        "alias '*%.40s': nutcracker refuses anchors and aliases; "
                        "write the value out",
                        (const char *)ev->data.alias.anchor);
        return;
    default:
        return;
    }
    if (anchor != NULL) {
        conf_yaml_issue(y, line,
                        "anchor '&%.40s': nutcracker refuses anchors and aliases; "
                        "write the value out",
                        (const char *)anchor);
    }
    if (tag != NULL) {
        conf_yaml_issue(y, line, "tag '%.40s': nutcracker refuses tags; remove it",
                        (const char *)tag);
    }
    if (flow) {
        conf_yaml_issue(y, line, "flow style ('%s'): nutcracker refuses it; write %s",
                        ev->type == YAML_SEQUENCE_START_EVENT ? "[...]" : "{...}",
                        ev->type == YAML_SEQUENCE_START_EVENT ? "one '- item' per line"
                                                              : "one 'key: value' per line");
    }
}

/* Consume the rest of the node whose first event is in hand. */
static void
conf_yaml_skip(struct conf_yaml *y)
{
    int depth = 0;

    do {
        switch (y->ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            depth++;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (depth <= 0) {
            return;
        }
    } while (conf_yaml_next(y));
}

/*
 * The scalar in hand as a C string (malloc'd), checked; what names it in a
 * message. NULL after reporting a node that is not a scalar or holds a NUL
 * byte (the node is then skipped), or when out of memory.
 */
static char *
conf_yaml_scalar(struct conf_yaml *y, const char *what)
{
    const yaml_event_t *ev = &y->ev;
    char *s;

    conf_yaml_check_node(y);
    if (ev->type != YAML_SCALAR_EVENT) {
        if (ev->type != YAML_ALIAS_EVENT) {
            conf_yaml_issue(y, conf_yaml_line(ev), "%s must be a string, found %s", what,
                            conf_yaml_what(ev));
        }
        conf_yaml_skip(y);
        return NULL;
    }
    if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL) {
        conf_yaml_issue(y, conf_yaml_line(ev), "%s holds a NUL byte", what);
        return NULL;
    }
    s = malloc(ev->data.scalar.length + 1);
    if (s == NULL) {
        y->oom = true;
        return NULL;
    }
    memcpy(s, ev->data.scalar.value, ev->data.scalar.length);
    s[ev->data.scalar.length] = '\0';
    return s;
}

static void
conf_yaml_entry(struct conf_yaml *y, int section, const char *key, const char *value, int line)
{
    if (conf_scan_add_entry(y->out, section, key, value, line) < 0) {
        y->oom = true;
    }
}

/* The servers: list in hand; *first is the line of an earlier one (0: none). */
static void
conf_yaml_servers(struct conf_yaml *y, int section, const char *pool, int line, int *first)
{
    if (*first != 0) {
        conf_yaml_issue(y, line,
                        "duplicate key 'servers' in pool '%s' (first at line %d; "
                        "nutcracker takes one list: merge them)",
                        pool, *first);
        conf_yaml_skip(y);
        return;
    }
    *first = line;
    while (conf_yaml_next(y) && y->ev.type != YAML_SEQUENCE_END_EVENT) {
        int iline = conf_yaml_line(&y->ev);
        char *item = conf_yaml_scalar(y, "a 'servers' item ('host:port:weight [name]')");
        if (item != NULL) {
            conf_yaml_entry(y, section, "server", item, iline);
            free(item);
        }
    }
}

/* One "key: value" of pool (section): the key scalar is in hand. */
static void
conf_yaml_key(struct conf_yaml *y, int section, const char *pool, int *servers_line)
{
    int line = conf_yaml_line(&y->ev);
    char shown[CONF_YAML_SHOW + 8];
    char *key = conf_yaml_scalar(y, "a key");

    if (!conf_yaml_next(y)) {
        free(key);
        return;
    }
    if (key == NULL) {
        conf_yaml_skip(y);
        return;
    }
    conf_scan_printable(shown, sizeof(shown), key, strlen(key), CONF_YAML_SHOW);
    if (y->ev.type == YAML_SEQUENCE_START_EVENT && strcmp(key, "servers") == 0) {
        conf_yaml_check_node(y);
        conf_yaml_servers(y, section, pool, line, servers_line);
    } else if (strcmp(key, "servers") == 0 || y->ev.type == YAML_SEQUENCE_START_EVENT) {
        conf_yaml_check_node(y);
        if (strcmp(key, "servers") == 0) {
            conf_yaml_issue(y, line,
                            "'servers' must be a list: one '- host:port:weight "
                            "[name]' item per line below it");
        } else {
            conf_yaml_issue(y, line, "'%s' takes one value, not a list", shown);
        }
        conf_yaml_skip(y);
    } else if (strcmp(key, "server") == 0 || strcmp(key, "include") == 0) {
        /* cachemux.ini keys that nutcracker's YAML does not have */
        conf_yaml_issue(y, line, "unknown key '%s' in pool '%s'%s", shown, pool,
                        key[0] == 's' ? " (servers go in a 'servers:' list)" : "");
        conf_yaml_skip(y);
    } else {
        char *value = conf_yaml_scalar(y, "a value");
        if (value != NULL) {
            conf_yaml_entry(y, section, key, value, line);
            free(value);
        }
    }
    free(key);
}

/* One pool: its name scalar is in hand. */
static void
conf_yaml_pool(struct conf_yaml *y)
{
    int line = conf_yaml_line(&y->ev), section, servers_line = 0;
    char shown[CONF_YAML_SHOW + 8];
    char *name = conf_yaml_scalar(y, "a pool name"), *sname;

    if (!conf_yaml_next(y)) {
        free(name);
        return;
    }
    if (name == NULL) {
        conf_yaml_skip(y);
        return;
    }
    conf_scan_printable(shown, sizeof(shown), name, strlen(name), CONF_YAML_SHOW);
    conf_yaml_check_node(y);
    if (y->ev.type != YAML_MAPPING_START_EVENT) {
        if (y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.length == 0) {
            conf_yaml_issue(y, line,
                            "pool '%s' is empty: its keys go on the lines below it, "
                            "indented",
                            shown);
        } else {
            conf_yaml_issue(y, line,
                            "pool '%s' must be a mapping of 'key: value' lines, found "
                            "%s",
                            shown, conf_yaml_what(&y->ev));
        }
        conf_yaml_skip(y);
        free(name);
        return;
    }
    sname = malloc(strlen(name) + 6);
    if (sname == NULL) {
        y->oom = true;
        free(name);
        return;
    }
    memcpy(sname, "pool ", 5);
    strcpy(sname + 5, name);
    if (conf_scan_add_section(y->out, sname, line) < 0) {
        y->oom = true;
    }
    free(sname);
    section = (int)y->out->nsections - 1;
    y->section = y->oom ? -1 : section;
    while (!y->oom && conf_yaml_next(y) && y->ev.type != YAML_MAPPING_END_EVENT) {
        conf_yaml_key(y, section, shown, &servers_line);
    }
    y->section = -1;
    free(name);
}

/* The document's root node is in hand. */
static void
conf_yaml_root(struct conf_yaml *y)
{
    const yaml_event_t *ev = &y->ev;

    conf_yaml_check_node(y);
    if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0) {
        conf_yaml_issue(y, conf_yaml_line(ev), "no pools: the document is empty");
        return;
    }
    if (ev->type != YAML_MAPPING_START_EVENT) {
        conf_yaml_issue(y, conf_yaml_line(ev),
                        "expected pools at the top level ('NAME:' "
                        "lines, each followed by the pool's indented keys), found %s",
                        conf_yaml_what(ev));
        conf_yaml_skip(y);
        return;
    }
    while (!y->oom && conf_yaml_next(y) && y->ev.type != YAML_MAPPING_END_EVENT) {
        conf_yaml_pool(y);
    }
}

static void
conf_yaml_document(struct conf_yaml *y)
{
    const yaml_event_t *ev = &y->ev;
    int line = conf_yaml_line(ev);

    if (ev->data.document_start.version_directive != NULL ||
        ev->data.document_start.tag_directives.start !=
            ev->data.document_start.tag_directives.end) {
        conf_yaml_issue(y, line,
                        "'%%YAML' or '%%TAG' directive: nutcracker refuses "
                        "directives; remove it");
    }
    if (!ev->data.document_start.implicit) {
        conf_yaml_issue(y, line,
                        "'---' (document start): nutcracker refuses it; remove the "
                        "line");
    }
    if (conf_yaml_next(y)) {
        conf_yaml_root(y);
    }
}

static void
conf_yaml_stream(struct conf_yaml *y)
{
    bool seen = false;

    if (!conf_yaml_next(y)) { /* STREAM-START */
        return;
    }
    while (!y->oom && conf_yaml_next(y)) {
        const yaml_event_t *ev = &y->ev;
        switch (ev->type) {
        case YAML_DOCUMENT_START_EVENT:
            if (seen) {
                conf_yaml_issue(y, conf_yaml_line(ev),
                                "a second YAML document: nutcracker "
                                "reads a file of exactly one");
                return;
            }
            seen = true;
            conf_yaml_document(y);
            break;
        case YAML_DOCUMENT_END_EVENT:
            if (!ev->data.document_end.implicit) {
                conf_yaml_issue(y, conf_yaml_line(ev),
                                "'...' (document end): nutcracker "
                                "refuses it; remove the line");
            }
            break;
        case YAML_STREAM_END_EVENT:
            if (!seen) {
                conf_yaml_issue(y, 1,
                                "no pools: the file is empty (expected 'NAME:' lines, "
                                "each followed by the pool's indented keys)");
            }
            return;
        default:
            return;
        }
    }
}

int
conf_yaml_parse(const char *text, size_t len, struct conf_scan *out)
{
    struct conf_yaml y = { .text = text, .len = len, .out = out, .section = -1 };
    int line = 1;

    memset(out, 0, sizeof(*out));
    if (!yaml_parser_initialize(&y.parser)) {
        return -1;
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    conf_yaml_stream(&y);
    if (y.have_ev) {
        yaml_event_delete(&y.ev);
    }
    yaml_parser_delete(&y.parser);
    for (size_t i = 0; i < len; i++) {
        line += text[i] == '\n';
    }
    out->nlines = len > 0 && text[len - 1] == '\n' ? line - 1 : line;
    return y.oom ? -1 : 0;
}

/* ---- INI output ---- */

struct conf_yaml_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void
conf_yaml_put(struct conf_yaml_buf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
conf_yaml_puts(struct conf_yaml_buf *b, const char *s)
{
    conf_yaml_put(b, s, strlen(s));
}

char *
conf_yaml_ini(const struct conf_scan *s, const char *source, int *line, char *err, size_t errlen)
{
    struct conf_yaml_buf b = { 0 };
    char shown[256];
    size_t e = 0;

    *line = 0;
    conf_scan_printable(shown, sizeof(shown), source, strlen(source), sizeof(shown) - 4);
    conf_yaml_puts(&b, "; Converted by cachemux --convert from the nutcracker configuration\n;   ");
    conf_yaml_puts(&b, shown);
    conf_yaml_puts(&b, "\n"
                       "; Pools and keys are in the order of that file. Its comments are not\n"
                       "; here: libyaml, which reads it, does not report comments.\n"
                       "; Process settings (stats port, log file, ...) are flags for nutcracker\n"
                       "; and still work as flags; they can also go in a [cachemux] section\n"
                       "; (see cachemux.ini(5)).\n");
    for (size_t i = 0; i < s->nsections; i++) {
        /* conf allows no ']' in a pool's name, so the header reads back */
        const char *name = s->sections[i].name;
        conf_yaml_puts(&b, "\n[");
        conf_yaml_puts(&b, name);
        conf_yaml_puts(&b, "]\n");
        /* conf_yaml_parse adds a pool's entries together, after its header */
        for (; e < s->nentries && s->entries[e].section == (int)i; e++) {
            const struct conf_scan_entry *en = &s->entries[e];
            enum conf_scan_form form = conf_scan_value_form(en->value);
            if (form == CONF_SCAN_NO_BREAK || form == CONF_SCAN_NO_COMMENT) {
                *line = en->line;
                snprintf(err, errlen, "the value of '%s' %s", en->key,
                         form == CONF_SCAN_NO_BREAK
                             ? "holds a line break, which an INI line cannot"
                             : "holds ';' after white space, which INI reads as a comment");
                free(b.p);
                return NULL;
            }
            bool quoted = form == CONF_SCAN_QUOTED;
            conf_yaml_puts(&b, en->key);
            conf_yaml_puts(&b, quoted ? " = \"" : " = ");
            conf_yaml_puts(&b, en->value);
            conf_yaml_puts(&b, quoted ? "\"\n" : "\n");
        }
    }
    if (b.oom) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return b.p;
}
