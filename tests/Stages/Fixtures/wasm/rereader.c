// rereader SIGNALS FILE...: prints every FILE's contents ("ROUND 0 path=content" or "ROUND 0 path
// missing: why"), creates SIGNALS/ready, waits (yielding) until SIGNALS/go exists, prints every FILE
// again as ROUND 1 and exits 0. Each round also prints the variable FROM_CM. The test changes the volumes' sources between the rounds.
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void round_of(int round, int argc, char **argv) {
    const char *env = getenv("FROM_CM");
    printf("ROUND %d ENV FROM_CM=%s\n", round, env ? env : "(unset)");
    for (int i = 2; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            printf("ROUND %d %s missing: %s\n", round, argv[i], strerror(errno));
            continue;
        }
        char content[4096] = {0};
        size_t n = fread(content, 1, sizeof content - 1, f);
        fclose(f);
        printf("ROUND %d %s=", round, argv[i]);
        for (size_t j = 0; j < n; j++) {
            if (content[j] == '\n') {
                fputs("\\n", stdout);
            } else {
                putchar(content[j]);
            }
        }
        putchar('\n');
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        return 2;
    }
    char ready[512], go[512];
    snprintf(ready, sizeof ready, "%s/ready", argv[1]);
    snprintf(go, sizeof go, "%s/go", argv[1]);
    round_of(0, argc, argv);
    FILE *r = fopen(ready, "w");
    if (!r) {
        return 3;
    }
    fclose(r);
    while (access(go, F_OK) != 0) {
        sched_yield();
    }
    round_of(1, argc, argv);
    return 0;
}
