using Krustlet.Stages.Compile;
using Microsoft.Extensions.Configuration;

namespace Krustlet.Stages.Tests.Compile;

[TestClass]
public sealed class WasmEngineOptionsTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [TestMethod]
    public void Defaults_leave_fuel_off_and_tick_every_ten_milliseconds()
    {
        var (options, problems) = WasmEngineOptions.Read(Config());

        Assert.IsEmpty(problems);
        Assert.AreEqual(new WasmEngineOptions(), options);
        Assert.IsFalse(options!.FuelEnabled);
        Assert.IsFalse(options.CompactMemories);
        Assert.AreEqual(TimeSpan.FromMilliseconds(10), options.EpochTick);
    }

    [TestMethod]
    public void Settings_are_read()
    {
        var (options, _) = WasmEngineOptions.Read(Config(("Wasm:FuelEnabled", "true"), ("Wasm:FuelPerContainer", "5000"), ("Wasm:EpochTick", "00:00:00.050"), ("Wasm:CompactMemories", "true")));

        Assert.AreEqual(new WasmEngineOptions { FuelEnabled = true, FuelPerContainer = 5000, EpochTick = TimeSpan.FromMilliseconds(50), CompactMemories = true }, options);
    }

    [TestMethod]
    public void Every_bad_setting_is_named()
    {
        var (options, problems) = WasmEngineOptions.Read(Config(("Wasm:FuelEnabled", "maybe"), ("Wasm:FuelPerContainer", "-1"), ("Wasm:EpochTick", "0"), ("Wasm:CompactMemories", "yes")));

        Assert.IsNull(options);
        CollectionAssert.AreEqual(
            new[]
            {
                "Wasm:FuelEnabled must be true or false (got 'maybe').",
                "Wasm:FuelPerContainer must be a whole number greater than zero (got '-1').",
                "Wasm:EpochTick must be a positive duration such as 00:00:00.010 (got '0').",
                "Wasm:CompactMemories must be true or false (got 'yes').",
            },
            problems.ToArray());
    }
}
