// Reports what the container sees: every environment variable, then for each argument either the
// contents of that file ("path") or the result of writing to it ("+path").
#include <errno.h>
#include <stdio.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    for (char **e = environ; *e; e++) {
        printf("ENV %s\n", *e);
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '+') {
            FILE *f = fopen(argv[i] + 1, "w");
            if (f) {
                fputs("written\n", f);
                fclose(f);
                printf("WRITE %s ok\n", argv[i] + 1);
            } else {
                printf("WRITE %s refused: %s\n", argv[i] + 1, strerror(errno));
            }
            continue;
        }
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            printf("FILE %s missing: %s\n", argv[i], strerror(errno));
            continue;
        }
        char content[4096] = {0};
        size_t n = fread(content, 1, sizeof content - 1, f);
        fclose(f);
        printf("FILE %s=", argv[i]);
        for (size_t j = 0; j < n; j++) {
            if (content[j] == '\n') {
                fputs("\\n", stdout);
            } else {
                putchar(content[j]);
            }
        }
        putchar('\n');
    }
    return 0;
}
