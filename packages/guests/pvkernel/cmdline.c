/*
 * The kernel command line: /chosen/bootargs (xl.cfg cmdline= / extra=).
 * Words separated by spaces; `key=value` words are settings drivers read
 * with cmdline_value(), the others (cmdline_word()) name the workload and
 * its arguments: "ping 10.0.0.2 ip=10.0.0.1".
 */
#include <string.h>
#include "core.h"

#define CMDLINE_MAX 1024
#define MAX_WORDS 32

static char line[CMDLINE_MAX];      /* as given */
static char words[CMDLINE_MAX];     /* the same, each word NUL-terminated */
static const char *word[MAX_WORDS];
static int nr_words;

void cmdline_set(const char *s, size_t len)
{
    size_t n = strnlen(s, len);
    if (n >= CMDLINE_MAX) n = CMDLINE_MAX - 1;
    memcpy(line, s, n);
    line[n] = '\0';
    memcpy(words, line, n + 1);
    nr_words = 0;
    for (char *p = words; *p;) {
        while (*p == ' ' || *p == '\t') *p++ = '\0';
        if (!*p) break;
        if (nr_words < MAX_WORDS) word[nr_words++] = p;
        while (*p && *p != ' ' && *p != '\t') p++;
    }
}

const char *kernel_cmdline(void) { return line; }

const char *cmdline_value(const char *key)
{
    size_t k = strlen(key);
    const char *found = NULL;
    for (int i = 0; i < nr_words; i++)
        if (!strncmp(word[i], key, k) && word[i][k] == '=') found = word[i] + k + 1;   /* the last one wins, as in Linux */
    return found;
}

const char *cmdline_word(int i)
{
    for (int w = 0; w < nr_words; w++) {
        if (strchr(word[w], '=')) continue;
        if (i-- == 0) return word[w];
    }
    return NULL;
}
