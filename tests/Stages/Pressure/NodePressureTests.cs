using k8s.Models;
using Krustlet.Stages.Pressure;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Pressure;

[TestClass]
public sealed class NodePressureTests
{
    private const long Gi = 1L << 30;
    private const long Mi = 1L << 20;

    [TestMethod]
    public void The_defaults_are_the_kubelets_hard_thresholds()
    {
        var thresholds = EvictionThresholds.Parse(EvictionThresholds.Defaults);

        CollectionAssert.AreEqual(
            new[] { "memory.available<104857600", "nodefs.available<10%", "nodefs.inodesFree<5%", "imagefs.available<15%", "imagefs.inodesFree<5%" },
            thresholds.Select(t => t.ToString()).ToArray());
    }

    [TestMethod]
    [DataRow("memory.available", "'memory.available' must be signal<quantity, such as memory.available<100Mi or nodefs.available<10%")]
    [DataRow("disk.free<1Gi", "'disk.free' is not an eviction signal (the signals are memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available)")]
    [DataRow("nodefs.available<120%", "'120%' for nodefs.available must be a percentage above 0% and at most 100%")]
    [DataRow("memory.available<lots", "'lots' for memory.available must be a quantity such as 100Mi, 1Gi or 1000, or a percentage such as 10%")]
    [DataRow("pid.available<100,pid.available<200", "'pid.available' is given twice")]
    public void Bad_thresholds_are_refused_with_what_they_must_be(string text, string message)
    {
        var ex = Assert.ThrowsExactly<FormatException>(() => EvictionThresholds.Parse(text));

        Assert.AreEqual(message, ex.Message);
    }

    [TestMethod]
    public void A_crossed_threshold_sets_its_condition_at_once_and_clears_it_only_after_the_transition_period()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        var signals = new Signals { Memory = new Availability(4 * Gi, 8 * Gi), Disk = new Availability(50 * Gi, 100 * Gi) };
        using var pressure = new NodePressure(signals, new NodePressureOptions(), time);

        pressure.Evaluate();
        Assert.IsEmpty(pressure.Active);

        signals.Disk = new Availability(9 * Gi, 100 * Gi); // under 10 %
        time.Advance(TimeSpan.FromSeconds(10));
        pressure.Evaluate();
        var disk = pressure.Conditions.Single(c => c.Condition == PressureCondition.DiskPressure);
        Assert.IsTrue(disk.Active);
        Assert.AreEqual("KubeletHasDiskPressure", disk.Reason);
        Assert.AreEqual("the node has nodefs.available 9663676416 of 107374182400 bytes, under its eviction threshold nodefs.available<10%", disk.Message);
        Assert.AreEqual(time.GetUtcNow(), disk.Since);
        var since = disk.Since;

        // Recovered, but the condition holds for the transition period (5 m) after the last crossing.
        signals.Disk = new Availability(50 * Gi, 100 * Gi);
        time.Advance(TimeSpan.FromMinutes(4));
        pressure.Evaluate();
        Assert.IsTrue(pressure.Conditions.Single(c => c.Condition == PressureCondition.DiskPressure).Active);
        Assert.AreEqual(since, pressure.Conditions.Single(c => c.Condition == PressureCondition.DiskPressure).Since, "no transition while it holds");
        time.Advance(TimeSpan.FromMinutes(1));
        pressure.Evaluate();
        var calm = pressure.Conditions.Single(c => c.Condition == PressureCondition.DiskPressure);
        Assert.IsFalse(calm.Active);
        Assert.AreEqual("KubeletHasNoDiskPressure", calm.Reason);
        Assert.AreEqual(time.GetUtcNow(), calm.Since);

