/* SPDX-License-Identifier: MIT */
/* Package changes (lock_diff) as text and JSON, for build, rebuild and plan. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli.h"
#include "lock.h"
#include "util/cleanup.h"

void cli_print_changes(FILE *f, const char *against, const struct lock_diff *d) {
        _cleanup_free_ char *summary = lock_diff_summary(d);
        fprintf(f, "%s: %s\n", against, summary ? summary : "?");
        for (size_t i = 0; i < d->n; i++) {
                const struct lock_diff_entry *e = &d->e[i];
                switch (e->change) {
                case LOCK_ADDED:
                        fprintf(f, "  added       %s %s\n", e->name, e->new_version);
                        break;
                case LOCK_REMOVED:
                        fprintf(f, "  removed     %s %s\n", e->name, e->old_version);
                        break;
                default:
                        fprintf(f, "  %-11s %s %s -> %s\n", lock_change_to_string(e->change), e->name, e->old_version,
                                e->new_version);
                        break;
                }
        }
}

int cli_json_add_changes(struct json_object *o, const char *key, const struct lock_diff *d) {
        if (!d)
                return cli_json_add_null(o, key);
        struct json_object *c = cli_json_add_object(o, key);
        if (!c)
                return -ENOMEM;
        _cleanup_free_ char *summary = lock_diff_summary(d);
        if (!summary || cli_json_add_string(c, "summary", summary) < 0)
                return -ENOMEM;
        for (int k = 0; k < _LOCK_CHANGE_MAX; k++)
                if (cli_json_add_int(c, lock_change_to_string(k), (int64_t)d->count[k]) < 0)
                        return -ENOMEM;
        struct json_object *a = cli_json_add_array(c, "packages");
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < d->n; i++) {
                struct json_object *e = cli_json_append_object(a);
                if (!e || cli_json_add_string(e, "name", d->e[i].name) < 0 ||
                    cli_json_add_string(e, "change", lock_change_to_string(d->e[i].change)) < 0 ||
                    cli_json_add_string(e, "old_version", d->e[i].old_version) < 0 ||
                    cli_json_add_string(e, "new_version", d->e[i].new_version) < 0)
                        return -ENOMEM;
        }
        return 0;
}
