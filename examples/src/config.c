// config: prints what the pod gave it: environment variables and a file from a configMap volume.
#include <stdio.h>
#include <stdlib.h>

static void print_env(const char *name) {
    const char *value = getenv(name);
    printf("env %s=%s\n", name, value ? value : "(unset)");
}

int main(int argc, char **argv) {
    print_env("GREETING");
    print_env("MODE");
    const char *path = argc > 1 ? argv[1] : "/config/message";
    FILE *file = fopen(path, "r");
    if (!file) {
        printf("cannot open %s\n", path);
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, file)) {
        printf("file %s: %s", path, line);
    }
    fclose(file);
    printf("\n");
    return 0;
}
