#include "names.h"

#include <stdlib.h>
#include <string.h>

struct name_entry {
    struct name_entry *next;
    uint64_t id;
    char name[]; /* NUL-terminated */
};

static uint32_t
names_slot(const struct names *t, uint64_t id)
{
    /* Fibonacci hashing: ids are sequential, the top bits spread them. */
    return (uint32_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (t->nslots - 1);
}

static struct name_entry **
names_find(const struct names *t, uint64_t id)
{
    if (t->nslots == 0) {
        return NULL;
    }
    struct name_entry **pe = &t->slots[names_slot(t, id)];
    while (*pe != NULL && (*pe)->id != id) {
        pe = &(*pe)->next;
    }
    return pe;
}

/* Double the slots once the chains average more than one name. */
static int
names_grow(struct names *t)
{
    uint32_t n = t->nslots ? t->nslots * 2 : 16;
    struct name_entry **slots = calloc(n, sizeof(*slots));

    if (slots == NULL) {
        return -1;
    }
    struct names nt = { slots, n, t->n };
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct name_entry *e, *next;
        for (e = t->slots[i]; e != NULL; e = next) {
            next = e->next;
            uint32_t s = names_slot(&nt, e->id);
            e->next = slots[s];
            slots[s] = e;
        }
    }
    free(t->slots);
    *t = nt;
    return 0;
}

int
names_set(struct names *t, uint64_t id, const void *p, size_t len)
{
    struct name_entry *e = malloc(sizeof(*e) + len + 1);

    if (e == NULL || (t->n >= t->nslots && names_grow(t) != 0)) {
        free(e);
        return -1;
    }
    e->id = id;
    memcpy(e->name, p, len);
    e->name[len] = '\0';
    struct name_entry **pe = names_find(t, id);
    if (*pe != NULL) {
        e->next = (*pe)->next;
        free(*pe);
    } else {
        e->next = NULL;
        t->n++;
    }
    *pe = e;
    return 0;
}

const char *
names_get(const struct names *t, uint64_t id)
{
    struct name_entry **pe = names_find(t, id);

    return pe != NULL && *pe != NULL ? (*pe)->name : NULL;
}

void
names_drop(struct names *t, uint64_t id)
{
    struct name_entry **pe = names_find(t, id);

    if (pe != NULL && *pe != NULL) {
        struct name_entry *e = *pe;
        *pe = e->next;
        free(e);
        t->n--;
    }
}

void
names_free(struct names *t)
{
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct name_entry *e, *next;
        for (e = t->slots[i]; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->slots);
    *t = (struct names){ 0 };
}
