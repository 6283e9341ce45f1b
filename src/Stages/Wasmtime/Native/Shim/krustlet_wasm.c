// The native half of the guest executor (docs/architecture.md, "The executor").
//
// Everything Wasmtime calls while a guest runs inside wasmtime_call_future_poll runs on the guest's
// fiber stack, and .NET cannot run managed code there (a garbage collection then corrupts the
// polling thread: tests/FiberProbe reproduces it). So the host functions a parked guest needs are
// here, in C: they only read and write guest memory and one mailbox per guest, and .NET reads the
// mailbox between polls, on ordinary threads.
//
// - poll_oneoff (shadowing wasi_snapshot_preview1's): clock subscriptions park the guest; the mailbox
//   says for how long, .NET arms a timer and marks the mailbox woken when it fires.
// - sched_yield: parks the guest until .NET has put it at the back of the run queue.
// - stdout/stderr: appended to per-guest buffers that .NET drains after every poll.
// - a host memory creator for the component engine, which counts every linear memory's bytes into the
//   usage of the run that created it (the kubelet API's stats; modules are counted from their mailbox).
//
// No libwasmtime header is needed: the few C API functions used are handed over as pointers by
// kr_init, and the structures below are the C API 50 layouts (wasmtime_val_t, wasmtime_extern_t,
// wasmtime_async_continuation_t). Built by Krustlet.Stages.csproj with the host clang.

#define _DEFAULT_SOURCE // MAP_ANONYMOUS, MAP_NORESERVE

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#define KR_EXPORT __attribute__((visibility("default")))

// ---- C API 50 layouts ----
typedef struct {
    uint8_t kind;
    uint8_t pad[7];
    union {
        int32_t i32;
        int64_t i64;
        uint8_t raw[24];
    } of;
} kr_val;

typedef struct {
    uint8_t kind;
    uint8_t pad[7];
    uint8_t of[24]; // wasmtime_memory_t lives here when kind is memory
} kr_extern;

#define KR_EXTERN_MEMORY 3
#define KR_VAL_I32 0

typedef bool (*kr_continuation_fn)(void *env);
typedef struct {
    kr_continuation_fn callback;
    void *env;
    void (*finalizer)(void *);
} kr_continuation;

// The C API functions the shim calls, resolved by .NET from the same libwasmtime it loaded.
typedef struct {
    bool (*caller_export_get)(void *caller, const char *name, size_t len, kr_extern *item);
    void *(*caller_context)(void *caller);
    uint8_t *(*memory_data)(void *context, const void *memory);
    size_t (*memory_data_size)(void *context, const void *memory);
    void *(*context_get_data)(void *context);
    void (*engine_increment_epoch)(void *engine);
    void *(*error_new)(const char *message); // wasmtime_error_new
} kr_api;

static kr_api api;

// ---- the mailbox (mirrored by GuestMailbox in NativeShim.cs; keep both in step) ----
enum {
    KR_RUNNING = 0,  // running, or yielded at an epoch deadline
    KR_SLEEPING = 1, // parked in poll_oneoff for sleep_ns
    KR_YIELDING = 2, // parked in sched_yield
    KR_WOKEN = 3,    // .NET says: the next poll continues the guest
};

typedef struct {
    uint8_t *data;
    size_t length;
    size_t capacity;
    uint64_t dropped; // bytes not kept because the buffer was full
} kr_output;

typedef struct {
    void *user;            // opaque to the shim: a GCHandle of the .NET store
    int32_t state;         // one of KR_*
    int32_t flags;         // KR_FLAG_*
    int64_t sleep_ns;      // set with KR_SLEEPING: how long the guest asked to sleep
    int64_t mono_base_ns;  // host CLOCK_MONOTONIC when the guest's WASI clocks started
    uint64_t parks;        // how many times the guest parked (for metrics)
    uint64_t memory_bytes; // the caller's "memory" export at its last poll_oneoff/sched_yield (for stats)
    kr_output out[2];      // stdout, stderr
    void *engine;          // the store's engine (wasm_engine_t), for KR_FLAG_YIELD_AT_HIGH_WATER
    int32_t high_water_hit; // set when the shim ended the slice early; .NET clears it at each drain
    int32_t lock;           // held while out[] is appended to or drained (see kr_write_stdout)
} kr_guest;

