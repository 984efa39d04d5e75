/*
 * conf_file: the files one configuration is read from. The file named
 * with -c, and every file its "include = PATH" lines name, each read and
 * turned into a struct conf_scan: by conf_scan for INI, by conf_yaml for a
 * name ending in .yml or .yaml. An include names a file, or a directory
 * whose *.ini files are read in byte order of their names; a relative PATH
 * is relative to the directory of the file that includes it. An included
 * file starts outside any section (it must open its own) and, whatever it
 * opens, the including file goes on in the section it was in.
 *
 * conf then checks every file's keys with one table, naming the file each
 * problem is in. Sections are numbered in reading order: an included
 * file's sections come where its include line is, so "first at" in a
 * duplicate's message points at what an operator reading top to bottom
 * meets first.
 */
#ifndef CMX_CONF_FILE_H
#define CMX_CONF_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf_scan.h"
#include "util.h"

#define CONF_FILE_MAX_SIZE (64u << 20) /* bytes of all the files together */
#define CONF_FILE_MAX_FILES 4096
#define CONF_FILE_MAX_DEPTH 16 /* includes within includes */

struct conf_file {
    char *path; /* as messages name it: -c's, or the includer's directory + PATH */
    bool yaml;
    struct conf_scan scan;
    size_t *order; /* reading-order number of each of scan.sections */
};

/* A problem with a file as a whole or with an include line. */
struct conf_file_issue {
    size_t file; /* where it is reported: the includer for a bad include */
    int line;    /* 0: the file as a whole */
    char *msg;
};

struct conf_file_set {
    struct conf_file *files; /* files[0] is the top one; then in reading order */
    size_t nfiles, files_cap;
    size_t nsections; /* over all files */
    struct conf_file_issue *issues;
    size_t nissues, issues_cap;
    size_t bytes; /* read so far */
    bool unread;  /* the top file could not be read (an issue says why) */
};

/*
 * Read path, and everything it includes, into *out (memset first). text,
 * when not NULL, is path's content (len bytes) and path is not opened; the
 * files it includes still are. Returns 0, or -1 when out of memory; every
 * other problem is an issue, or a scan issue of its file. The caller
 * releases *out with conf_file_free even on failure.
 */
int conf_file_load(const char *path, const char *text, size_t len,
                   struct conf_file_set *out) MUSTCHECK;

void conf_file_free(struct conf_file_set *s);

/* Whether path names a YAML file (ends in .yml or .yaml). */
bool conf_file_is_yaml(const char *path);

#endif
