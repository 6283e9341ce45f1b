using Krustlet.Stages.Compile;

namespace Krustlet.Stages.Tests.Compile;

/// <summary>The tables a binary defines, read from its table sections, in bytes as Wasmtime stores them.</summary>
[TestClass]
public sealed class WasmTablesTests
{
    private static long Of(string wat) => WasmTables.DeclaredBytes(File.ReadAllBytes(WasmFixtures.Wat(wat)));

    [TestMethod]
    public void Each_defined_table_counts_its_initial_elements_at_eight_bytes()
    {
        Assert.AreEqual(0L, Of("(module)"));
        Assert.AreEqual(40L, Of("(module (table 5 5 funcref))"));
        Assert.AreEqual(800_000_000L + 40, Of("(module (table 100000000 funcref) (table 5 externref))"));
        Assert.AreEqual(0L, Of("(module (import \"env\" \"t\" (table 1000 funcref)))"), "an imported table is counted where it is defined");
    }

    [TestMethod]
    public void A_component_counts_the_tables_of_the_core_modules_it_holds()
    {
        Assert.AreEqual(8_000L, WasmTables.DeclaredBytes(File.ReadAllBytes(ComponentFixture.RunGrowingMemory(1, 0, 1_000))));
    }

    [TestMethod]
    public void What_is_not_a_readable_binary_counts_nothing()
    {
        Assert.AreEqual(0L, WasmTables.DeclaredBytes("not wasm"u8));
        var table = File.ReadAllBytes(WasmFixtures.Wat("(module (table 5 funcref))"));
        Assert.AreEqual(0L, WasmTables.DeclaredBytes(table.AsSpan(0, table.Length - 2)), "a truncated section");
        Assert.AreEqual(0L, WasmTables.DeclaredBytes(Path.Combine(Path.GetTempPath(), "no-such-module.wasm")));
    }
}
