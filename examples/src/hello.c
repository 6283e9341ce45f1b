// hello: prints a greeting (and any arguments) and exits 0.
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from Krustlet for .NET, running WebAssembly in a static pod!\n");
    for (int i = 1; i < argc; i++) {
        printf("argument %d: %s\n", i, argv[i]);
    }
    return 0;
}
