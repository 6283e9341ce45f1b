// sleeper SECONDS COUNT [YIELDS]: COUNT times, sleeps SECONDS with nanosleep (a WASI poll_oneoff on a
// clock) and prints "slept N"; then calls sched_yield YIELDS times and prints "yielded"; exits 0.
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 1;
    int count = argc > 2 ? atoi(argv[2]) : 1;
    int yields = argc > 3 ? atoi(argv[3]) : 0;
    struct timespec pause = {seconds, 0};
    for (int i = 0; i < count; i++) {
        nanosleep(&pause, NULL);
        printf("slept %d\n", i);
        fflush(stdout);
    }
    for (int i = 0; i < yields; i++) {
        sched_yield();
    }
    if (yields > 0) {
        printf("yielded\n");
    }
    return 0;
}
