// A WAGI-style CGI handler for the HTTP pod tests: what it does is chosen by the request's path.
//   /echo            method, path, query, CGI variables and headers, then the request body
//   /status?CODE     Status: CODE, body "status CODE"
//   /redirect?URL    Location: URL (no Status: the agent makes it a 302)
//   /big?N           N bytes of body, written 64 KiB at a time, with a 1 ms sleep after every MiB
//   /count           increments a global and prints it (1 every time: no instance is reused)
//   /trap            unreachable after writing headers to its buffer only (stdio not flushed)
//   /exit?CODE       exits with CODE before writing anything
//   /sleep?MS        sleeps MS milliseconds, then answers "slept"
//   /noheaders       a body with no header block
//   /stderr          writes a line to stderr, then answers "ok"
//   /env?NAME        the value of the environment variable NAME
//   /file?PATH       the contents of the file PATH (from a volume)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static int counter;

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v ? v : "";
}

int main(void) {
    const char *path = env("PATH_INFO");
    const char *query = env("QUERY_STRING");
    if (strcmp(path, "/echo") == 0) {
        printf("Content-Type: text/plain\n\n");
        printf("method=%s\npath=%s\nquery=%s\n", env("REQUEST_METHOD"), path, query);
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "HTTP_", 5) == 0 || strncmp(*e, "CONTENT_", 8) == 0 || strncmp(*e, "SERVER_", 7) == 0 ||
                strncmp(*e, "REMOTE_ADDR", 11) == 0 || strncmp(*e, "GATEWAY_", 8) == 0 || strncmp(*e, "SCRIPT_NAME", 11) == 0) {
                printf("%s\n", *e);
            }
        }
        printf("body=");
        char buffer[65536];
        size_t n;
        while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
            fwrite(buffer, 1, n, stdout);
        }
        return 0;
    }
    if (strcmp(path, "/status") == 0) {
        printf("Status: %s Custom Reason\nContent-Type: text/plain\n\nstatus %s\n", query, query);
        return 0;
    }
    if (strcmp(path, "/redirect") == 0) {
        printf("Location: %s\n\n", query);
        return 0;
    }
    if (strcmp(path, "/big") == 0) {
        long total = atol(query);
        printf("Content-Type: application/octet-stream\r\n\r\n");
        static char chunk[65536];
        for (size_t i = 0; i < sizeof chunk; i++) {
            chunk[i] = (char)('a' + i % 26);
        }
        for (long sent = 0; sent < total;) {
            long n = total - sent < (long)sizeof chunk ? total - sent : (long)sizeof chunk;
            fwrite(chunk, 1, (size_t)n, stdout);
            sent += n;
            if (sent % (1024 * 1024) == 0) {
                fflush(stdout);
                struct timespec t = {0, 1000000L};
                nanosleep(&t, NULL); // the response spans polls: it is streamed
            }
        }
        return 0;
    }
    if (strcmp(path, "/count") == 0) {
        counter++;
        printf("Content-Type: text/plain\n\n%d\n", counter);
        return 0;
    }
    if (strcmp(path, "/trap") == 0) {
        printf("Content-Type: text/plain\n\nabout to trap\n");
        __builtin_trap();
    }
    if (strcmp(path, "/exit") == 0) {
        exit(atoi(query));
    }
    if (strcmp(path, "/sleep") == 0) {
        long ms = atol(query);
        struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
        printf("Content-Type: text/plain\n\nslept\n");
        return 0;
    }
    if (strcmp(path, "/noheaders") == 0) {
        printf("just a body, no headers\n");
        return 0;
    }
    if (strcmp(path, "/stderr") == 0) {
        fprintf(stderr, "a line on stderr for %s\n", env("REMOTE_ADDR"));
        printf("Content-Type: text/plain\n\nok\n");
        return 0;
    }
    if (strcmp(path, "/env") == 0) {
        printf("Content-Type: text/plain\n\n%s\n", env(query));
        return 0;
    }
    if (strcmp(path, "/file") == 0) {
        FILE *f = fopen(query, "r");
        if (!f) {
            printf("Status: 404 Not Found\nContent-Type: text/plain\n\nno file %s\n", query);
            return 0;
        }
        printf("Content-Type: text/plain\n\n");
        char buffer[4096];
        size_t n;
        while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) {
            fwrite(buffer, 1, n, stdout);
        }
        fclose(f);
        return 0;
    }
    printf("Status: 404 Not Found\nContent-Type: text/plain\n\nno route %s\n", path);
    return 0;
}
