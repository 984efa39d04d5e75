/*
 * conf_file: reads the configuration's files (see conf_file.h): the top
 * one, then depth first every file an "include" line names, at the place
 * of that line, so that the reading order is the order in which a person
 * would meet the sections reading the files top to bottom.
 *
 * While a file's includes are read it is on the chain of open includes;
 * a file already on the chain (same device and inode, so a symlink or a
 * "../" path cannot hide it) is a cycle, reported at the include line with
 * the whole chain. Depth, file count and total size are bounded so that a
 * directory of thousands of files or a runaway include cannot make a load
 * or a reload take the supervisor's memory or time.
 *
 * Only INI files include: YAML has no include key (conf_yaml refuses it),
 * but an INI file may include a nutcracker YAML file by naming it.
 *
 * Runs on the supervisor's thread (load and reload) and in one-shot modes;
 * strerror is fine there. Everything in the set belongs to the caller.
 */
#include "conf_file.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf_yaml.h"

#define CONF_FILE_READ_CHUNK 65536

struct conf_file_id {
    dev_t dev;
    ino_t ino;
    bool known;
};

struct conf_file_ctx {
    struct conf_file_set *set;
    size_t chain[CONF_FILE_MAX_DEPTH + 1]; /* files whose includes are being read */
    struct conf_file_id ids[CONF_FILE_MAX_DEPTH + 1];
    size_t depth;
    bool oom;
};

static void conf_file_issue(struct conf_file_ctx *x, size_t file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
conf_file_issue(struct conf_file_ctx *x, size_t file, int line, const char *fmt, ...)
{
    struct conf_file_set *s = x->set;
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->nissues == s->issues_cap) {
        size_t cap = s->issues_cap ? s->issues_cap * 2 : 8;
        struct conf_file_issue *n = realloc(s->issues, cap * sizeof(*n));
        if (n == NULL) {
            x->oom = true;
            return;
        }
        s->issues = n;
        s->issues_cap = cap;
    }
    char *m = strdup(msg);
    if (m == NULL) {
        x->oom = true;
        return;
    }
    s->issues[s->nissues++] = (struct conf_file_issue){ .file = file, .line = line, .msg = m };
}

bool
conf_file_is_yaml(const char *path)
{
    size_t n = strlen(path);

    return (n > 4 && strcmp(path + n - 4, ".yml") == 0) ||
           (n > 5 && strcmp(path + n - 5, ".yaml") == 0);
}

static void
conf_file_too_large(bool yaml, size_t limit, char *err, size_t errlen)
{
    if (yaml && limit == CONF_YAML_MAX_FILE) {
        snprintf(err, errlen,
                 "file too large: a YAML configuration is limited to %u MiB "
                 "(a nutcracker file is a few kilobytes)",
                 CONF_YAML_MAX_FILE >> 20);
    } else {
        snprintf(err, errlen,
                 "file too large: the configuration, includes and all, is "
                 "limited to %u MiB",
                 CONF_FILE_MAX_SIZE >> 20);
    }
}

/*
 * Read f (opened from path) whole into *text (malloc'd, NUL-terminated).
 * limit: most bytes accepted. Returns 0, or -1 with the reason in err.
 */