// stdout reaching KR_HIGH_WATER bytes ends the guest's time slice early (the engine's epoch is
// advanced, so it yields at its next epoch check): .NET drains and writes the bytes on before the guest
// goes on. An HTTP handler's response streams with backpressure this way instead of buffering whole.
#define KR_FLAG_YIELD_AT_HIGH_WATER 1
#define KR_HIGH_WATER (256u * 1024u)

// Bytes one stream may buffer between two drains (a drain follows every poll, at most one time slice
// apart). A guest that writes more within one slice loses the excess, counted in `dropped`.
#define KR_OUTPUT_LIMIT (16u * 1024u * 1024u)

KR_EXPORT int32_t kr_init(const kr_api *functions, size_t size) {
    if (functions == NULL || size != sizeof(kr_api)) {
        return -1;
    }
    api = *functions;
    return (int32_t)sizeof(kr_guest);
}

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

KR_EXPORT void kr_guest_clock_started(kr_guest *guest) {
    guest->mono_base_ns = now_ns(CLOCK_MONOTONIC);
}

KR_EXPORT void kr_guest_release(kr_guest *guest) {
    for (int i = 0; i < 2; i++) {
        free(guest->out[i].data);
        guest->out[i].data = NULL;
        guest->out[i].length = guest->out[i].capacity = 0;
    }
}

// ---- output ----
static ptrdiff_t append(kr_output *out, const uint8_t *bytes, size_t length) {
    if (length == 0) {
        return 0;
    }
    size_t room = out->length < KR_OUTPUT_LIMIT ? KR_OUTPUT_LIMIT - out->length : 0;
    size_t keep = length < room ? length : room;
    if (out->length + keep > out->capacity) {
        size_t capacity = out->capacity == 0 ? 4096 : out->capacity;
        while (capacity < out->length + keep) {
            capacity *= 2;
        }
        uint8_t *grown = realloc(out->data, capacity);
        if (grown == NULL) {
            keep = 0;
        } else {
            out->data = grown;
            out->capacity = capacity;
        }
    }
    if (keep > 0) {
        memcpy(out->data + out->length, bytes, keep);
        out->length += keep;
    }
    out->dropped += length - keep;
    return (ptrdiff_t)length; // Wasmtime refuses partial writes; what was not kept is counted
}

// Wasmtime's WASI preview 1 writes a custom stdout/stderr from a background task on its own Tokio
// thread while the guest's fd_write waits (its future is pending, so the executor may drain between two
// polls at that very moment): appends and drains take the mailbox's lock.
static void lock_output(kr_guest *guest) {
    while (__atomic_exchange_n(&guest->lock, 1, __ATOMIC_ACQUIRE) != 0) {
        while (__atomic_load_n(&guest->lock, __ATOMIC_RELAXED) != 0) {
            __builtin_ia32_pause();
        }
    }
}

static void unlock_output(kr_guest *guest) {
    __atomic_store_n(&guest->lock, 0, __ATOMIC_RELEASE);
}

KR_EXPORT ptrdiff_t kr_write_stdout(void *data, const uint8_t *bytes, size_t length) {
    kr_guest *guest = data;
    lock_output(guest);
    ptrdiff_t wrote = append(&guest->out[0], bytes, length);
    unlock_output(guest);
    if ((guest->flags & KR_FLAG_YIELD_AT_HIGH_WATER) && guest->out[0].length >= KR_HIGH_WATER &&
        !guest->high_water_hit && guest->engine != NULL) {
        guest->high_water_hit = 1;
        api.engine_increment_epoch(guest->engine); // an atomic add: safe from here
    }
    return wrote;
}

KR_EXPORT ptrdiff_t kr_write_stderr(void *data, const uint8_t *bytes, size_t length) {
    kr_guest *guest = data;
    lock_output(guest);
    ptrdiff_t wrote = append(&guest->out[1], bytes, length);
    unlock_output(guest);
    return wrote;
}

KR_EXPORT void kr_noop_finalizer(void *data) {
    (void)data;
}

// ---- parking ----
static bool continue_when_woken(void *env) {
    kr_guest *guest = env;
    if (__atomic_load_n(&guest->state, __ATOMIC_ACQUIRE) != KR_WOKEN) {
        return false;
    }
    __atomic_store_n(&guest->state, KR_RUNNING, __ATOMIC_RELEASE);
    return true;
}

static bool done_at_once(void *env) {
    (void)env;
    return true;
}

static kr_guest *guest_of(void *caller) {
    return api.context_get_data(api.caller_context(caller));
}

