/*
 * conf_yaml: nutcracker's YAML configuration, read with libyaml (the
 * library twemproxy itself uses) into the struct conf_scan that conf_scan
 * makes of an INI file, so that conf checks both formats with the same key
 * table and rules: each YAML pool becomes a section "pool NAME" and each
 * item of its servers: list a "server" entry, with the line it came from.
 *
 * The YAML accepted is what nutcracker 0.5.0 accepts: one implicit document
 * whose top level maps pool names to mappings of "key: value", one of which
 * is the block sequence servers:. Anchors, aliases, tags, flow collections,
 * directives and "---"/"..." markers are refused with the reason, as
 * nutcracker refuses them, so a file that loads here also loads in
 * nutcracker during a side-by-side migration and after a rollback.
 *
 * Pure: text in, struct out, no I/O and no globals.
 */
#ifndef CMX_CONF_YAML_H
#define CMX_CONF_YAML_H

#include <stddef.h>

#include "conf_scan.h"
#include "util.h"

/* Largest YAML file read; a nutcracker file is a few kilobytes. */
#define CONF_YAML_MAX_FILE (4u << 20)

/*
 * Parse text[0..len) into *out (memset first; sections, entries and issues
 * as conf_scan_text fills them, clean NULL). Problems, a YAML syntax error
 * included, are issues with their line. The caller releases *out with
 * conf_scan_free even on failure. Returns 0, or -1 when out of memory.
 */
int conf_yaml_parse(const char *text, size_t len, struct conf_scan *out) MUSTCHECK;

/*
 * The INI equivalent of a scan conf_yaml_parse made (and conf accepted):
 * a header comment naming source, then every pool and key in the scan's
 * order, each value written so that conf_scan reads it back unchanged.
 * Returns the malloc'd text, or NULL with *line and err set for the first
 * value INI cannot hold (a line break, or ';' after white space) or when
 * out of memory (*line 0).
 */
char *conf_yaml_ini(const struct conf_scan *s, const char *source, int *line, char *err,
                    size_t errlen);

#endif
