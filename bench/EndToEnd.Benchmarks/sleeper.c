// A long-running guest for the end-to-end benchmarks: sleeps, wakes, counts, sleeps again.
// argv[1]: milliseconds between wake-ups (0: return at once, the floor's run);
// argv[2]: wake-ups before returning (absent or negative: forever);
// argv[3]: present: print one line to stdout at every wake-up (a ticker).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long period = argc > 1 ? atol(argv[1]) : 0;
    long wakes = argc > 2 ? atol(argv[2]) : -1;
    volatile unsigned long counter = 0;
    struct timespec pause = { period / 1000, (period % 1000) * 1000000L };
    while (period > 0 && wakes != 0) {
        nanosleep(&pause, NULL);
        counter++;
        if (argc > 3) {
            printf("tick %lu\n", counter);
            fflush(stdout);
        }
        if (wakes > 0) {
            wakes--;
        }
    }
    return 0;
}
