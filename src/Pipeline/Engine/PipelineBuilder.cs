using System.Diagnostics;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Pipeline.Engine;

/// <summary>Assembles a <see cref="StagePipeline{T}"/>: stages in apply order, then the result sink.</summary>
public sealed class PipelineBuilder<T>
{
    private readonly List<IStage<T>> _stages = [];
    private IResultSink<T>? _sink;
    private string? _sinkName;
    private PipelineInstruments? _instruments;
    private ILogger _logger = NullLogger.Instance;
    private TimeProvider _time = TimeProvider.System;
    private Action<WorkItem<T>, Activity>? _enrich;

    /// <summary>Adds the next stage of the apply path (the teardown path runs them in reverse).</summary>
    public PipelineBuilder<T> AddStage(IStage<T> stage)
    {
        ArgumentNullException.ThrowIfNull(stage);
        if (_stages.Any(s => s.Name == stage.Name) || stage.Name == _sinkName)
        {
            throw new ArgumentException($"A stage named '{stage.Name}' is already in the pipeline.", nameof(stage));
        }

        _stages.Add(stage);
        return this;
    }

    /// <summary>
    /// Sets the end of the graph: the status stage. Its options (<c>Pipeline:Stages:&lt;name&gt;</c>) bound
    /// how many results may wait for it.
    /// </summary>
    public PipelineBuilder<T> WithSink(string name, IResultSink<T> sink)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(sink);
        _sinkName = name;
        _sink = sink;
        return this;
    }

    public PipelineBuilder<T> WithInstruments(PipelineInstruments instruments)
    {
        _instruments = instruments;
        return this;
    }

    public PipelineBuilder<T> WithLogger(ILogger logger)
    {
        _logger = logger;
        return this;
    }

    public PipelineBuilder<T> WithTimeProvider(TimeProvider time)
    {
        _time = time;
        return this;
    }

    /// <summary>Adds tags to each stage's span (for pods: namespace and name).</summary>
    public PipelineBuilder<T> WithTraceEnrichment(Action<WorkItem<T>, Activity> enrich)
    {
        _enrich = enrich;
        return this;
    }

    /// <summary>The names the options must cover: every stage, then the sink.</summary>
    public IReadOnlyList<string> Names => [.. _stages.Select(s => s.Name), .. _sinkName is null ? Array.Empty<string>() : [_sinkName]];

    /// <summary>Builds and starts the pipeline. Every stage and the sink must have options.</summary>
    public StagePipeline<T> Build(PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (_sink is null || _sinkName is null)
        {
            throw new InvalidOperationException("The pipeline has no result sink; call WithSink.");
        }

        if (_stages.Count == 0)
        {
            throw new InvalidOperationException("The pipeline has no stages; call AddStage.");
        }

        var missing = Names.Where(n => !options.Stages.ContainsKey(n)).ToList();
        if (missing.Count > 0)
        {
            throw new PipelineConfigurationException([.. missing.Select(n => $"{PipelineOptions.SectionName}:Stages:{n} has no options.")]);
        }

        return new StagePipeline<T>([.. _stages], _sink, _sinkName, options, _instruments, _logger, _time, _enrich);
    }
}
