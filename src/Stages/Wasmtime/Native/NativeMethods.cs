using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Krustlet.Stages.Wasmtime.Native;

// The C API of libwasmtime 50 (the library the Wasmtime NuGet package ships, resolved by the same name).
// Every signature and ownership rule comes from crates/c-api/include of bytecodealliance/wasmtime (headers
// unchanged from v48.0.0 to the 49.0.0-dev main used for this binding) and was cross-checked against
// `nm -D` of the shipped library. Where a header and the library disagree the library wins; each such
// case is marked "LIBRARY:". Nothing outside this folder sees these pointers.

/// <summary>wasmtime_val_t: a kind byte, padding, then a 24-byte union (32 bytes, 8-aligned on x64).</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct WasmtimeVal
{
    public const byte KindI32 = 0;
    public const byte KindI64 = 1;

    [FieldOffset(0)] public byte Kind;
    [FieldOffset(8)] public int I32;
    [FieldOffset(8)] public long I64;
}

/// <summary>wasmtime_func_t / wasmtime_instance_t: a store id and one private word (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct WasmtimeStoreItem
{
    public ulong StoreId;
    public nuint Private;
}

/// <summary>wasmtime_extern_t: a kind byte, then a 24-byte union (32 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct WasmtimeExtern
{
    public const byte KindFunc = 0;
    public const byte KindMemory = 3;

    [FieldOffset(0)] public byte Kind;
    [FieldOffset(8)] public WasmtimeStoreItem Func;
    [FieldOffset(8)] public WasmtimeMemory Memory;
}

/// <summary>wasmtime_memory_t: store id and two private 32-bit words, padded to 24 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
internal struct WasmtimeMemory
{
    [FieldOffset(0)] public ulong StoreId;
}

/// <summary>wasm_byte_vec_t (also wasm_name_t, wasm_message_t).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct WasmByteVec
{
    public nuint Size;
    public byte* Data;
}

/// <summary>wasm_valtype_vec_t.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct WasmValtypeVec
{
    public nuint Size;
    public nint* Data;
}

/// <summary>wasmtime_async_continuation_t: polled by Wasmtime until it returns true; finalizer runs on drop.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct WasmtimeAsyncContinuation
{
    public delegate* unmanaged[Cdecl]<nint, byte> Callback;
    public nint Env;
    public delegate* unmanaged[Cdecl]<nint, void> Finalizer;
}

internal static unsafe partial class NativeMethods
{
    private const string Library = "wasmtime";

    // ---- errors and traps (error.h, trap.h, wasm.h) ----
    [LibraryImport(Library)] public static partial void wasmtime_error_delete(nint error);
    [LibraryImport(Library)] public static partial void wasmtime_error_message(nint error, WasmByteVec* message);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasmtime_error_exit_status(nint error, int* status);
    [LibraryImport(Library)] public static partial void wasm_trap_delete(nint trap);
    [LibraryImport(Library)] public static partial void wasm_trap_message(nint trap, WasmByteVec* message);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasmtime_trap_code(nint trap, byte* code);
    /// <summary>Returns an owned trap; ownership passes to Wasmtime when stored in a host call's trap slot.</summary>
    [LibraryImport(Library)] public static partial nint wasmtime_trap_new(byte* message, nuint length);
    [LibraryImport(Library)] public static partial void wasm_byte_vec_delete(WasmByteVec* vec);
    /// <summary>Copies <paramref name="size"/> bytes into a new vector owned by the caller (or by whoever it is handed to).</summary>
    [LibraryImport(Library)] public static partial void wasm_byte_vec_new(WasmByteVec* vec, nuint size, byte* data);

