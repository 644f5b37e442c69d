/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/ini: systemd's syntax (continuations, comments, CRLF, repeated keys and
 * sections) and every refusal with its exact message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ini.h"
#include "util/cleanup.h"
#include "util/err.h"

struct parsed {
        struct ini_entry *e;
        size_t n;
};

static void parse_ok(const char *text, struct parsed *p) {
        struct mkm_err err = {};
        int r = ini_parse(text, strlen(text), "t.ini", &p->e, &p->n, &err);
        if (r < 0)
                fail_msg("unexpected failure %d: %s", r, err.msg);
}

static void assert_kv(const struct ini_entry *e, const char *section, const char *key, const char *value,
                      unsigned line) {
        assert_string_equal(e->section, section);
        if (key) {
                assert_non_null(e->key);
                assert_string_equal(e->key, key);
                assert_string_equal(e->value, value);
        } else {
                assert_null(e->key);
                assert_null(e->value);
        }
        assert_int_equal(e->line, line);
}

static void test_basic(void **state) {
        (void)state;
        struct parsed p;
        parse_ok("# leading comment\n"
                 "; another\n"
                 "[Machine]\n"
                 "  Name  =   mastodon  \n"
                 "\n"
                 "Empty=\n"
                 "Eq=a=b\n"
                 "\t[Bootstrap]\t\n"
                 "Packages=base openssh\n"
                 "Packages=docker\n"
                 "[Machine]\n"
                 "Name=later",
                 &p);
        assert_int_equal(p.n, 9);
        assert_kv(&p.e[0], "Machine", NULL, NULL, 3);
        assert_kv(&p.e[1], "Machine", "Name", "mastodon", 4);
        assert_kv(&p.e[2], "Machine", "Empty", "", 6);
        assert_kv(&p.e[3], "Machine", "Eq", "a=b", 7);
        assert_kv(&p.e[4], "Bootstrap", NULL, NULL, 8);
        assert_kv(&p.e[5], "Bootstrap", "Packages", "base openssh", 9);
        assert_kv(&p.e[6], "Bootstrap", "Packages", "docker", 10);
        assert_kv(&p.e[7], "Machine", NULL, NULL, 11);
        assert_kv(&p.e[8], "Machine", "Name", "later", 12);
        ini_entries_free(p.e, p.n);
}

static void test_continuation(void **state) {
        (void)state;
        struct parsed p;
        /* The backslash becomes a space; comment lines inside are skipped; an empty line ends it. */
        parse_ok("[S]\n"
                 "A=one \\\n"
                 "# a comment between continued lines\n"
                 "  two\\\n"
                 "; another one\n"
                 "three\n"
                 "B=x\\\n"
                 "\n"
                 "C=literal\\\\\n"
                 "D=last\\",
                 &p);
        assert_int_equal(p.n, 5);
        assert_kv(&p.e[1], "S", "A", "one    two three", 2);
        assert_kv(&p.e[2], "S", "B", "x", 7);
        assert_kv(&p.e[3], "S", "C", "literal\\\\", 9);
        assert_kv(&p.e[4], "S", "D", "last", 10);
        ini_entries_free(p.e, p.n);
}

static void test_crlf_and_empty(void **state) {
        (void)state;
        struct parsed p;
        parse_ok("[S]\r\nK=v\r\n\r\n", &p);
        assert_int_equal(p.n, 2);
        assert_kv(&p.e[1], "S", "K", "v", 2);
        ini_entries_free(p.e, p.n);

        parse_ok("", &p);
        assert_int_equal(p.n, 0);
        ini_entries_free(p.e, p.n);

        /* A buffer that is not NUL-terminated: only len bytes are read. */
        const char buf[] = { '[', 'S', ']', '\n', 'K', '=', 'v', 'X' };
        struct mkm_err err = {};
        assert_int_equal(ini_parse(buf, sizeof buf - 1, "t.ini", &p.e, &p.n, &err), 0);
        assert_int_equal(p.n, 2);
        assert_string_equal(p.e[1].value, "v");
        ini_entries_free(p.e, p.n);
}