        signals.Memory = new Availability(50 * Mi, 8 * Gi);
        pressure.Evaluate();
        Assert.AreEqual("KubeletHasInsufficientMemory", pressure.Conditions.Single(c => c.Condition == PressureCondition.MemoryPressure).Reason);
        CollectionAssert.AreEqual(new[] { PressureCondition.MemoryPressure }, pressure.Active.ToArray());
    }

    [TestMethod]
    public void The_monitor_reads_the_signals_every_interval_on_the_clock()
    {
        var time = new FakeTimeProvider();
        var signals = new Signals { Memory = new Availability(4 * Gi, 8 * Gi), Disk = new Availability(50 * Gi, 100 * Gi) };
        using var pressure = new NodePressure(signals, new NodePressureOptions(), time);
        NodeSignals? seen = null;
        pressure.DiskPressureObserved += s => seen = s;

        pressure.Start();
        Assert.AreEqual(1, signals.Reads);
        signals.Disk = new Availability(1 * Gi, 100 * Gi);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.AreEqual(2, signals.Reads);
        Assert.IsNotNull(seen, "disk pressure is passed on to the image collector");
        Assert.AreEqual(1 * Gi, seen.NodeFsBytes!.Value.Available);

        // Recovered: the condition holds through the transition period, but nothing more is collected.
        seen = null;
        signals.Disk = new Availability(50 * Gi, 100 * Gi);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.IsTrue(pressure.Active.Contains(PressureCondition.DiskPressure));
        Assert.IsNull(seen);
    }

    [TestMethod]
    public void Under_pressure_pods_are_refused_as_the_kubelet_refuses_them()
    {
        var signals = new Signals { Memory = new Availability(50 * Mi, 8 * Gi), Disk = new Availability(50 * Gi, 100 * Gi) };
        using var pressure = new NodePressure(signals, new NodePressureOptions(), new FakeTimeProvider());
        pressure.Evaluate();

        // MemoryPressure alone: only BestEffort pods are refused, unless they tolerate the taint.
        Assert.AreEqual("The node had condition: [MemoryPressure]. ", pressure.Admit(Pod("besteffort")));
        Assert.IsNull(pressure.Admit(Pod("burstable", requests: true)));
        Assert.IsNull(pressure.Admit(Pod("tolerant", toleration: "node.kubernetes.io/memory-pressure")));
        Assert.IsNull(pressure.Admit(Pod("static", staticPod: true)), "static pods are critical");
        Assert.IsNull(pressure.Admit(Pod("critical", priorityClass: "system-node-critical")));

        // DiskPressure too: every pod that is not critical.
        signals.Disk = new Availability(1 * Gi, 100 * Gi);
        pressure.Evaluate();
        Assert.AreEqual("The node had condition: [MemoryPressure DiskPressure]. ", pressure.Admit(Pod("burstable", requests: true)));
        Assert.AreEqual("The node had condition: [MemoryPressure DiskPressure]. ", pressure.Admit(Pod("tolerant", toleration: "node.kubernetes.io/memory-pressure")));
        Assert.IsNull(pressure.Admit(Pod("static", staticPod: true)));
    }

    [TestMethod]
    public void The_linux_source_reads_this_machines_memory_filesystem_and_pids()
    {
        var signals = new LinuxNodeSignalSource(Path.GetTempPath(), Path.Combine(Path.GetTempPath(), "not", "made", "yet")).Read();

        Assert.IsTrue(signals.Memory is { Available: > 0, Capacity: > 0 } memory && memory.Available <= memory.Capacity);
        Assert.IsTrue(signals.NodeFsBytes is { Capacity: > 0 } disk && disk.Available <= disk.Capacity);
        Assert.AreEqual(signals.NodeFsBytes!.Value.Capacity, signals.ImageFsBytes!.Value.Capacity, "a directory not made yet is measured on the filesystem it will be on");
        Assert.IsTrue(signals.Pids is { Available: > 0 } pids && pids.Capacity > pids.Available);
    }

    private static V1Pod Pod(string name, bool requests = false, string? toleration = null, bool staticPod = false, string? priorityClass = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Uid = name, Annotations = staticPod ? new Dictionary<string, string> { ["kubernetes.io/config.source"] = "file" } : null },
        Spec = new V1PodSpec
        {
            PriorityClassName = priorityClass,
            Tolerations = toleration is null ? null : [new V1Toleration { Key = toleration, OperatorProperty = "Exists", Effect = "NoSchedule" }],
            Containers = [new V1Container { Name = "main", Image = "x", Resources = requests ? new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["memory"] = new("64Mi") } } : null }],
        },
    };

    private sealed class Signals : INodeSignalSource
    {
        public Availability Memory { get; set; }

        public Availability Disk { get; set; }

        public int Reads { get; private set; }

        public NodeSignals Read()
        {
            Reads++;
            return new NodeSignals(Memory, Disk, new Availability(1_000_000, 2_000_000), Disk, new Availability(1_000_000, 2_000_000), new Availability(4_000_000, 4_194_304));
        }
    }
}
