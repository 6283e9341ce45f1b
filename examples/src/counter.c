// counter: runs until stopped, printing a numbered line every second.
#include <stdio.h>
#include <unistd.h>

int main(void) {
    for (unsigned long n = 1;; n++) {
        printf("count %lu\n", n);
        fflush(stdout);
        sleep(1);
    }
}