static const struct {
        const char *text;
        size_t len;             /* 0: strlen */
        const char *msg;
} bad[] = {
        { "K=v\n", 0, "t.ini:1: assignment outside any section: put a [Section] line above it" },
        { "# c\n\nK=v\n", 0, "t.ini:3: assignment outside any section: put a [Section] line above it" },
        { "[S]\nno equals sign\n", 0, "t.ini:2: expected 'Key=Value', got 'no equals sign'" },
        { "[Machine\n", 0, "t.ini:1: unterminated section header '[Machine': expected ']' at the end" },
        { "[Machine] x\n", 0, "t.ini:1: unterminated section header '[Machine] x': expected ']' at the end" },
        { "[]\n", 0, "t.ini:1: invalid section name '': expected letters, digits, '-', '_' or '.'" },
        { "[Ma chine]\n", 0, "t.ini:1: invalid section name 'Ma chine': expected letters, digits, '-', '_' or '.'" },
        { "[S]\n=value\n", 0, "t.ini:2: [S] missing key name before '='" },
        { "[S]\nMy Key=v\n", 0, "t.ini:2: [S] invalid key name 'My Key': expected letters, digits, '-', '_' or '.'" },
        { "[S]\nK=a\0b\n", 10, "t.ini:2: NUL byte in line" },
        { "[S]\nK=\x1b[31m\n", 0, "t.ini:2: control character 0x1b in line" },
        { "[S]\nK=a\rb\n", 0, "t.ini:2: control character 0x0d in line" },
        { "[S]\nKey \\\nno equals\n", 0, "t.ini:2: expected 'Key=Value', got 'Key  no equals'" },
        { "[S]\nA=1\n\\\nB\n", 0, "t.ini:3: expected 'Key=Value', got 'B'" },
};

static void test_bad(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct mkm_err err = {};
                struct ini_entry *e = (struct ini_entry *)0x1;
                size_t n = 0;
                size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
                int r = ini_parse(bad[i].text, len, "t.ini", &e, &n, &err);
                if (r != -MKM_E_PARSE || strcmp(err.msg, bad[i].msg) != 0)
                        fail_msg("case %zu: r=%d msg='%s', expected '%s'", i, r, err.msg, bad[i].msg);
                assert_ptr_equal(e, (struct ini_entry *)0x1);   /* untouched on failure */
        }
}

/* ini_parse_lenient: every bad line is reported and skipped; the limits still stop. */
static char lenient_log[1024];
static int lenient_cb(void *userdata, int code, unsigned line, const char *msg) {
        (void)userdata;
        size_t used = strlen(lenient_log);
        (void)snprintf(lenient_log + used, sizeof lenient_log - used, "%d %u %s\n", code == -MKM_E_PARSE, line, msg);
        return 0;
}

