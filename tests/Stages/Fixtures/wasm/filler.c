// filler PATH BYTES: writes BYTES bytes to PATH in 4 KiB chunks, then prints "wrote N" and exits 0; a
// write that fails prints "refused after N: <why>" and exits 1.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        return 2;
    }
    long total = atol(argv[2]);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        printf("refused after 0: %s\n", strerror(errno));
        return 1;
    }
    setvbuf(f, NULL, _IONBF, 0);
    static char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    long written = 0;
    while (written < total) {
        size_t n = total - written < (long)sizeof chunk ? (size_t)(total - written) : sizeof chunk;
        size_t done = fwrite(chunk, 1, n, f);
        written += (long)done;
        if (done < n) {
            printf("refused after %ld: %s\n", written, strerror(errno));
            fclose(f);
            return 1;
        }
    }
    if (fclose(f) != 0) {
        printf("refused after %ld: %s\n", written, strerror(errno));
        return 1;
    }
    printf("wrote %ld\n", written);
    return 0;
}
