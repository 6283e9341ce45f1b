// Reads /config/message (if present) and tries to write /data/out.txt.
// Exits 0 when the write succeeded, 2 when opening for writing was refused.
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    FILE *in = fopen("/config/message", "r");
    if (in) {
        char line[256] = {0};
        if (fgets(line, sizeof line, in)) {
            printf("read: %s", line);
        }
        fclose(in);
    } else {
        printf("cannot read /config/message: %s\n", strerror(errno));
    }

    FILE *out = fopen("/data/out.txt", "w");
    if (!out) {
        printf("cannot write /data/out.txt: %s\n", strerror(errno));
        return 2;
    }
    fputs("written by wasm\n", out);
    fclose(out);
    printf("wrote /data/out.txt\n");
    return 0;
}
