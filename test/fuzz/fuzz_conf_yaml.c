/*
 * libFuzzer harness for the YAML configuration loader (conf_yaml through
 * conf).
 *
 * Input: the bytes of a nutcracker YAML file. It is loaded as "f.yml"
 * would be (the 4 MiB limit, libyaml, conf's checks). Whatever the bytes,
 * the load must succeed exactly when no message is reported, and every
 * message must name the file. When it succeeds, the two other ways of
 * reading the same pools must agree with it, field by field:
 *   - the INI --convert prints (when INI can hold every value) loads, and
 *     loads the same configuration;
 *   - the INI --dump-conf prints loads the same configuration too.
 * Any violation abort()s, so a converter that drops or changes a value is
 * found as well as a crash.
 */
#include "conf.h"
#include "conf_scan.h"
#include "conf_yaml.h"
#include "fuzz_driver.h"

#include <stdlib.h>
#include <string.h>

static bool
str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
check_same(const struct conf *a, const struct conf *b)
{
    CHECK(a->npools == b->npools);
    CHECK(a->workers == b->workers && a->stats_port == b->stats_port);
    CHECK(str_eq(a->stats_host, b->stats_host));
    CHECK(a->max_request_size == b->max_request_size);
    CHECK(a->client_output_limit == b->client_output_limit);
    for (size_t i = 0; i < a->npools; i++) {
        const struct conf_pool *x = &a->pools[i], *y = &b->pools[i];
        CHECK(conf_pool_equal(x, y));
        CHECK(x->listen.is_unix == y->listen.is_unix && x->listen.port == y->listen.port);
        CHECK(str_eq(x->listen.host, y->listen.host));
        for (size_t j = 0; j < x->nservers; j++) {
            CHECK(str_eq(x->servers[j].name, y->servers[j].name));
        }
    }
}

/* Load INI text that must load, and compare it with c. */
static void
check_ini(const struct conf *c, const char *ini)
{
    struct conf_errors errs = { 0 };
    struct conf *back = NULL;

    CHECK(conf_load_string("f.ini", ini, &back, &errs) == 0);
    CHECK(errs.n == 0);
    check_same(c, back);
    conf_free(back);
    conf_errors_free(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    int rc = conf_load_text("f.yml", (const char *)data, size, &c, &errs);

    CHECK((rc == 0) == (errs.n == 0));
    CHECK((rc == 0) == (c != NULL));
    for (size_t i = 0; i < errs.n; i++) {
        CHECK(strncmp(errs.msgs[i], "f.yml", 5) == 0);
        CHECK(strncmp(errs.msgs[i], "f.yml: internal error", 21) != 0);
    }
    conf_errors_free(&errs);
    if (c == NULL) {
        return 0;
    }

    /* --convert's text, from the same scan conf_convert uses */
    struct conf_scan scan;
    char err[256];
    int line;
    CHECK(conf_yaml_parse((const char *)data, size, &scan) == 0);
    CHECK(scan.nissues == 0);
    char *ini = conf_yaml_ini(&scan, "f.yml", &line, err, sizeof(err));
    if (ini != NULL) {
        check_ini(c, ini);
        free(ini);
    } else {
        CHECK(line > 0); /* a value INI cannot hold, not a failure */
    }
    conf_scan_free(&scan);

    char *dump = conf_dump(c);
    CHECK(dump != NULL);
    if (strstr(dump, "cannot be written") == NULL) {
        check_ini(c, dump);
    }
    free(dump);
    conf_free(c);
    return 0;
}