// The size of the caller's linear memory now, kept for the kubelet API's stats; .NET reads it between polls.
static void record_memory(kr_guest *guest, void *context, const kr_extern *memory) {
    __atomic_store_n(&guest->memory_bytes, (uint64_t)api.memory_data_size(context, memory->of), __ATOMIC_RELAXED);
}

static void answer(kr_val *results, size_t nresults, kr_continuation *continuation, int32_t errno_value) {
    if (nresults > 0) {
        results[0].kind = KR_VAL_I32;
        results[0].of.i64 = 0;
        results[0].of.i32 = errno_value;
    }
    continuation->callback = done_at_once;
    continuation->env = NULL;
    continuation->finalizer = kr_noop_finalizer;
}

static void park(kr_guest *guest, int32_t state, int64_t sleep_ns, kr_val *results, size_t nresults,
                 kr_continuation *continuation) {
    answer(results, nresults, continuation, 0);
    guest->sleep_ns = sleep_ns;
    guest->parks++;
    __atomic_store_n(&guest->state, state, __ATOMIC_RELEASE);
    continuation->callback = continue_when_woken;
    continuation->env = guest;
}

// WASI preview 1 constants (witx: wasi_snapshot_preview1).
#define WASI_ERRNO_FAULT 21
#define WASI_ERRNO_INVAL 28
#define WASI_CLOCK_REALTIME 0
#define WASI_CLOCK_MONOTONIC 1
#define WASI_EVENTTYPE_CLOCK 0
#define WASI_EVENTTYPE_FD_READ 1
#define WASI_EVENTTYPE_FD_WRITE 2
#define WASI_SUBCLOCK_ABSTIME 1
#define SUBSCRIPTION_SIZE 48
#define EVENT_SIZE 32

static uint64_t read_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t read_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t read_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static void write_event(uint8_t *event, uint64_t userdata, uint8_t type) {
    memset(event, 0, EVENT_SIZE);
    memcpy(event, &userdata, 8); // userdata; error (u16 at 8) stays 0
    event[10] = type;            // type; fd_readwrite (nbytes, flags) stays 0
}

// How long until a clock subscription is due, in nanoseconds (negative when past); false for a clock
// WASI has here but a guest cannot sleep on (process and thread CPU time).
static bool clock_relative(const uint8_t *sub, const kr_guest *guest, int64_t *relative) {
    uint32_t clock = read_u32(sub + 16);
    uint64_t timeout = read_u64(sub + 24);
    uint16_t flags = read_u16(sub + 40);
    int64_t t = timeout > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)timeout;
    if (clock != WASI_CLOCK_REALTIME && clock != WASI_CLOCK_MONOTONIC) {
        return false;
    }
    if (!(flags & WASI_SUBCLOCK_ABSTIME)) {
        *relative = t;
    } else if (clock == WASI_CLOCK_REALTIME) {
        *relative = t - now_ns(CLOCK_REALTIME);
    } else {
        // Wasmtime's monotonic clock counts from when the guest's WASI context was made.
        *relative = t - (now_ns(CLOCK_MONOTONIC) - guest->mono_base_ns);
    }
    return true;
}

