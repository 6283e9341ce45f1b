/* The "hello" HTTP handler of the #15 benchmark, a CGI program: reads nothing, writes a CGI response
 * (one header, a blank line, the body). Built twice at run time by the harness: clang --target=wasm32-wasi
 * -O2 (the agent's handler module) and clang -O2 (the process-per-request CGI baseline). */
#include <stdio.h>

int main(void) {
    static const char response[] = "Content-Type: text/plain\r\n\r\nhello\n";
    fwrite(response, 1, sizeof response - 1, stdout);
    return 0;
}
