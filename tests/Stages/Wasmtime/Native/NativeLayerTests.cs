using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Tests.Wasmtime.Native;

/// <summary>The native layer: errors become typed exceptions carrying Wasmtime's message; traps and exits keep their codes.</summary>
[TestClass]
public sealed class NativeLayerTests
{
    private static readonly NativeEngine Engine = new(new NativeEngineOptions());
    private static readonly NativeEngine FuelEngine = new(new NativeEngineOptions { ConsumeFuel = true });

    public TestContext TestContext { get; set; } = null!;

    private static (NativeStore Store, NativeInstance Instance) Start(NativeEngine engine, byte[] wasm, bool wasi = false, NativeWasiOptions? options = null, ulong? fuel = null)
    {
        using var module = NativeModule.Compile(engine, wasm);
        using var linker = new NativeLinker(engine);
        if (wasi)
        {
            linker.DefineWasi();
        }
        using var pre = linker.Prepare(module);
        var store = new NativeStore(engine);
        if (wasi)
        {
            store.SetWasi(options ?? new NativeWasiOptions());
        }
        if (fuel is { } f)
        {
            store.SetFuel(f);
        }
        store.SetEpochDeadline(1_000_000);
        return (store, NativeGuests.Instantiate(pre, store));
    }

    [TestMethod]
    public void Garbage_bytes_fail_to_compile_and_to_deserialize_with_Wasmtimes_message()
    {
        var compile = Assert.ThrowsExactly<WasmtimeNativeException>(() => NativeModule.Compile(Engine, [1, 2, 3, 4]));
        StringAssert.Contains(compile.Message, "magic header", StringComparison.Ordinal);

        var deserialize = Assert.ThrowsExactly<WasmtimeNativeException>(() => NativeModule.Deserialize(Engine, [1, 2, 3, 4]));
        StringAssert.Contains(deserialize.Message, "ELF", StringComparison.Ordinal);
    }

    [TestMethod]
    public void A_serialized_module_deserializes_into_an_engine_of_the_same_configuration_only()
    {
        using var module = NativeModule.Compile(Engine, NativeGuests.Wat(NativeGuests.Spinner));
        var artifact = module.Serialize();

        using var again = NativeModule.Deserialize(Engine, artifact);
        using var linker = new NativeLinker(Engine);
        using var pre = linker.Prepare(again);
        using var store = new NativeStore(Engine);
        store.SetEpochDeadline(1_000_000);
        var instance = NativeGuests.Instantiate(pre, store);
        CollectionAssert.AreEqual(new long[] { 1000 }, NativeGuests.Run(store, instance, "run", 1000));

        var mismatch = Assert.ThrowsExactly<WasmtimeNativeException>(() => NativeModule.Deserialize(FuelEngine, artifact));
        StringAssert.Contains(mismatch.Message, "fuel", StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    public void A_missing_import_fails_when_the_module_is_prepared()
    {
        using var module = NativeModule.Compile(Engine, NativeGuests.Wat(NativeGuests.Waiter));
        using var linker = new NativeLinker(Engine);

        var error = Assert.ThrowsExactly<WasmtimeNativeException>(() => linker.Prepare(module));

        StringAssert.Contains(error.Message, "host::wait", StringComparison.Ordinal);
    }

    [TestMethod]
    public void An_engine_configuration_Wasmtime_would_abort_on_is_refused_first_naming_the_settings()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new NativeEngine(new NativeEngineOptions { AsyncStackSize = 64 * 1024, MaxWasmStack = 512 * 1024 }));

        StringAssert.Contains(error.Message, "AsyncStackSize (65536) must not be less than MaxWasmStack (524288)", StringComparison.Ordinal);
    }

    [TestMethod]
    public void A_trap_comes_back_as_a_WasmTrapException_with_its_code_and_message()
    {
        var (store, instance) = Start(Engine, NativeGuests.Wat("""(module (func (export "_start") unreachable))"""));
        using var _ = store;

        var trap = Assert.ThrowsExactly<WasmTrapException>(() => NativeGuests.Run(store, instance, "_start"));

        Assert.AreEqual(WasmTrapCode.UnreachableCodeReached, trap.Code);
        StringAssert.Contains(trap.Message, "unreachable", StringComparison.Ordinal);
    }

    [TestMethod]
    public void Running_out_of_fuel_traps_with_OutOfFuel()
    {
        var (store, instance) = Start(FuelEngine, NativeGuests.Wat(NativeGuests.Spinner), fuel: 10_000);
        using var _ = store;

        var trap = Assert.ThrowsExactly<WasmTrapException>(() => NativeGuests.Run(store, instance, "_start"));

        Assert.AreEqual(WasmTrapCode.OutOfFuel, trap.Code);
    }

    [TestMethod]
    public void An_epoch_deadline_without_yielding_traps_with_Interrupt()
    {
        var (store, instance) = Start(Engine, NativeGuests.Wat(NativeGuests.Spinner));
        using var _ = store;
        store.SetEpochDeadline(1);
        Engine.IncrementEpoch();
        Engine.IncrementEpoch();

        var trap = Assert.ThrowsExactly<WasmTrapException>(() => NativeGuests.Run(store, instance, "_start"));

        Assert.AreEqual(WasmTrapCode.Interrupt, trap.Code);
    }

    [TestMethod]
    public void Wasi_proc_exit_3_comes_back_as_a_GuestExitException_with_exit_code_3()
    {
        var (store, instance) = Start(Engine, NativeGuests.Wat("""
            (module
              (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory (export "memory") 1)
              (func (export "_start") (call $exit (i32.const 3))))
            """), wasi: true);
        using var _ = store;

        var exit = Assert.ThrowsExactly<GuestExitException>(() => NativeGuests.Run(store, instance, "_start"));

        Assert.AreEqual(3, exit.ExitCode);
    }

    [TestMethod]
    public void A_C_guest_gets_args_env_and_a_preopen_and_writes_its_stdout_and_stderr_files()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-native-wasi-").FullName;
        try
        {
            var stdout = Path.Combine(root, "stdout");
            var stderr = Path.Combine(root, "stderr");
            var (store, instance) = Start(Engine, NativeGuests.C("hello"), wasi: true, options: new NativeWasiOptions
            {
                Args = ["hello.wasm", "one", "two words"],
                Environment = [new("GREETING", "hi there")],
                StdoutPath = stdout,
                StderrPath = stderr,
                Preopens = [new NativePreopen(root, "/data", Mutable: true)],
            });
            using (store)
            {
                NativeGuests.Run(store, instance, "_start");
            }

            var output = File.ReadAllText(stdout);
            StringAssert.Contains(output, "two words", StringComparison.Ordinal);
            StringAssert.Contains(output, "hi there", StringComparison.Ordinal);
            Assert.AreEqual("a line on stderr\n", File.ReadAllText(stderr));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void A_store_runs_one_future_at_a_time_and_is_not_deleted_under_one()
    {
        var (store, instance) = Start(Engine, NativeGuests.Wat(NativeGuests.Spinner));
        using var _ = store;
        var run = instance.GetFunction("run")!;
        using var future = store.CallAsync(run, [10], 1);

        Assert.ThrowsExactly<InvalidOperationException>(() => store.CallAsync(run, [10], 1));
        Assert.ThrowsExactly<InvalidOperationException>(() => store.SetFuel(1));
        Assert.ThrowsExactly<InvalidOperationException>(store.Dispose);
        Assert.IsTrue(future.Poll());
        CollectionAssert.AreEqual(new long[] { 10 }, future.Results);
    }
}