// poll_oneoff(in, out, nsubscriptions, nevents_out) -> errno.
// Clock subscriptions park the guest until the earliest deadline; the subscriptions due then are the
// events. A guest here has only files, a closed stdin and the log streams as descriptors, none of which
// ever blocks, so fd_read/fd_write subscriptions are reported ready at once (with nbytes 0): the guest's
// next read or write gets the real answer from WASI.
KR_EXPORT void kr_poll_oneoff(void *env, void *caller, const kr_val *args, size_t nargs, kr_val *results,
                              size_t nresults, void **trap, kr_continuation *continuation) {
    (void)env;
    (void)trap;
    if (nargs != 4) {
        answer(results, nresults, continuation, WASI_ERRNO_INVAL);
        return;
    }
    uint32_t in = (uint32_t)args[0].of.i32, out = (uint32_t)args[1].of.i32;
    uint32_t count = (uint32_t)args[2].of.i32, nevents = (uint32_t)args[3].of.i32;
    kr_extern memory;
    if (!api.caller_export_get(caller, "memory", 6, &memory) || memory.kind != KR_EXTERN_MEMORY) {
        answer(results, nresults, continuation, WASI_ERRNO_FAULT);
        return;
    }
    void *context = api.caller_context(caller);
    uint8_t *data = api.memory_data(context, memory.of);
    uint64_t size = api.memory_data_size(context, memory.of);
    if (count == 0) {
        answer(results, nresults, continuation, WASI_ERRNO_INVAL);
        return;
    }
    if ((uint64_t)in + (uint64_t)count * SUBSCRIPTION_SIZE > size ||
        (uint64_t)out + (uint64_t)count * EVENT_SIZE > size || (uint64_t)nevents + 4 > size) {
        answer(results, nresults, continuation, WASI_ERRNO_FAULT);
        return;
    }

    kr_guest *guest = guest_of(caller);
    record_memory(guest, context, &memory);
    uint32_t descriptors = 0;
    int64_t earliest = INT64_MAX;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *sub = data + in + (uint64_t)i * SUBSCRIPTION_SIZE;
        uint8_t tag = sub[8];
        if (tag == WASI_EVENTTYPE_CLOCK) {
            int64_t relative;
            if (!clock_relative(sub, guest, &relative)) {
                answer(results, nresults, continuation, WASI_ERRNO_INVAL); // process/thread CPU clocks
                return;
            }
            earliest = relative < earliest ? relative : earliest;
        } else if (tag == WASI_EVENTTYPE_FD_READ || tag == WASI_EVENTTYPE_FD_WRITE) {
            descriptors++;
        } else {
            answer(results, nresults, continuation, WASI_ERRNO_INVAL);
            return;
        }
    }

    uint32_t ready = 0;
    if (earliest < 0) {
        earliest = 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *sub = data + in + (uint64_t)i * SUBSCRIPTION_SIZE;
        uint8_t tag = sub[8];
        int64_t relative = 0;
        // With a descriptor ready, only descriptors are events; otherwise the clocks due first are.
        bool due = descriptors > 0 ? tag != WASI_EVENTTYPE_CLOCK
                                   : clock_relative(sub, guest, &relative) && relative <= earliest;
        if (due) {
            write_event(data + out + (uint64_t)ready * EVENT_SIZE, read_u64(sub), tag);
            ready++;
        }
    }
    memcpy(data + nevents, &ready, 4);
    if (descriptors == 0 && earliest > 0) {
        park(guest, KR_SLEEPING, earliest, results, nresults, continuation);
    } else {
        answer(results, nresults, continuation, 0);
    }
}

// sched_yield() -> errno: parks until .NET has queued the guest again behind the others.
KR_EXPORT void kr_sched_yield(void *env, void *caller, const kr_val *args, size_t nargs, kr_val *results,
                              size_t nresults, void **trap, kr_continuation *continuation) {
    (void)env;
    (void)args;
    (void)nargs;
    (void)trap;
    kr_guest *guest = guest_of(caller);
    kr_extern memory;
    if (api.caller_export_get(caller, "memory", 6, &memory) && memory.kind == KR_EXTERN_MEMORY) {
        record_memory(guest, api.caller_context(caller), &memory);
    }
    park(guest, KR_YIELDING, 0, results, nresults, continuation);
}

// ---- linear memories of the component engine, counted per run ----
//
// Components run on the Wasmtime.Dotnet engine, whose C API gives no way to reach a component's core
// memories. That engine is given this memory creator (wasmtime_config_host_memory_creator_set), so
// every linear memory it makes is made here: reserved as one inaccessible mapping (the memory's
// reservation plus its guard region, as Wasmtime asks) and made accessible as it grows. Each memory
// adds its size to the kr_usage that was current on the creating thread (a component's run instantiates
// and runs on its own thread, and sets its usage first); growth and the memory's end update the same
// usage, from whatever thread.
typedef struct {
    uint64_t bytes; // the sum of the live memories' sizes
    int32_t refs;   // the run's reference and one per live memory
} kr_usage;

static _Thread_local kr_usage *current_usage;

KR_EXPORT kr_usage *kr_usage_new(void) {
    kr_usage *usage = calloc(1, sizeof(kr_usage));
    if (usage != NULL) {
        usage->refs = 1;
    }
    return usage;
}

KR_EXPORT uint64_t kr_usage_bytes(const kr_usage *usage) {
    return __atomic_load_n(&usage->bytes, __ATOMIC_RELAXED);
}