static void test_lenient(void **state) {
        (void)state;
        struct mkm_err err = {};
        struct ini_entry *e = NULL;
        size_t n = 0;
        const char *text = "[A]\n"
                           "K=1\n"
                           "no equals sign\n"   /* 3: skipped */
                           "[B\n"               /* 4: skipped, and its assignments with it */
                           "L=2\n"
                           "[C]\n"
                           "=3\n"               /* 7: skipped */
                           "M=4\n"
                           "N\x01=5\n";         /* 9: control character */
        lenient_log[0] = 0;
        assert_int_equal(ini_parse_lenient(text, strlen(text), "t.ini", lenient_cb, NULL, &e, &n, &err), 0);
        assert_string_equal(lenient_log, "1 3 t.ini:3: expected 'Key=Value', got 'no equals sign'\n"
                                         "1 4 t.ini:4: unterminated section header '[B': expected ']' at the end\n"
                                         "1 7 t.ini:7: [C] missing key name before '='\n"
                                         "1 9 t.ini:9: control character 0x01 in line\n");
        assert_int_equal(n, 4);         /* [A] K=1 [C] M=4 */
        assert_string_equal(e[1].key, "K");
        assert_string_equal(e[2].section, "C");
        assert_string_equal(e[3].key, "M");
        assert_int_equal(e[3].line, 8);
        ini_entries_free(e, n);
        /* The strict parser stops at the first. */
        assert_int_equal(ini_parse(text, strlen(text), "t.ini", &e, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "t.ini:3: expected 'Key=Value', got 'no equals sign'");

        /* A line beyond the cap is not skipped. */
        size_t big = INI_LINE_MAX + 10;
        _cleanup_free_ char *buf = malloc(big + 8);
        assert_non_null(buf);
        memcpy(buf, "[S]\nK=", 6);
        memset(buf + 6, 'x', big);
        lenient_log[0] = 0;
        assert_int_equal(ini_parse_lenient(buf, big + 6, "t.ini", lenient_cb, NULL, &e, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "t.ini:2: line too long (more than 65536 bytes)");
        assert_string_equal(lenient_log, "");
}

static void test_caps(void **state) {
        (void)state;
        struct mkm_err err = {};
        struct ini_entry *e = NULL;
        size_t n = 0;

        /* One physical line above the cap. */
        size_t big = INI_LINE_MAX + 10;
        _cleanup_free_ char *buf = malloc(big + 8);
        assert_non_null(buf);
        memcpy(buf, "[S]\nK=", 6);
        memset(buf + 6, 'x', big);
        assert_int_equal(ini_parse(buf, big + 6, "t.ini", &e, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "t.ini:2: line too long (more than 65536 bytes)");

        /* A logical line of exactly the cap, alone or joined from two lines, is read; a byte more
         * is not (the canonical recipe rebuild reads is checked against the same bound). */
        for (int joined = 0; joined <= 1; joined++)
                for (size_t extra = 0; extra <= 1; extra++) {
                        size_t logical = INI_LINE_MAX + extra;
                        size_t bytes = logical + (size_t)joined;   /* "\\\n" is two bytes for one blank */
                        _cleanup_free_ char *t = malloc(bytes + 8);
                        assert_non_null(t);
                        memcpy(t, "[S]\n", 4);
                        memset(t + 4, 'z', bytes);
                        memcpy(t + 4, "K=", 2);
                        if (joined)
                                memcpy(t + 4 + 100, "\\\n", 2);
                        int q = ini_parse(t, 4 + bytes, "t.ini", &e, &n, &err);
                        if (extra == 0) {
                                if (q != 0)
                                        fail_msg("%s line of %zu bytes refused: %s", joined ? "a joined" : "a", logical, err.msg);
                                assert_int_equal(n, 2);
                                assert_int_equal(strlen(e[1].value), logical - 2);
                                ini_entries_free(e, n);
                        } else
                                assert_int_equal(q, -MKM_E_PARSE);
                }

        /* Continued lines that together exceed the cap. */
        size_t piece = 1000, pieces = INI_LINE_MAX / piece + 2;
        _cleanup_free_ char *cont = malloc(8 + pieces * (piece + 2));
        assert_non_null(cont);
        size_t o = 0;
        memcpy(cont, "[S]\nK=", 6);
        o = 6;
        for (size_t i = 0; i < pieces; i++) {
                memset(cont + o, 'y', piece);
                o += piece;
                cont[o++] = '\\';
                cont[o++] = '\n';
        }
        assert_int_equal(ini_parse(cont, o, "t.ini", &e, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "t.ini:2: continued line too long (more than 65536 bytes)");

        /* Too many entries. */
        size_t count = INI_ENTRIES_MAX + 1;
        _cleanup_free_ char *many = malloc(4 + count * 4);
        assert_non_null(many);
        memcpy(many, "[S]\n", 4);
        o = 4;
        for (size_t i = 0; i < count; i++) {
                memcpy(many + o, "K=v\n", 4);
                o += 4;
        }
        assert_int_equal(ini_parse(many, o, "t.ini", &e, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "t.ini:10001: too many entries (more than 10000)");

        /* Exactly at the entry cap is fine (the header is an entry too). */
        assert_int_equal(ini_parse(many, 4 + (INI_ENTRIES_MAX - 1) * 4, "t.ini", &e, &n, &err), 0);
        assert_int_equal(n, INI_ENTRIES_MAX);
        ini_entries_free(e, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_basic),
                cmocka_unit_test(test_continuation),
                cmocka_unit_test(test_crlf_and_empty),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_caps),
                cmocka_unit_test(test_lenient),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
