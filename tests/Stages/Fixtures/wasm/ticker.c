// Writes "tick N" for N in 0..argv[1]-1 (5 by default), one line every 50 ms, flushing each, then exits 0.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    int ticks = argc > 1 ? atoi(argv[1]) : 5;
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (int i = 0; i < ticks; i++) {
        printf("tick %d\n", i);
        fflush(stdout);
        nanosleep(&pause, NULL);
    }
    return 0;
}
