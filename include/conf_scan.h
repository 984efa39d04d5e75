/*
 * conf_scan: the line-by-line pass conf makes over the config text before
 * inih sees it. Debian's libinih 55 splits lines longer than its 200-byte
 * buffer without a word (the tail becomes a key), treats indented lines as
 * continuations of the previous value, accepts ':' as a delimiter, truncates
 * section names to 49 bytes and never tells the handler a line number. The
 * scan finds all of that itself, records where every section header and
 * every key line is, and produces a cleaned text that inih cannot misread.
 *
 * Grammar (README "Configuration", cachemux.ini(5)), one line at a time (LF or CRLF endings):
 *   - blank, white space only, or a comment: first non-blank byte ';' or '#'
 *   - "[NAME]", optionally followed by white space and a comment
 *   - "key = value"; a ';' after white space starts a comment anywhere
 * Errors: a line of CONF_MAX_LINE + 1 (199) bytes or more (a trailing CR
 * not counted), a key or header line that starts with white space, a line
 * with no '=' (or a ':' before it), an empty key or one with control or
 * non-ASCII bytes, a malformed header, a NUL byte. White-space-only lines and
 * indented comments are allowed (inih reads them as blank and comment lines too).
 *
 * Pure: no globals, no I/O. Messages carry no "FILE:LINE:" prefix; conf adds it.
 */
#ifndef CMX_CONF_SCAN_H
#define CMX_CONF_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CONF_MAX_LINE 198 /* a line of 199 bytes or more is an error */

/* A "[...]" line. */
struct conf_scan_section {
    char *name; /* the bytes between '[' and ']' as written */
    int line;
    bool bad; /* malformed header (already reported): ignore its keys */
};

/* A "key = value" line, in file order. */
struct conf_scan_entry {
    int section;         /* index into sections, -1 before the first header */
    char *key;           /* as inih reports it: text before '=', right-trimmed */
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
     * two headers with the same name); key lines lose their comment and CR;
     * comments and every line with an issue become empty.
     */
    char *clean;
    struct conf_scan_section *sections;
    size_t nsections;
    struct conf_scan_entry *entries;
    size_t nentries;
    struct conf_scan_issue *issues; /* in line order */
    size_t nissues;
    int nlines;
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
 * Copy at most max bytes of p[0..n) into dst (dstlen >= max + 4) for a
 * message, control and non-ASCII bytes shown as '?' (so a broken file cannot
 * put escapes on an operator's terminal) and "..." when cut.
 */
void conf_scan_printable(char *dst, size_t dstlen, const char *p, size_t n, size_t max);

#endif
