// Allocates and touches memory 1 MiB at a time until allocation fails, then reports how far it got.
// Exits 3 when an allocation is refused (the memory limit held), 0 if it reached 1 GiB.
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    for (int mib = 0; mib < 1024; mib++) {
        volatile char *block = malloc(1024 * 1024);
        if (block == NULL) {
            printf("allocation refused after %d MiB\n", mib);
            return 3;
        }
        for (int i = 0; i < 1024 * 1024; i += 4096) {
            block[i] = (char)i;
        }
    }
    printf("allocated 1024 MiB\n");
    return 0;
}
