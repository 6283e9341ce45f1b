using System.Text;

namespace Krustlet.Tests.Shared;

/// <summary>
/// Builds the smallest WASI 0.2 command component: a core module whose <c>run</c> returns 0 (ok) or 1
/// (err), lifted as <c>func() -> result</c> and exported as the <c>wasi:cli/run@0.2.0</c> interface.
/// No component toolchain is packaged for Debian, so the binary is encoded here, section by section,
/// following the component model's binary format.
/// </summary>
internal static class ComponentFixture
{
    /// <summary>Writes the component to a file; returns its path.</summary>
    public static string RunReturning(bool ok) =>
        Around($"""(module (func (export "run") (result i32) i32.const {(ok ? 0 : 1)}))""");

    /// <summary>A component whose <c>run</c> counts to <paramref name="iterations"/> (CPU work without host calls), then returns ok.</summary>
    public static string RunCounting(int iterations) =>
        Around($"""(module (func (export "run") (result i32) (local i32) (loop (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br_if 0 (i32.lt_u (local.get 0) (i32.const {iterations})))) i32.const 0))""");

    /// <summary>
    /// A component whose core module declares <paramref name="pages"/> pages of memory and a table of
    /// <paramref name="tableElements"/> funcrefs; <c>run</c> grows the memory by <paramref name="growPages"/>
    /// and returns ok if it could, an error if memory.grow failed.
    /// </summary>
    public static string RunGrowingMemory(int pages, int growPages, int tableElements) =>
        Around($"""(module (memory {pages}) (table {tableElements} funcref) (func (export "run") (result i32) (i32.eq (memory.grow (i32.const {growPages})) (i32.const -1))))""");

    /// <summary>The component around a core module (WebAssembly text) that exports <c>run: func() -> i32</c>.</summary>
    public static string Around(string coreWat)
    {
        var core = File.ReadAllBytes(WasmFixtures.Wat(coreWat));
        var bytes = new List<byte> { 0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00 }; // magic, version 0x0d, layer 1
        bytes.AddRange(Section(1, core));                                                 // core module 0
        bytes.AddRange(Section(2, [0x01, 0x00, 0x00, 0x00]));                             // core instance 0: instantiate module 0, no arguments
        bytes.AddRange(Section(6, [0x01, 0x00, 0x00, 0x01, 0x00, .. Name("run")]));       // alias: core func 0 = core instance 0's export "run"
        bytes.AddRange(Section(7, [0x02, 0x6a, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00]));     // type 0 = result; type 1 = func() -> type 0
        bytes.AddRange(Section(8, [0x01, 0x00, 0x00, 0x00, 0x00, 0x01]));                 // canon lift core func 0 with type 1 = func 0
        bytes.AddRange(Section(5, [0x01, 0x01, 0x01, 0x00, .. Name("run"), 0x01, 0x00])); // instance 0 made of exports: "run" = func 0
        bytes.AddRange(Section(11, [0x01, 0x00, .. Name("wasi:cli/run@0.2.0"), 0x05, 0x00, 0x00])); // export instance 0
        return WasmFixtures.File([.. bytes]);
    }

    private static byte[] Section(byte id, byte[] body) => [id, .. Leb128((uint)body.Length), .. body];

    private static byte[] Name(string name)
    {
        var utf8 = Encoding.UTF8.GetBytes(name);
        return [.. Leb128((uint)utf8.Length), .. utf8];
    }

    /// <summary>Unsigned LEB128, the WebAssembly binary format's integer encoding.</summary>
    public static byte[] Leb128(uint value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }
}
