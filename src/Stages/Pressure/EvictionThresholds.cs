using System.Globalization;
using k8s.Models;

namespace Krustlet.Stages.Pressure;

/// <summary>A signal the kubelet's eviction manager watches, by its kubelet name.</summary>
public enum EvictionSignal
{
    /// <summary><c>memory.available</c>: the node's available memory.</summary>
    MemoryAvailable,

    /// <summary><c>nodefs.available</c>: free bytes on the filesystem of the pods, logs and state.</summary>
    NodeFsAvailable,

    /// <summary><c>nodefs.inodesFree</c>: free inodes there.</summary>
    NodeFsInodesFree,

    /// <summary><c>imagefs.available</c>: free bytes on the filesystem of the images and compiled modules.</summary>
    ImageFsAvailable,

    /// <summary><c>imagefs.inodesFree</c>: free inodes there.</summary>
    ImageFsInodesFree,

    /// <summary><c>pid.available</c>: process IDs (tasks) the kernel can still give out.</summary>
    PidAvailable,
}

/// <summary>One hard eviction threshold: the signal is under pressure when what is available drops below it.</summary>
/// <param name="Signal">What is measured.</param>
/// <param name="Quantity">An absolute floor (bytes, inodes or PIDs), or null when <paramref name="Percentage"/> is set.</param>
/// <param name="Percentage">A floor as a fraction of the capacity (0.1 for 10%), or null.</param>
public sealed record EvictionThreshold(EvictionSignal Signal, long? Quantity, double? Percentage)
{
    /// <summary>The floor for a capacity of <paramref name="capacity"/>.</summary>
    public double Floor(long capacity) => Quantity ?? (Percentage!.Value * capacity);

    public override string ToString() =>
        $"{EvictionThresholds.Name(Signal)}<{(Percentage is { } p ? string.Create(CultureInfo.InvariantCulture, $"{p * 100:0.##}%") : Quantity!.Value.ToString(CultureInfo.InvariantCulture))}";
}

/// <summary>
/// The kubelet's <c>--eviction-hard</c>: <c>signal&lt;quantity</c> pairs separated by commas, a quantity
/// absolute (<c>100Mi</c>, <c>1000</c>) or a percentage of the capacity (<c>10%</c>). The defaults are the
/// kubelet's on Linux (<c>memory.available&lt;100Mi,nodefs.available&lt;10%,nodefs.inodesFree&lt;5%,imagefs.available&lt;15%,imagefs.inodesFree&lt;5%</c>);
/// <c>pid.available</c> has no default, as in the kubelet.
/// </summary>
public static class EvictionThresholds
{
    public const string Defaults = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%";

    private static readonly Dictionary<string, EvictionSignal> Signals = new(StringComparer.Ordinal)
    {
        ["memory.available"] = EvictionSignal.MemoryAvailable,
        ["nodefs.available"] = EvictionSignal.NodeFsAvailable,
        ["nodefs.inodesFree"] = EvictionSignal.NodeFsInodesFree,
        ["imagefs.available"] = EvictionSignal.ImageFsAvailable,
        ["imagefs.inodesFree"] = EvictionSignal.ImageFsInodesFree,
        ["pid.available"] = EvictionSignal.PidAvailable,
    };

    /// <summary>The kubelet's name of a signal.</summary>
    public static string Name(EvictionSignal signal) => Signals.First(s => s.Value == signal).Key;

    /// <summary>Parses <paramref name="text"/>; an empty text sets no threshold.</summary>
    /// <exception cref="FormatException">A pair that is not <c>signal&lt;quantity</c> with a known signal, in the words a settings error shows.</exception>
    public static IReadOnlyList<EvictionThreshold> Parse(string? text)
    {
        var thresholds = new List<EvictionThreshold>();
        foreach (var raw in (text ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var at = raw.IndexOf('<', StringComparison.Ordinal);
            if (at <= 0 || at == raw.Length - 1)
            {
                throw new FormatException($"'{raw}' must be signal<quantity, such as memory.available<100Mi or nodefs.available<10%");
            }

            var name = raw[..at];
            var value = raw[(at + 1)..];
            if (!Signals.TryGetValue(name, out var signal))
            {
                throw new FormatException($"'{name}' is not an eviction signal (the signals are {string.Join(", ", Signals.Keys)})");
            }

            if (thresholds.Any(t => t.Signal == signal))
            {
                throw new FormatException($"'{name}' is given twice");
            }

            if (value.EndsWith('%'))
            {
                if (!double.TryParse(value[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var percent) || percent is <= 0 or > 100)
                {
                    throw new FormatException($"'{value}' for {name} must be a percentage above 0% and at most 100%");
                }

                thresholds.Add(new EvictionThreshold(signal, null, percent / 100));
                continue;
            }

            long quantity;
            try
            {
                quantity = checked((long)new ResourceQuantity(value).ToDecimal());
            }
            catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
            {
                throw new FormatException($"'{value}' for {name} must be a quantity such as 100Mi, 1Gi or 1000, or a percentage such as 10%", ex);
            }

            if (quantity < 0)
            {
                throw new FormatException($"'{value}' for {name} must not be negative");
            }

            thresholds.Add(new EvictionThreshold(signal, quantity, null));
        }

        return thresholds;
    }
}
