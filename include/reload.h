/*
 * reload: the supervisor's half of SIGHUP. Reads and validates the file
 * with the same code and messages as -t, keeps the command-line overrides
 * winning, keeps the settings that need a restart at their running values
 * (logging that they do), and says what changed pool by pool.
 */
#ifndef CMX_RELOAD_H
#define CMX_RELOAD_H

#include <stddef.h>

struct cli_opts;
struct conf;
struct conf_errors;
struct gen;

struct reload_summary {
    size_t added, removed, changed, kept;
};

/*
 * Load o->conf_file as the successor of cur. Returns the new generation
 * (resolved, overrides applied; no registry records or listeners yet) with
 * sum filled, or NULL with every problem in errs as FILE:LINE messages.
 */
struct gen *reload_load(const struct cli_opts *o, const struct gen *cur, struct conf_errors *errs,
                        struct reload_summary *sum);

/* Apply the [cachemux] settings that take effect on reload (log level and
   file) unless the command line set them. */
void reload_apply_process_settings(const struct cli_opts *o, const struct conf *old,
                                   const struct conf *nc);

#endif
