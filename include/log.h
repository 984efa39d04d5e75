/*
 * log: leveled logging on twemproxy's scale (0..11: 3 error, 4 warn,
 * 5 notice, 6 info, 7+ debug). The level is an atomic int checked before any
 * formatting, so debug logs exist in release builds and cost one load when
 * off. Each line is formatted into a local buffer and written with one
 * write() on an O_APPEND fd, so lines from different threads never interleave.
 * Each thread may set a tag ("w3", "sup") that prefixes its lines.
 */
#ifndef CMX_LOG_H
#define CMX_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_EMERG = 0,
    LOG_ALERT,
    LOG_CRIT,
    LOG_ERR,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG,
    LOG_VERB,
    LOG_VVERB,
    LOG_VVVERB,
    LOG_PVERB,
    LOG_LEVEL_MAX = LOG_PVERB /* the highest level -v and log_level take */
};

/* Open path for appending (NULL or "-" means stderr). Returns 0 or -errno. */
int log_init(int level, const char *path);
/* Reopen the same file (after rotation) onto the same fd. Returns 0 or -errno. */
int log_reopen(void);
/* Switch to another file (reload). Returns 0 or -errno. */
int log_set_file(const char *path);
void log_set_level(int level);
int log_get_level(void);
/* Name this thread's lines, e.g. "w0" or "sup"; at most 15 bytes. */
void log_set_thread_tag(const char *tag);
int log_fd(void);

int log_enabled(int level);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                   \
    do {                                   \
        if (log_enabled(lvl))              \
            log_write((lvl), __VA_ARGS__); \
    } while (0)
#define log_error(...) log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_verb(...) log_at(LOG_VERB, __VA_ARGS__)

#endif
