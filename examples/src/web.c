// An HTTP handler, WAGI-style: the agent runs a fresh instance of it for every request, with the
// request as CGI/1.1 variables in the environment and its body on stdin; it answers on stdout with
// header lines, a blank line, then the body.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
    const char *value = getenv(name);
    return value ? value : "";
}

int main(void) {
    const char *method = env("REQUEST_METHOD");
    const char *path = env("PATH_INFO");
    if (strcmp(path, "/healthz") == 0) {
        printf("Content-Type: text/plain\n\nok\n");
        return 0;
    }
    if (strcmp(path, "/") != 0 && strcmp(path, "/hello") != 0) {
        printf("Status: 404 Not Found\nContent-Type: text/plain\n\nno page at %s\n", path);
        return 0;
    }
    printf("Content-Type: text/plain\n\n");
    printf("Hello from a WebAssembly HTTP handler: %s %s", method, path);
    if (*env("QUERY_STRING")) {
        printf("?%s", env("QUERY_STRING"));
    }
    printf(" (%s)\n", env("GREETING"));
    if (strcmp(method, "POST") == 0) {
        printf("you sent: ");
        char buffer[4096];
        size_t n;
        while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
            fwrite(buffer, 1, n, stdout);
        }
        printf("\n");
    }
    return 0;
}
