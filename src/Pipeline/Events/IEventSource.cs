namespace Krustlet.Pipeline.Events;

/// <summary>
/// Produces the events that drive the pipeline: a replayed stream, a Kubernetes watch, a directory of
/// static manifests. The pipeline pulls the next event only once it has room for the previous one,
/// so a source that reads lazily is throttled by backpressure.
/// </summary>
public interface IEventSource<T>
{
    /// <summary>A short name for logs and metrics, such as "replay" or "watch".</summary>
    string Name { get; }

    /// <summary>Reads events until the source ends or <paramref name="cancellationToken"/> fires.</summary>
    IAsyncEnumerable<PipelineEvent<T>> ReadAsync(CancellationToken cancellationToken);
}