    // ---- config and engine (wasm.h, config.h, async.h, engine.h) ----
    [LibraryImport(Library)] public static partial nint wasm_config_new();
    [LibraryImport(Library)] public static partial void wasm_config_delete(nint config);
    [LibraryImport(Library)] public static partial void wasmtime_config_epoch_interruption_set(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);
    [LibraryImport(Library)] public static partial void wasmtime_config_consume_fuel_set(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);
    [LibraryImport(Library)] public static partial void wasmtime_config_max_wasm_stack_set(nint config, nuint size);
    [LibraryImport(Library)] public static partial void wasmtime_config_async_stack_size_set(nint config, nuint size);
    [LibraryImport(Library)] public static partial void wasmtime_config_memory_reservation_set(nint config, ulong size);
    [LibraryImport(Library)] public static partial void wasmtime_config_memory_guard_size_set(nint config, ulong size);
    [LibraryImport(Library)] public static partial void wasmtime_config_memory_reservation_for_growth_set(nint config, ulong size);
    [LibraryImport(Library)] public static partial void wasmtime_config_signals_based_traps_set(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);
    [LibraryImport(Library)] public static partial void wasmtime_config_memory_init_cow_set(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);
    [LibraryImport(Library)] public static partial void wasmtime_config_host_memory_creator_set(nint config, void* creator);
    /// <summary>Takes ownership of <paramref name="config"/> (also when it returns null).</summary>
    [LibraryImport(Library)] public static partial nint wasm_engine_new_with_config(nint config);
    [LibraryImport(Library)] public static partial void wasm_engine_delete(nint engine);
    [LibraryImport(Library)] public static partial void wasmtime_engine_increment_epoch(EngineHandle engine);

