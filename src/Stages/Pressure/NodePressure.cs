using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Pressure;

/// <summary>A node condition the eviction manager sets.</summary>
public enum PressureCondition
{
    MemoryPressure,
    DiskPressure,
    PIDPressure,
}

/// <summary>One pressure condition as the node reports it.</summary>
/// <param name="Condition">Which.</param>
/// <param name="Active">True while the node is under this pressure.</param>
/// <param name="Since">When it last changed (the condition's lastTransitionTime).</param>
/// <param name="Message">The kubelet's message for the state, with the signal that crossed its threshold when active.</param>
public sealed record PressureState(PressureCondition Condition, bool Active, DateTimeOffset Since, string Message)
{
    /// <summary>The kubelet's reason for the state.</summary>
    public string Reason => (Condition, Active) switch
    {
        (PressureCondition.MemoryPressure, true) => "KubeletHasInsufficientMemory",
        (PressureCondition.MemoryPressure, false) => "KubeletHasSufficientMemory",
        (PressureCondition.DiskPressure, true) => "KubeletHasDiskPressure",
        (PressureCondition.DiskPressure, false) => "KubeletHasNoDiskPressure",
        (PressureCondition.PIDPressure, true) => "KubeletHasInsufficientPID",
        _ => "KubeletHasSufficientPID",
    };
}

/// <summary>What the eviction manager needs besides its thresholds.</summary>
public sealed record NodePressureOptions
{
    /// <summary>The kubelet's default <c>--eviction-pressure-transition-period</c>.</summary>
    public static readonly TimeSpan DefaultTransitionPeriod = TimeSpan.FromMinutes(5);

    /// <summary>The kubelet's eviction monitoring interval.</summary>
    public static readonly TimeSpan DefaultMonitoringInterval = TimeSpan.FromSeconds(10);

    /// <summary>The hard thresholds (<see cref="EvictionThresholds.Parse"/>).</summary>
    public IReadOnlyList<EvictionThreshold> Thresholds { get; init; } = EvictionThresholds.Parse(EvictionThresholds.Defaults);

    /// <summary>How long a condition stays true after its signal recovered, so it does not flap.</summary>
    public TimeSpan TransitionPeriod { get; init; } = DefaultTransitionPeriod;

    /// <summary>How often the signals are read.</summary>
    public TimeSpan MonitoringInterval { get; init; } = DefaultMonitoringInterval;
}

/// <summary>
/// The kubelet eviction manager's node conditions: every <see cref="NodePressureOptions.MonitoringInterval"/>
/// it reads the signals and compares them with the hard thresholds; memory gives MemoryPressure, the node
/// and image filesystems (bytes or inodes) DiskPressure, PIDs PIDPressure. A condition turns true as soon
/// as a threshold is crossed and false only once no threshold of it has been crossed for the transition
/// period. <see cref="Admit"/> is the kubelet's admission under pressure; <see cref="DiskPressureObserved"/>
/// lets the image collector free space.
/// </summary>
public sealed partial class NodePressure : IDisposable
{
    private readonly INodeSignalSource _signals;
    private readonly NodePressureOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<PressureCondition, PressureState> _states;
    private readonly Dictionary<PressureCondition, DateTimeOffset> _lastObserved = [];
    private ITimer? _timer;

    public NodePressure(INodeSignalSource signals, NodePressureOptions? options = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(signals);
        _signals = signals;
        _options = options ?? new NodePressureOptions();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        var now = _time.GetUtcNow();
        _states = Enum.GetValues<PressureCondition>().ToDictionary(c => c, c => new PressureState(c, false, now, Calm(c)));
    }

    /// <summary>Raised after every evaluation, with the signals read (the image collector's thresholds are checked on it).</summary>
    public event Action<NodeSignals>? Evaluated;

    /// <summary>Raised after an evaluation in which a disk threshold was crossed, with the signals read.</summary>
    public event Action<NodeSignals>? DiskPressureObserved;

    /// <summary>Every condition now.</summary>
    public IReadOnlyList<PressureState> Conditions
    {
        get
        {
            lock (_lock)
            {
                return [.. _states.Values.OrderBy(s => s.Condition)];
            }
        }
    }

    /// <summary>The conditions that hold now.</summary>
    public IReadOnlyList<PressureCondition> Active => [.. Conditions.Where(s => s.Active).Select(s => s.Condition)];

    /// <summary>Reads the signals now and then every monitoring interval.</summary>
    public void Start()
    {
        Evaluate();
        _timer = _time.CreateTimer(_ => Evaluate(), null, _options.MonitoringInterval, _options.MonitoringInterval);
    }

    /// <summary>Reads the signals once and updates the conditions; returns what it read.</summary>
    public NodeSignals Evaluate()
    {
        NodeSignals signals;
        try
        {
            signals = _signals.Read();
        }
#pragma warning disable CA1031 // A signal that cannot be read changes nothing; the next evaluation tries again.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.SignalsUnreadable(_logger, ex.Message);
            return new NodeSignals(null, null, null, null, null, null);
        }

