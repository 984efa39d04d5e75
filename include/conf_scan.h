/*
 * conf_scan: the line-by-line pass conf makes over the config text before
 * inih sees it. Debian's libinih 55 splits lines longer than its 200-byte
 * buffer without a word (the tail becomes a key), treats indented lines as
 * continuations of the previous value, accepts ':' as a delimiter, truncates
 * section names to 49 bytes and never tells the handler a line number; its
 * limits are compile-time ones that a distribution's build fixes. So the
 * scan reads every line itself, records where every section header and every
 * key line is, takes each value itself, and hands inih a cleaned text of
 * short lines it cannot misread.
 *
 * Grammar (README "Configuration", cachemux.ini(5)), one line at a time (LF or CRLF endings), leading white space
 * ignored everywhere:
 *   - blank, white space only, or a comment: first non-blank byte ';' or '#'
 *   - "[NAME]", optionally followed by white space and a comment
 *   - "key = value"; a ';' after white space starts a comment anywhere;
 *     one pair of matching quotes around the value is removed
 * Errors: a line longer than CONF_MAX_LINE bytes (a trailing CR not
 * counted), a line with no '=' (or a ':' before it), an empty key, one
 * longer than CONF_MAX_KEY or one with control or non-ASCII bytes, a
 * malformed header, a NUL byte.
 *
 * The struct conf_scan is also what conf_yaml produces from a YAML file, so
 * conf checks both formats with one code path.
 *
 * Pure: no globals, no I/O. Messages carry no "FILE:LINE:" prefix; conf adds it.
 */
#ifndef CMX_CONF_SCAN_H
#define CMX_CONF_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CONF_MAX_LINE 65536 /* bytes in a line, its LF or CRLF not counted */
#define CONF_MAX_KEY 64     /* bytes in a key; every real key is far shorter */

/* A "[...]" line. */
struct conf_scan_section {
    char *name; /* the bytes between '[' and ']' as written */
    int line;
    bool bad;     /* malformed header (already reported): ignore its keys */
    bool partial; /* some of its keys could not be read (already reported): do not
                           also say that one is missing */
};

/* A "key = value" line, in file order. */
struct conf_scan_entry {
    int section;         /* index into sections, -1 before the first header */
    char *key;           /* as inih reports it: text before '=', right-trimmed */
    char *value;         /* after '=', trimmed, comment cut, one pair of quotes removed */
    unsigned occurrence; /* number of earlier entries with this section and key */
    int line;
};

/* A problem found by the scan; msg has no "FILE:LINE:" prefix. */
struct conf_scan_issue {
    int line;
    char *msg;
};

struct conf_scan {
    /*
     * Text for ini_parse_string: exactly one line per input line, so line N
     * here is line N of the input. Section headers become "[I]" (I = index
     * into sections, which lifts inih's 49-byte name limit and tells apart
     * two headers with the same name); key lines become "KEY =" (the value
     * is in the entry, so no line comes near inih's 199-byte limit);
     * comments and every line with an issue become empty. NULL for a scan
     * conf_yaml made, which inih never reads.
     */
    char *clean;
    struct conf_scan_section *sections;
    size_t nsections;
    struct conf_scan_entry *entries;
    size_t nentries;
    struct conf_scan_issue *issues; /* in line order */
    size_t nissues;
    int nlines;
    size_t sections_cap, entries_cap, issues_cap; /* allocated room */
};

/*
 * Scan text[0..len) (NUL bytes in it are reported as issues). Fills *out,
 * which the caller releases with conf_scan_free even on failure. Returns 0,
 * or -1 when out of memory.
 */
int conf_scan_text(const char *text, size_t len, struct conf_scan *out) MUSTCHECK;

void conf_scan_free(struct conf_scan *s);

/*
 * Line of the occurrence-th (0-based) "key =" line in section (an index into
 * sections, -1 for before the first header), or 0 when there is none.
 */
int conf_scan_line(const struct conf_scan *s, int section, const char *key, unsigned occurrence);

/*
 * The section index inih reports for a cleaned header "[I]" (inih gives the
 * handler "I"); "" (keys before any header) gives -1; anything else -2.
 */
int conf_scan_section_index(const struct conf_scan *s, const char *inih_section);

/*
 * Append an entry (key and value copied) to section (-1: none) of s, with
 * its occurrence counted, or an issue at line; for producers other than
 * conf_scan_text (conf_yaml). Returns 0, or -1 when out of memory.
 */
int conf_scan_add_section(struct conf_scan *s, const char *name, int line) MUSTCHECK;
int conf_scan_add_entry(struct conf_scan *s, int section, const char *key, const char *value,
                        int line) MUSTCHECK;
int conf_scan_add_issue(struct conf_scan *s, int line, const char *fmt, ...) MUSTCHECK
    __attribute__((format(printf, 3, 4)));

/*
 * How value v must be written after "key = " for conf_scan_text to read
 * back exactly v: CONF_SCAN_PLAIN as it is, CONF_SCAN_QUOTED inside one
 * pair of double quotes (which the scan removes), or not at all: it holds a
 * line break (CONF_SCAN_NO_BREAK), or a ';' after white space, which starts
 * a comment even inside quotes (CONF_SCAN_NO_COMMENT).
 */
enum conf_scan_form {
    CONF_SCAN_PLAIN,
    CONF_SCAN_QUOTED,
    CONF_SCAN_NO_BREAK,
    CONF_SCAN_NO_COMMENT,
};
enum conf_scan_form conf_scan_value_form(const char *v);

/*
 * Copy at most max bytes of p[0..n) into dst (dstlen >= max + 4) for a
 * message, control and non-ASCII bytes shown as '?' (so a broken file cannot
 * put escapes on an operator's terminal) and "..." when cut.
 */
void conf_scan_printable(char *dst, size_t dstlen, const char *p, size_t n, size_t max);

#endif