static int
conf_file_read(FILE *f, size_t limit, bool yaml, char **text, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;

    for (;;) {
        if (n + CONF_FILE_READ_CHUNK + 1 > cap) {
            size_t ncap = cap ? cap * 2 : CONF_FILE_READ_CHUNK * 2;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > limit) {
            free(buf);
            conf_file_too_large(yaml, limit, err, errlen);
            return -1;
        }
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        free(buf);
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static size_t
conf_file_limit(const struct conf_file_set *s, bool yaml)
{
    size_t left = s->bytes < CONF_FILE_MAX_SIZE ? CONF_FILE_MAX_SIZE - s->bytes : 0;

    return yaml && left > CONF_YAML_MAX_FILE ? CONF_YAML_MAX_FILE : left;
}

/* Add a file entry for path; returns its index, or -1 when out of memory. */
static long
conf_file_add(struct conf_file_ctx *x, const char *path)
{
    struct conf_file_set *s = x->set;
    char *copy;

    if (s->nfiles == s->files_cap) {
        size_t cap = s->files_cap ? s->files_cap * 2 : 4;
        struct conf_file *n = realloc(s->files, cap * sizeof(*n));
        if (n == NULL) {
            x->oom = true;
            return -1;
        }
        s->files = n;
        s->files_cap = cap;
    }
    if ((copy = strdup(path)) == NULL) {
        x->oom = true;
        return -1;
    }
    s->files[s->nfiles] = (struct conf_file){ .path = copy, .yaml = conf_file_is_yaml(path) };
    return (long)s->nfiles++;
}

static void conf_file_walk(struct conf_file_ctx *x, size_t f, struct conf_file_id id);

/* Scan file f's text and read what it includes. */
static void
conf_file_parse(struct conf_file_ctx *x, size_t f, const char *text, size_t len,
                struct conf_file_id id)
{
    struct conf_file *cf = &x->set->files[f];
    int rc = cf->yaml ? conf_yaml_parse(text, len, &cf->scan)
                      : conf_scan_text(text, len, &cf->scan);

    x->set->bytes += len;
    if (rc < 0) {
        x->oom = true;
        return;
    }
    conf_file_walk(x, f, id);
}

/* "A -> B -> C": the chain from its member `from` on, then path. */
static void
conf_file_chain(const struct conf_file_ctx *x, size_t from, const char *path, char *dst,
                size_t dstlen)
{
    size_t n = 0;

    dst[0] = '\0';
    for (size_t i = from; i < x->depth && n < dstlen; i++) {
        n += (size_t)snprintf(dst + n, dstlen - n, "%s -> ", x->set->files[x->chain[i]].path);
    }
    if (n < dstlen) {
        snprintf(dst + n, dstlen - n, "%s", path);
    }
}

/* Read the file path, which line of file `from` includes. */
static void
conf_file_open(struct conf_file_ctx *x, const char *path, size_t from, int line)
{
    struct conf_file_set *s = x->set;
    struct conf_file_id id = { 0 };
    char err[256], chain[768];
    struct stat st;
    char *text;
    size_t len;
    long f;

    if (x->depth > CONF_FILE_MAX_DEPTH) {
        conf_file_issue(x, from, line, "include '%s': includes nested more than %d deep", path,
                        CONF_FILE_MAX_DEPTH);
        return;
    }
    if (s->nfiles >= CONF_FILE_MAX_FILES) {
        conf_file_issue(x, from, line, "include '%s': more than %d configuration files", path,
                        CONF_FILE_MAX_FILES);
        return;
    }
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        conf_file_issue(x, from, line, "include '%s': cannot open: %s", path, strerror(errno));
        return;
    }
    if (fstat(fileno(fp), &st) == 0) {
        id = (struct conf_file_id){ .dev = st.st_dev, .ino = st.st_ino, .known = true };
    }
    for (size_t i = 0; i < x->depth && id.known; i++) {
        if (x->ids[i].known && x->ids[i].dev == id.dev && x->ids[i].ino == id.ino) {
            conf_file_chain(x, i, path, chain, sizeof(chain));
            conf_file_issue(x, from, line, "include cycle: %s", chain);
            fclose(fp);
            return;
        }
    }
    int rc = conf_file_read(fp, conf_file_limit(s, conf_file_is_yaml(path)),
                            conf_file_is_yaml(path), &text, &len, err, sizeof(err));
    fclose(fp);
    if (rc < 0) {
        conf_file_issue(x, from, line, "include '%s': %s", path, err);
        return;
    }
    f = conf_file_add(x, path);
    if (f >= 0) {
        conf_file_parse(x, (size_t)f, text, len, id);
    }
    free(text);
}

static int
conf_file_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.ini file of directory dir, in name order. */
static void
conf_file_open_dir(struct conf_file_ctx *x, const char *dir, size_t from, int line)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;

    if (d == NULL) {
        conf_file_issue(x, from, line, "include '%s': cannot open: %s", dir, strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        /* hidden files are editors' and package managers' leftovers */
        if (de->d_name[0] == '.' || len <= 4 || strcmp(de->d_name + len - 4, ".ini") != 0) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (nn == NULL) {
                x->oom = true;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) {
            x->oom = true;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof(*names), conf_file_name_cmp);
    }
    size_t dlen = strlen(dir);
    bool slash = dlen > 0 && dir[dlen - 1] == '/';
    for (size_t i = 0; i < n && !x->oom; i++) {
        struct stat st;
        char *path = malloc(dlen + strlen(names[i]) + 2);
        if (path == NULL) {
            x->oom = true;
            break;
        }
        sprintf(path, "%s%s%s", dir, slash ? "" : "/", names[i]);
        /* a subdirectory or socket that happens to end in .ini is not a file */
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            conf_file_open(x, path, from, line);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* The include line `line` of file f, whose value is v. */
static void
conf_file_include(struct conf_file_ctx *x, size_t f, int line, const char *v)
{
    const char *from = x->set->files[f].path;
    const char *slash = strrchr(from, '/');
    size_t dlen = v[0] == '/' || slash == NULL ? 0 : (size_t)(slash - from) + 1;
    struct stat st;
    char *path;

    if (v[0] == '\0') {
        conf_file_issue(x, f, line,
                        "include needs a path (a file, or a directory of *.ini "
                        "files)");
        return;
    }
    path = malloc(dlen + strlen(v) + 1);
    if (path == NULL) {
        x->oom = true;
        return;
    }
    memcpy(path, from, dlen);
    strcpy(path + dlen, v);
    if (stat(path, &st) != 0) {
        conf_file_issue(x, f, line, "include '%s': cannot open: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        conf_file_open_dir(x, path, f, line);
    } else {
        conf_file_open(x, path, f, line);
    }
    free(path);
}

/*
 * Number file f's sections in reading order, reading each include where its
 * line is. f is on the chain meanwhile.
 */
static void
conf_file_walk(struct conf_file_ctx *x, size_t f, struct conf_file_id id)
{
    struct conf_file_set *s = x->set;
    /* A copy: including files grows s->files, which moves files[f] (the
     * scan's own arrays stay where they are, and nothing changes them). */
    const struct conf_scan scan = s->files[f].scan, *sc = &scan;
    size_t *order = calloc(sc->nsections + 1, sizeof(*order));
    bool yaml = s->files[f].yaml;
    size_t si = 0;

    if (order == NULL) {
        x->oom = true;
        return;
    }
    s->files[f].order = order;
    x->chain[x->depth] = f;
    x->ids[x->depth] = id;
    x->depth++;
    for (size_t e = 0; e < sc->nentries && !yaml && !x->oom; e++) {
        const struct conf_scan_entry *en = &sc->entries[e];
        if (strcmp(en->key, "include") != 0) {
            continue;
        }
        while (si < sc->nsections && sc->sections[si].line < en->line) {
            order[si++] = s->nsections++;
        }
        conf_file_include(x, f, en->line, en->value);
    }
    while (si < sc->nsections) {
        order[si++] = s->nsections++;
    }
    x->depth--;
}

int
conf_file_load(const char *path, const char *text, size_t len, struct conf_file_set *out)
{
    struct conf_file_ctx x = { .set = out };
    struct conf_file_id id = { 0 };
    struct stat st;
    char err[256];
    char *own = NULL;
    bool yaml = conf_file_is_yaml(path);

    memset(out, 0, sizeof(*out));
    if (conf_file_add(&x, path) < 0) {
        return -1;
    }
    if (text == NULL) {
        FILE *fp = fopen(path, "rb");
        if (fp == NULL) {
            conf_file_issue(&x, 0, 0, "cannot open: %s", strerror(errno));
            out->unread = true;
            return x.oom ? -1 : 0;
        }
        if (fstat(fileno(fp), &st) == 0) {
            id = (struct conf_file_id){ .dev = st.st_dev, .ino = st.st_ino, .known = true };
        }
        int rc = conf_file_read(fp, conf_file_limit(out, yaml), yaml, &own, &len, err, sizeof(err));
        fclose(fp);
        if (rc < 0) {
            conf_file_issue(&x, 0, 0, "%s", err);
            out->unread = true;
            return x.oom ? -1 : 0;
        }
        text = own;
    } else {
        if (len > conf_file_limit(out, yaml)) {
            conf_file_too_large(yaml, conf_file_limit(out, yaml), err, sizeof(err));
            conf_file_issue(&x, 0, 0, "%s", err);
            out->unread = true;
            return x.oom ? -1 : 0;
        }
        if (stat(path, &st) == 0) {
            id = (struct conf_file_id){ .dev = st.st_dev, .ino = st.st_ino, .known = true };
        }
    }
    conf_file_parse(&x, 0, text, len, id);
    free(own);
    return x.oom ? -1 : 0;
}

void
conf_file_free(struct conf_file_set *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        free(s->files[i].path);
        free(s->files[i].order);
        conf_scan_free(&s->files[i].scan);
    }
    for (size_t i = 0; i < s->nissues; i++) {
        free(s->issues[i].msg);
    }
    free(s->files);
    free(s->issues);
    memset(s, 0, sizeof(*s));
}
