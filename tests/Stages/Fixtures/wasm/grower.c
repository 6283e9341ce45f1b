// grower MIB: allocates and touches MIB MiB (the linear memory grows), prints "grown", then sleeps
// forever, a second at a time (each sleep a WASI poll_oneoff).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    int mib = argc > 1 ? atoi(argv[1]) : 1;
    for (int m = 0; m < mib; m++) {
        volatile char *block = malloc(1024 * 1024);
        if (block == NULL) {
            return 3;
        }
        for (int i = 0; i < 1024 * 1024; i += 4096) {
            block[i] = (char)i;
        }
    }
    printf("grown\n");
    fflush(stdout);
    struct timespec pause = {1, 0};
    for (;;) {
        nanosleep(&pause, NULL);
    }
}
