// crashloop: prints a line and fails, so restartPolicy Always restarts it with CrashLoopBackOff.
#include <stdio.h>

int main(void) {
    printf("starting up... and failing with exit code 1\n");
    return 1;
}
