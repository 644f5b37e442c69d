/* SPDX-License-Identifier: MIT */
/* Showing what a machine is granted on the host (privileges.h): the listing check prints as
 * comment lines and a build prints before anything is fetched, and the same as JSON. */
#include <errno.h>
#include <stddef.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hooks.h"
#include "privileges.h"
#include "util/cleanup.h"

static const char *const file_names[_PRIV_FILE_MAX] = {
        [PRIV_FILE_NSPAWN] = "nspawn",
        [PRIV_FILE_DROPIN] = "dropin",
        [PRIV_FILE_MODULES] = "modules_load",
        [PRIV_FILE_BUILD] = NULL,       /* no host file: the build itself */
};

void cli_print_privileges(FILE *f, const char *prefix, const struct priv_report *rep, const char *name) {
        if (rep->grants.n == 0)
                fprintf(f, "%sprivileges of machine '%s' on the host: none (user namespace, private network, no "
                           "host path, device or module)\n",
                        prefix, name);
        else
                fprintf(f, "%sprivileges of machine '%s' on the host:\n", prefix, name);
        for (size_t i = 0; i < rep->grants.n; i++) {
                const struct priv_grant *g = &rep->grants.items[i];
                _cleanup_free_ char *d = priv_grant_describe(g);
                fprintf(f, "%s  %s%s%s\n", prefix, g->denied ? "REFUSED " : "", g->fresh ? "NEW " : "", d ? d : g->setting);
        }
        /* Why each hook that adds something needs it, once per explanation. */
        for (size_t i = 0; i < rep->grants.n; i++) {
                const struct priv_grant *g = &rep->grants.items[i];
                const char *explain = g->added_by ? hooks_explain(g->added_by) : NULL;
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = rep->grants.items[j].added_by && hooks_explain(rep->grants.items[j].added_by) == explain;
                if (!seen && explain)
                        fprintf(f, "%s  why %.*s: %s\n", prefix,
                                (int)(strstr(g->added_by, " (") ? strstr(g->added_by, " (") - g->added_by
                                                                : (ptrdiff_t)strlen(g->added_by)),
                                g->added_by, explain);
        }
        if (rep->policy_path)
                fprintf(f, "%spolicy: %s (%zu grant%s beyond it)\n", prefix, rep->policy_path, rep->n_denied,
                        rep->n_denied == 1 ? "" : "s");
        else
                fprintf(f, "%spolicy: none (no /etc/mkmachine/policy.conf under the host root): every grant is allowed\n",
                        prefix);
        if (rep->deployed > 0)
                fprintf(f, "%sdeployed generation %u: %zu of these %s new\n", prefix, rep->deployed_gen, rep->n_new,
                        rep->n_new == 1 ? "is" : "are");
        else if (rep->deployed < 0)
                fprintf(f, "%sdeployed generation %u: keeps no copy of its host files; which grants are new is unknown\n",
                        prefix, rep->deployed_gen);
}

int cli_json_add_privileges(struct json_object *o, const char *key, const struct priv_report *rep) {
        struct json_object *p = cli_json_add_object(o, key);
        struct json_object *a = p ? cli_json_add_array(p, "grants") : NULL;
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < rep->grants.n; i++) {
                const struct priv_grant *g = &rep->grants.items[i];
                _cleanup_free_ char *what = priv_grant_what(g), *d = priv_grant_describe(g);
                const char *explain = g->added_by ? hooks_explain(g->added_by) : NULL;
                struct json_object *e = cli_json_append_object(a);
                if (!e || !what || !d || cli_json_add_string(e, "kind", priv_kind_to_string(g->kind)) < 0 ||
                    cli_json_add_string(e, "value", g->value) < 0 ||
                    (g->kind == PRIV_BIND ? cli_json_add_bool(e, "read_only", g->read_only) : 0) < 0 ||
                    cli_json_add_string(e, "what", what) < 0 || cli_json_add_string(e, "host_file", file_names[g->in]) < 0 ||
                    cli_json_add_string(e, "setting", g->setting) < 0 || cli_json_add_string(e, "key", g->key) < 0 ||
                    cli_json_add_string(e, "file", g->file) < 0 ||
                    (g->line ? cli_json_add_int(e, "line", g->line) : cli_json_add_null(e, "line")) < 0 ||
                    cli_json_add_string(e, "added_by", g->added_by) < 0 || cli_json_add_string(e, "why", explain) < 0 ||
                    cli_json_add_string(e, "description", d) < 0 || cli_json_add_bool(e, "allowed", !g->denied) < 0 ||
                    cli_json_add_string(e, "refused", g->denied) < 0 || cli_json_add_bool(e, "new", g->fresh) < 0)
                        return -ENOMEM;
        }
        if (cli_json_add_string(p, "policy", rep->policy_path) < 0 || cli_json_add_int(p, "refused", (int64_t)rep->n_denied) < 0 ||
            (rep->deployed ? cli_json_add_int(p, "deployed_generation", rep->deployed_gen)
                           : cli_json_add_null(p, "deployed_generation")) < 0 ||
            (rep->deployed > 0 ? cli_json_add_int(p, "new", (int64_t)rep->n_new) : cli_json_add_null(p, "new")) < 0)
                return -ENOMEM;
        return 0;
}

struct json_object *cli_privileges_details(const struct priv_report *rep) {
        struct json_object *d = json_object_new_object();
        if (!d || cli_json_add_privileges(d, "privileges", rep) < 0) {
                (void)json_object_put(d);
                return NULL;
        }
        return d;
}