        var now = _time.GetUtcNow();
        var crossed = _options.Thresholds
            .Select(t => (Threshold: t, Seen: signals[t.Signal]))
            .Where(x => x.Seen is { } seen && seen.Available < x.Threshold.Floor(seen.Capacity))
            .GroupBy(x => ConditionOf(x.Threshold.Signal))
            .ToDictionary(g => g.Key, g => g.First());
        bool disk;
        lock (_lock)
        {
            foreach (var condition in Enum.GetValues<PressureCondition>())
            {
                var state = _states[condition];
                if (crossed.TryGetValue(condition, out var hit))
                {
                    _lastObserved[condition] = now;
                    var message = $"the node has {Describe(hit.Threshold.Signal, hit.Seen!.Value)}, under its eviction threshold {hit.Threshold}";
                    if (!state.Active)
                    {
                        Log.PressureStarted(_logger, condition, message);
                        _states[condition] = new PressureState(condition, true, now, message);
                    }
                    else if (state.Message != message)
                    {
                        _states[condition] = state with { Message = message };
                    }
                }
                else if (state.Active && now - _lastObserved.GetValueOrDefault(condition, now) >= _options.TransitionPeriod)
                {
                    Log.PressureEnded(_logger, condition, _options.TransitionPeriod);
                    _states[condition] = new PressureState(condition, false, now, Calm(condition));
                }
            }

            disk = crossed.ContainsKey(PressureCondition.DiskPressure); // crossed now, not merely held through the transition period
        }

        if (disk)
        {
            DiskPressureObserved?.Invoke(signals);
        }

        Evaluated?.Invoke(signals);
        return signals;
    }

    /// <summary>
    /// The kubelet eviction manager's admission: with no pressure every pod is admitted, and so is a
    /// critical pod (a static pod, or priority system-node-critical / system-cluster-critical); with
    /// MemoryPressure alone a pod that is not BestEffort, or that tolerates the memory-pressure taint; else
    /// the pod is refused with reason <c>Evicted</c> and "The node had condition: [DiskPressure]. ".
    /// Returns null to admit, else the message.
    /// </summary>
    public string? Admit(k8s.Models.V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var active = Active;
        if (active.Count == 0 || IsCritical(pod))
        {
            return null;
        }

        if (active is [PressureCondition.MemoryPressure] && (!IsBestEffort(pod) || Tolerates(pod, "node.kubernetes.io/memory-pressure")))
        {
            return null;
        }

        return $"The node had condition: [{string.Join(" ", active)}]. ";
    }

    public void Dispose() => _timer?.Dispose();

    private static PressureCondition ConditionOf(EvictionSignal signal) => signal switch
    {
        EvictionSignal.MemoryAvailable => PressureCondition.MemoryPressure,
        EvictionSignal.PidAvailable => PressureCondition.PIDPressure,
        _ => PressureCondition.DiskPressure,
    };

    private static string Calm(PressureCondition condition) => condition switch
    {
        PressureCondition.MemoryPressure => "krustlet has sufficient memory available",
        PressureCondition.DiskPressure => "krustlet has no disk pressure",
        _ => "krustlet has sufficient PID available",
    };

    private static string Describe(EvictionSignal signal, Availability seen) => signal switch
    {
        EvictionSignal.NodeFsInodesFree or EvictionSignal.ImageFsInodesFree => $"{EvictionThresholds.Name(signal)} {seen.Available} of {seen.Capacity} inodes",
        EvictionSignal.PidAvailable => $"{EvictionThresholds.Name(signal)} {seen.Available} of {seen.Capacity} PIDs",
        _ => $"{EvictionThresholds.Name(signal)} {seen.Available} of {seen.Capacity} bytes",
    };

    // kubelettypes.IsCriticalPod: static and mirror pods, and pods at system-critical priority.
    private static bool IsCritical(k8s.Models.V1Pod pod) =>
        (pod.Metadata?.Annotations?.TryGetValue("kubernetes.io/config.source", out var source) == true && source != "api")
        || pod.Metadata?.Annotations?.ContainsKey("kubernetes.io/config.mirror") == true
        || pod.Spec?.Priority >= 2_000_000_000
        || pod.Spec?.PriorityClassName is "system-node-critical" or "system-cluster-critical";

    // A BestEffort pod: no container (init or app) requests or limits cpu or memory.
    private static bool IsBestEffort(k8s.Models.V1Pod pod) =>
        PodContainers.All(pod).All(c => c.Resources is null
            || ((c.Resources.Requests is null || !c.Resources.Requests.Keys.Any(k => k is "cpu" or "memory"))
                && (c.Resources.Limits is null || !c.Resources.Limits.Keys.Any(k => k is "cpu" or "memory"))));

    private static bool Tolerates(k8s.Models.V1Pod pod, string taintKey) =>
        pod.Spec?.Tolerations?.Any(t => (t.Key == taintKey || (string.IsNullOrEmpty(t.Key) && t.OperatorProperty == "Exists")) && (string.IsNullOrEmpty(t.Effect) || t.Effect == "NoSchedule")) == true;

    private static partial class Log
    {
        [LoggerMessage(5200, LogLevel.Warning, "Node condition {Condition} is now true: {Message}")]
        public static partial void PressureStarted(ILogger logger, PressureCondition condition, string message);

        [LoggerMessage(5201, LogLevel.Information, "Node condition {Condition} is now false (no threshold crossed for {Period})")]
        public static partial void PressureEnded(ILogger logger, PressureCondition condition, TimeSpan period);

        [LoggerMessage(5202, LogLevel.Warning, "Node signals could not be read: {Problem}")]
        public static partial void SignalsUnreadable(ILogger logger, string problem);
    }
}
