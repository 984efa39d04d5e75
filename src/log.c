/*
 * log: one write() per line on an O_APPEND fd, so concurrent threads never
 * interleave and no lock is needed. The fd number stays fixed for the life
 * of the process: rotation opens the file again and dup2()s it onto that
 * number, so a thread in the middle of a write never sees a closed fd.
 * The level is an atomic int read before formatting.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static _Atomic int log_level = LOG_NOTICE;
static int log_out = STDERR_FILENO;                               /* fixed once log_init ran */
static char log_path[4096];                                       /* "" means stderr */
static pthread_mutex_t log_path_lock = PTHREAD_MUTEX_INITIALIZER; /* reopen/set only */
static _Thread_local char log_tag[16];

static const char *const log_level_names[] = {
    "EMERG", "ALERT", "CRIT", "ERROR", "WARN",   "NOTICE",
    "INFO",  "DEBUG", "VERB", "VVERB", "VVVERB", "PVERB",
};

static int
log_open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    return fd < 0 ? -errno : fd;
}

int
log_init(int level, const char *path)
{
    log_set_level(level);
    return log_set_file(path);
}

int
log_set_file(const char *path)
{
    int rc = 0;

    pthread_mutex_lock(&log_path_lock);
    if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0) {
        log_path[0] = '\0';
        if (log_out != STDERR_FILENO) {
            dup2(STDERR_FILENO, log_out);
        }
    } else if (strlen(path) >= sizeof(log_path)) {
        rc = -ENAMETOOLONG;
    } else {
        int fd = log_open_path(path);
        if (fd < 0) {
            rc = fd;
        } else {
            if (log_out == STDERR_FILENO) {
                log_out = fd; /* first file: keep this fd number for good */
            } else {
                dup2(fd, log_out);
                close(fd);
            }
            strcpy(log_path, path);
        }
    }
    pthread_mutex_unlock(&log_path_lock);
    return rc;
}

int
log_reopen(void)
{
    int rc = 0;

    pthread_mutex_lock(&log_path_lock);
    if (log_path[0] != '\0') {
        int fd = log_open_path(log_path);
        if (fd < 0) {
            rc = fd;
        } else {
            dup2(fd, log_out);
            close(fd);
        }
    }
    pthread_mutex_unlock(&log_path_lock);
    return rc;
}

void
log_set_level(int level)
{
    if (level < LOG_EMERG) {
        level = LOG_EMERG;
    }
    if (level > LOG_LEVEL_MAX) {
        level = LOG_LEVEL_MAX;
    }
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int
log_get_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

int
log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void
log_set_thread_tag(const char *tag)
{
    snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

int
log_fd(void)
{
    return log_out;
}

void
log_write(int level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int errno_saved = errno;
    va_list ap;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "[%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld] %s %s ", (long)tv.tv_usec / 1000,
                          log_level_names[level < 0               ? 0
                                          : level > LOG_LEVEL_MAX ? LOG_LEVEL_MAX
                                                                  : level],
                          log_tag[0] ? log_tag : "-");
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) {
        m = 0;
    }
    n += (size_t)m;
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    ssize_t w = write(log_out, line, n);
    (void)w;
    errno = errno_saved;
}