KR_EXPORT void kr_usage_release(kr_usage *usage) {
    if (usage != NULL && __atomic_sub_fetch(&usage->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(usage);
    }
}

// The usage memories created on this thread count into from now on (NULL: none).
KR_EXPORT void kr_usage_enter(kr_usage *usage) {
    current_usage = usage;
}

typedef struct {
    uint8_t *base;
    size_t size;       // accessible bytes, the memory's size
    size_t capacity;   // bytes it may grow to without moving (its reservation)
    size_t mapped;     // the whole mapping: capacity and guard
    size_t accessible; // size rounded up to pages: what is mapped read-write
    kr_usage *usage;
} kr_memory;

typedef uint8_t *(*kr_memory_get_fn)(void *env, size_t *byte_size, size_t *byte_capacity);
typedef void *(*kr_memory_grow_fn)(void *env, size_t new_size);
typedef struct {
    void *env;
    kr_memory_get_fn get_memory;
    kr_memory_grow_fn grow_memory;
    void (*finalizer)(void *);
} kr_linear_memory; // wasmtime_linear_memory_t

// A memory without a reservation (the compact engine's dynamic memories) is reserved up to its
// maximum, never more than this: the store's limits stop it far sooner (Wasm:MaxContainerMemory).
#define KR_DYNAMIC_RESERVATION_CAP ((size_t)64 << 30)

static size_t page_round(size_t bytes) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) / page * page;
}

static uint8_t *memory_get(void *env, size_t *byte_size, size_t *byte_capacity) {
    kr_memory *memory = env;
    *byte_size = memory->size;
    *byte_capacity = memory->capacity;
    return memory->base;
}

static void *memory_grow(void *env, size_t new_size) {
    kr_memory *memory = env;
    if (new_size > memory->capacity) {
        return api.error_new("linear memory cannot grow past its reservation");
    }
    size_t accessible = page_round(new_size);
    if (accessible > memory->accessible) {
        if (mprotect(memory->base + memory->accessible, accessible - memory->accessible, PROT_READ | PROT_WRITE) != 0) {
            return api.error_new("mprotect failed growing a linear memory");
        }
        memory->accessible = accessible;
    }
    if (memory->usage != NULL && new_size > memory->size) {
        __atomic_add_fetch(&memory->usage->bytes, (uint64_t)(new_size - memory->size), __ATOMIC_RELAXED);
    }
    memory->size = new_size;
    return NULL;
}

static void memory_free(void *env) {
    kr_memory *memory = env;
    munmap(memory->base, memory->mapped);
    if (memory->usage != NULL) {
        __atomic_sub_fetch(&memory->usage->bytes, (uint64_t)memory->size, __ATOMIC_RELAXED);
        kr_usage_release(memory->usage);
    }
    free(memory);
}

KR_EXPORT void *kr_new_memory(void *env, const void *type, size_t minimum, size_t maximum,
                              size_t reserved_size_in_bytes, size_t guard_size_in_bytes, kr_linear_memory *memory_ret) {
    (void)env;
    (void)type;
    size_t capacity = reserved_size_in_bytes != 0 ? reserved_size_in_bytes
                      : maximum < KR_DYNAMIC_RESERVATION_CAP ? maximum
                                                              : KR_DYNAMIC_RESERVATION_CAP;
    capacity = page_round(capacity < minimum ? minimum : capacity);
    size_t mapped = capacity + page_round(guard_size_in_bytes);
    kr_memory *memory = calloc(1, sizeof(kr_memory));
    if (memory == NULL) {
        return api.error_new("out of memory creating a linear memory");
    }
    void *base = mapped == 0 ? NULL : mmap(NULL, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        free(memory);
        return api.error_new("mmap failed reserving a linear memory");
    }
    memory->base = base;
    memory->capacity = capacity;
    memory->mapped = mapped;
    void *failed = memory_grow(memory, minimum); // counted once usage is set, below
    if (failed != NULL) {
        munmap(base, mapped);
        free(memory);
        return failed;
    }
    kr_usage *usage = current_usage;
    if (usage != NULL) {
        __atomic_add_fetch(&usage->refs, 1, __ATOMIC_ACQ_REL);
        __atomic_add_fetch(&usage->bytes, (uint64_t)memory->size, __ATOMIC_RELAXED);
        memory->usage = usage;
    }
    memory_ret->env = memory;
    memory_ret->get_memory = memory_get;
    memory_ret->grow_memory = memory_grow;
    memory_ret->finalizer = memory_free;
    return NULL;
}
