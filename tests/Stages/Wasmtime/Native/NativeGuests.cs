using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Tests.Wasmtime.Native;

/// <summary>Guests and helpers shared by the native-layer tests.</summary>
internal static class NativeGuests
{
    /// <summary><c>_start</c> loops forever, counting into <c>count</c>; <c>run(n)</c> loops n times and returns the count.</summary>
    public const string Spinner = """
        (module
          (global $count (mut i32) (i32.const 0))
          (func (export "_start")
            (loop $forever
              (global.set $count (i32.add (global.get $count) (i32.const 1)))
              (br $forever)))
          (func (export "run") (param $n i32) (result i32)
            (block $done
              (loop $again
                (br_if $done (i32.ge_u (global.get $count) (local.get $n)))
                (global.set $count (i32.add (global.get $count) (i32.const 1)))
                (br $again)))
            (global.get $count))
          (func (export "count") (result i32) (global.get $count)))
        """;

    /// <summary><c>run</c> calls host.wait(41) and returns its result plus one.</summary>
    public const string Waiter = """
        (module
          (import "host" "wait" (func $wait (param i32) (result i32)))
          (func (export "run") (result i32)
            (i32.add (call $wait (i32.const 41)) (i32.const 1))))
        """;

    /// <summary><c>run(n)</c> calls host.wait(i) for i in 0..n-1 and returns the sum of the answers.</summary>
    public const string SummingWaiter = """
        (module
          (import "host" "wait" (func $wait (param i32) (result i32)))
          (func (export "run") (param $n i32) (result i32)
            (local $i i32) (local $sum i32)
            (block $done
              (loop $again
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $sum (i32.add (local.get $sum) (call $wait (local.get $i))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $again)))
            (local.get $sum)))
        """;

    public static byte[] Wat(string text) => File.ReadAllBytes(WasmFixtures.Wat(text));

    public static byte[] C(string name) => File.ReadAllBytes(WasmFixtures.C(name));

    /// <summary>Instantiates through the InstancePre, polling the (non-yielding) instantiation to its end.</summary>
    public static NativeInstance Instantiate(NativeInstancePre pre, NativeStore store)
    {
        using var future = pre.InstantiateAsync(store);
        Assert.IsTrue(future.Poll(), "instantiation without a start function completes in one poll");
        return future.Instance;
    }

    /// <summary>Calls an export and polls it until it completes; returns the results.</summary>
    public static long[] Run(NativeStore store, NativeInstance instance, string export, params long[] args)
    {
        var function = instance.GetFunction(export) ?? throw new AssertFailedException($"no export {export}");
        using var future = store.CallAsync(function, args, results: export == "_start" ? 0 : 1);
        while (!future.Poll())
        {
        }
        return future.Results;
    }
}