    // ---- pooling allocator (config.h, WASMTIME_FEATURE_POOLING_ALLOCATOR) ----
    [LibraryImport(Library)] public static partial nint wasmtime_pooling_allocation_config_new();
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_delete(nint pooling);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_total_core_instances_set(nint pooling, uint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_total_memories_set(nint pooling, uint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_total_tables_set(nint pooling, uint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_total_stacks_set(nint pooling, uint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_max_memory_size_set(nint pooling, nuint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_table_elements_set(nint pooling, nuint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_max_core_instance_size_set(nint pooling, nuint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_max_unused_warm_slots_set(nint pooling, uint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(nint pooling, nuint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_async_stack_keep_resident_set(nint pooling, nuint value);
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_config_table_keep_resident_set(nint pooling, nuint value);
    /// <summary>Copies the pooling configuration: the caller still owns and deletes it.</summary>
    [LibraryImport(Library)] public static partial void wasmtime_pooling_allocation_strategy_set(nint config, nint pooling);

    // ---- modules (module.h) ----
    [LibraryImport(Library)] public static partial nint wasmtime_module_new(EngineHandle engine, byte* wasm, nuint length, nint* module);
    [LibraryImport(Library)] public static partial nint wasmtime_module_deserialize(EngineHandle engine, byte* bytes, nuint length, nint* module);
    [LibraryImport(Library)] public static partial nint wasmtime_module_serialize(ModuleHandle module, WasmByteVec* bytes);
    [LibraryImport(Library)] public static partial void wasmtime_module_delete(nint module);

    // ---- stores and contexts (store.h, async.h) ----
    [LibraryImport(Library)] public static partial nint wasmtime_store_new(EngineHandle engine, nint data, nint finalizer);
    [LibraryImport(Library)] public static partial void wasmtime_store_delete(nint store);
    /// <summary>The store's context: an interior pointer, valid as long as the store.</summary>
    [LibraryImport(Library)] public static partial nint wasmtime_store_context(StoreHandle store);
    [LibraryImport(Library)] public static partial void wasmtime_store_limiter(StoreHandle store, long memorySize, long tableElements, long instances, long tables, long memories);
    [LibraryImport(Library)] public static partial nint wasmtime_context_get_data(nint context);
    [LibraryImport(Library)] public static partial void wasmtime_context_set_epoch_deadline(nint context, ulong ticksBeyondCurrent);
    // LIBRARY: async.h declares `wasmtime_error_t *` as the result, but the implementation (c-api/src/async.rs)
    // returns nothing and the shipped code leaves a non-null vtable address in rax (objdump). Reading it as an
    // error would free garbage, so it is bound as void.
    [LibraryImport(Library)] public static partial void wasmtime_context_epoch_deadline_async_yield_and_update(nint context, ulong delta);
    [LibraryImport(Library)] public static partial nint wasmtime_context_set_fuel(nint context, ulong fuel);
    [LibraryImport(Library)] public static partial nint wasmtime_context_get_fuel(nint context, ulong* fuel);
    [LibraryImport(Library)] public static partial nint wasmtime_context_fuel_async_yield_interval(nint context, ulong interval);
    /// <summary>Takes ownership of <paramref name="wasi"/>, also when it returns an error.</summary>
    [LibraryImport(Library)] public static partial nint wasmtime_context_set_wasi(nint context, nint wasi);

    // ---- WASI preview 1 configuration (wasi.h) ----
    [LibraryImport(Library)] public static partial nint wasi_config_new();
    [LibraryImport(Library)] public static partial void wasi_config_delete(nint config);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasi_config_set_argv(nint config, nuint argc, byte** argv);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasi_config_set_env(nint config, nuint envc, byte** names, byte** values);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasi_config_set_stdout_file(nint config, byte* path);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasi_config_set_stderr_file(nint config, byte* path);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasi_config_preopen_dir(nint config, byte* hostPath, byte* guestPath, [MarshalAs(UnmanagedType.U1)] bool mutable);

    /// <summary>The guest's stdout goes to <paramref name="callback"/>(data, bytes, length), which must accept it all.</summary>
    [LibraryImport(Library)] public static partial void wasi_config_set_stdout_custom(nint config, nint callback, nint data, nint finalizer);
    [LibraryImport(Library)] public static partial void wasi_config_set_stderr_custom(nint config, nint callback, nint data, nint finalizer);

    /// <summary>The guest's stdin reads these bytes, then end of file; takes the vector's contents.</summary>
    [LibraryImport(Library)] public static partial void wasi_config_set_stdin_bytes(nint config, WasmByteVec* bytes);
    /// <summary>Every socket address passes WASI's address check (wasi:sockets connect and bind).</summary>
    /// <remarks>
    /// LIBRARY: since Wasmtime #13936 (in 50) TCP and UDP sockets are also refused by default, by a
    /// separate switch (WasiCtxBuilder::allow_tcp/allow_udp) the C API 50 does not export, so with this
    /// library a guest still cannot create a socket; see ComponentWasi.
    /// </remarks>
    [LibraryImport(Library)] public static partial void wasi_config_inherit_network(nint config);

    /// <summary>Allows wasi:sockets/ip-name-lookup (off by default).</summary>
    [LibraryImport(Library)] public static partial void wasi_config_allow_ip_name_lookup(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);

    // ---- function types (wasm.h) ----
    [LibraryImport(Library)] public static partial nint wasm_valtype_new(byte kind);
    /// <summary>Takes ownership of the valtypes in <paramref name="data"/> (the array itself is copied).</summary>
    [LibraryImport(Library)] public static partial void wasm_valtype_vec_new(WasmValtypeVec* vec, nuint size, nint* data);
    [LibraryImport(Library)] public static partial void wasm_valtype_vec_new_empty(WasmValtypeVec* vec);
    /// <summary>Takes ownership of both vectors' contents.</summary>
    [LibraryImport(Library)] public static partial nint wasm_functype_new(WasmValtypeVec* parameters, WasmValtypeVec* results);
    [LibraryImport(Library)] public static partial void wasm_functype_delete(nint functype);

    // ---- linker (linker.h, async.h) ----
    [LibraryImport(Library)] public static partial nint wasmtime_linker_new(EngineHandle engine);
    [LibraryImport(Library)] public static partial void wasmtime_linker_delete(nint linker);
    [LibraryImport(Library)] public static partial void wasmtime_linker_allow_shadowing(LinkerHandle linker, [MarshalAs(UnmanagedType.U1)] bool allow);
    [LibraryImport(Library)] public static partial nint wasmtime_linker_define_wasi(LinkerHandle linker);
    /// <summary>
    /// The function type is borrowed. <paramref name="data"/> is owned by the linker from here on: its
    /// <paramref name="finalizer"/> runs when the definition is dropped, and also when the definition fails
    /// (the closure holding it is dropped); only a non-UTF-8 name failed before calling it, which .NET
    /// strings encoded by this layer cannot produce.
    /// </summary>
    [LibraryImport(Library)]
    public static partial nint wasmtime_linker_define_async_func(
        LinkerHandle linker, byte* module, nuint moduleLength, byte* name, nuint nameLength, nint functype,
        delegate* unmanaged[Cdecl]<nint, nint, WasmtimeVal*, nuint, WasmtimeVal*, nuint, nint*, WasmtimeAsyncContinuation*, void> callback,
        nint data, delegate* unmanaged[Cdecl]<nint, void> finalizer);
    /// <summary>The same definition with a native callback and finalizer (the executor shim's).</summary>
    [LibraryImport(Library)]
    public static partial nint wasmtime_linker_define_async_func(
        LinkerHandle linker, byte* module, nuint moduleLength, byte* name, nuint nameLength, nint functype,
        nint callback, nint data, nint finalizer);
    [LibraryImport(Library)] public static partial nint wasmtime_linker_instantiate_pre(LinkerHandle linker, ModuleHandle module, nint* instancePre);

    // ---- instances (instance.h, async.h) ----
    [LibraryImport(Library)] public static partial void wasmtime_instance_pre_delete(nint instancePre);
    /// <summary>All arguments must stay alive and unmodified until the returned future is deleted.</summary>
    [LibraryImport(Library)] public static partial nint wasmtime_instance_pre_instantiate_async(nint instancePre, nint context, WasmtimeStoreItem* instance, nint* trap, nint* error);
    [LibraryImport(Library)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_instance_export_get(nint context, WasmtimeStoreItem* instance, byte* name, nuint nameLength, WasmtimeExtern* item);

    // ---- calls and futures (async.h, func.h, memory.h) ----
    /// <summary>All arguments, the context included, must stay alive and unmodified until the future is deleted.</summary>
    [LibraryImport(Library)] public static partial nint wasmtime_func_call_async(nint context, WasmtimeStoreItem* func, WasmtimeVal* args, nuint nargs, WasmtimeVal* results, nuint nresults, nint* trap, nint* error);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasmtime_call_future_poll(nint future);
    [LibraryImport(Library)] public static partial void wasmtime_call_future_delete(nint future);
    [LibraryImport(Library)] public static partial nint wasmtime_caller_context(nint caller);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool wasmtime_caller_export_get(nint caller, byte* name, nuint nameLength, WasmtimeExtern* item);
    [LibraryImport(Library)] public static partial byte* wasmtime_memory_data(nint context, WasmtimeMemory* memory);
    [LibraryImport(Library)] public static partial nuint wasmtime_memory_data_size(nint context, WasmtimeMemory* memory);

    /// <summary>A NUL-terminated UTF-8 copy of <paramref name="value"/> in native memory; free with <see cref="NativeMemory.Free"/>.</summary>
    public static byte* Utf8(string value)
    {
        var count = System.Text.Encoding.UTF8.GetByteCount(value);
        var buffer = (byte*)NativeMemory.Alloc((nuint)count + 1);
        System.Text.Encoding.UTF8.GetBytes(value, new Span<byte>(buffer, count));
        buffer[count] = 0;
        return buffer;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static string Read(WasmByteVec vec)
    {
        var length = (int)vec.Size;
        while (length > 0 && vec.Data[length - 1] == 0)
        {
            length--; // wasm_trap_message includes the terminating NUL
        }
        return System.Text.Encoding.UTF8.GetString(vec.Data, length);
    }

    /// <summary>Reads a message Wasmtime filled into <paramref name="vec"/> and deletes the vector.</summary>
    public static string TakeString(WasmByteVec* vec)
    {
        try
        {
            return Read(*vec);
        }
        finally
        {
            wasm_byte_vec_delete(vec);
        }
    }
}
