namespace Krustlet.Stages.Tests.Support;

/// <summary>WebAssembly text fixtures for the outcomes a container can have.</summary>
internal static class Wat
{
    private const string Wasi = """
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        """;

    /// <summary>Calls proc_exit with <paramref name="code"/>.</summary>
    public static string Exit(int code) => $"""(module {Wasi} (func (export "_start") (call $exit (i32.const {code}))))""";

    /// <summary>Returns from _start without calling proc_exit.</summary>
    public const string Returns = """(module (memory (export "memory") 1) (func (export "_start")))""";

    /// <summary>Writes "before the trap\n" to stdout with fd_write, then runs <paramref name="body"/>.</summary>
    public static string WritesThen(string body) => $$"""
        (module {{Wasi}}
          (data (i32.const 16) "before the trap\n")
          (func $recurse (call $recurse))
          (func $loop (loop $l (br $l)))
          (table 1 funcref)
          (type $t (func))
          (func (export "_start")
            ;; iovec at 0: { ptr = 16, len = 16 }
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 16))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            {{body}}))
        """;

    public static string Unreachable => WritesThen("unreachable");

    public static string StackOverflow => WritesThen("(call $recurse)");

    public static string DivideByZero => WritesThen("(drop (i32.div_s (i32.const 1) (i32.const 0)))");

    public static string OutOfBounds => WritesThen("(drop (i32.load (i32.const 1000000)))");

    public static string NullCall => WritesThen("(call_indirect (type $t) (i32.const 0))");

    /// <summary>Spins forever without calling the host.</summary>
    public static string InfiniteLoop => WritesThen("(call $loop)");

    /// <summary>Has no _start: a reactor, not a command.</summary>
    public const string NoStart = """(module (memory (export "memory") 1) (func (export "run")))""";

    /// <summary>Imports a function no host provides.</summary>
    public const string UnknownImport = """(module (import "env" "missing" (func)) (memory (export "memory") 1) (func (export "_start")))""";
}
